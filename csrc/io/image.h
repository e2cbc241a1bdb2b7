/* JPEG and PNG images: reading, decoding, resizing (lunet.datasets.image_folder).
 *
 * Decoding is done by libjpeg-turbo and libpng where lunet was built with
 * them (LUNET_HAVE_JPEG, LUNET_HAVE_PNG); a format built without is an
 * LN_ENOTSUP error that says which package to install. Files are checked
 * before they are read: a regular file (not a directory, FIFO or device), at
 * most LN_IMAGE_MAX_FILE_BYTES, with a JPEG or PNG signature; and before any
 * pixel memory is allocated, the header's size must be sane. A corrupt or
 * truncated image is an LN_EFORMAT error (libjpeg's warnings about damaged
 * data count as errors: it would otherwise fill the rest with gray). Every
 * function is thread-safe: the worker threads of the image loader call them
 * at once. */
#ifndef LUNET_IO_IMAGE_H
#define LUNET_IO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define LN_IMAGE_MAX_FILE_BYTES ((size_t)64 << 20)
#define LN_IMAGE_MAX_SIDE 32768
#define LN_IMAGE_MAX_PIXELS ((int64_t)1 << 27)

typedef enum ln_image_format { LN_IMAGE_UNKNOWN = 0, LN_IMAGE_JPEG, LN_IMAGE_PNG } ln_image_format;

/* Decoded pixels: RGB, 8 bits, interleaved (HWC), rows packed. */
typedef struct ln_image {
    int width, height;
    uint8_t *rgb; /* malloc'd, width * height * 3 bytes */
} ln_image;

/* The format a file starting with these bytes has (by its signature). */
ln_image_format ln_image_sniff(const void *head, size_t len);
const char *ln_image_format_name(ln_image_format format);
/* Whether this build decodes the format. */
int ln_image_format_supported(ln_image_format format);

/* Width and height from the header alone (no pixels decoded). */
int ln_image_header(const void *buf, size_t len, ln_image_format *format, int *width,
                    int *height);

/* Decodes a whole JPEG or PNG held in memory into RGB. `min_width` and
 * `min_height` (0 for full size) let a JPEG decode at 1/2, 1/4 or 1/8 scale
 * when that still covers them (a much faster decode of large photos). */
int ln_image_decode(const void *buf, size_t len, int min_width, int min_height, ln_image *out);
void ln_image_free(ln_image *img);

/* Scales `img` so that it covers height x width, keeping its aspect ratio,
 * and cuts out the centre: out is planar uint8 {3, height, width}. Down-
 * scaling averages over each output pixel's footprint (a triangle filter as
 * wide as the scale, like PIL's antialiased resize); upscaling is bilinear. */
int ln_image_resize_center_crop(const ln_image *img, int height, int width, uint8_t *out);

/* Reads a file for decoding: refuses anything but a regular file, files
 * larger than max_bytes, and files without an image signature (checked on
 * the first bytes, before the rest is read). Messages start with the path. */
int ln_image_read_file(const char *path, size_t max_bytes, void **data, size_t *len,
                       ln_image_format *format);

/* read + decode + resize + centre crop into out {3, height, width}; errors
 * start with the path. */
int ln_image_load(const char *path, int height, int width, uint8_t *out);

/* Width and height of an image file, from its header (a cheap check). */
int ln_image_probe(const char *path, ln_image_format *format, int *width, int *height);

/* Writes planar uint8 {channels (1 or 3), height, width} as a JPEG (quality
 * 1..100) or PNG file: for tests and for saving images. */
int ln_image_write(const char *path, ln_image_format format, const uint8_t *chw, int channels,
                   int height, int width, int quality);

#endif
