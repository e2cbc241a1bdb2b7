/* Reading a whole data file into memory, gzipped or raw.
 *
 * zlib's gzread reads gzip-compressed files and passes plain files through
 * unchanged, so the dataset readers accept either without being told which. */
#ifndef LUNET_IO_READ_FILE_H
#define LUNET_IO_READ_FILE_H

#include <stddef.h>

/* Reads `path` (decompressing gzip transparently) into a new malloc'd buffer
 * that the caller frees. Refuses to grow past `max_bytes` of decompressed
 * data (a damaged or hostile file must not exhaust memory). A missing file is
 * LN_EIO; a truncated or corrupt gzip stream is LN_EFORMAT. Every message
 * starts with the path. */
int ln_read_file(const char *path, size_t max_bytes, void **data, size_t *len);

#endif
