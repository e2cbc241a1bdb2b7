/* Background decoding of batches of image files (lunet.data.DataLoader over
 * lunet.datasets.image_folder).
 *
 * A loader owns a few worker threads. `submit` queues one batch (a list of
 * paths) and returns at once; the workers decode its images (read, decode,
 * resize, centre crop: ln_image_load) into memory the loader owns, batches in
 * the order they were submitted; `wait` blocks until that batch is done and
 * copies it out as uint8 {count, 3, height, width}. The training loop thus
 * submits batches ahead and decoding overlaps the step. A bad image makes its
 * batch fail with the file's error, or with `skip_bad` becomes a black image
 * counted in `bad`. The loader is used from one thread (the Lua state's). */
#ifndef LUNET_IO_IMAGE_LOADER_H
#define LUNET_IO_IMAGE_LOADER_H

#include <stddef.h>
#include <stdint.h>

typedef struct ln_image_loader ln_image_loader;

int ln_image_loader_open(int threads, int height, int width, int skip_bad,
                         ln_image_loader **out);
/* Waits for the workers to finish the image each is on, stops them, and
 * frees every batch not yet waited for. NULL is fine. */
void ln_image_loader_close(ln_image_loader *loader);
int ln_image_loader_threads(const ln_image_loader *loader);

/* Queues `count` paths (copied); *ticket names the batch for wait. */
int ln_image_loader_submit(ln_image_loader *loader, const char *const *paths, int count,
                           int64_t *ticket);
/* Waits for batch `ticket`, copies its count * 3 * height * width bytes into
 * out (when out is not NULL; out_bytes must be exactly that) and forgets it.
 * The first error of the batch is returned (message set on this thread);
 * *bad counts skipped images. */
int ln_image_loader_wait(ln_image_loader *loader, int64_t ticket, uint8_t *out,
                         size_t out_bytes, int *count, int *bad);

#endif
