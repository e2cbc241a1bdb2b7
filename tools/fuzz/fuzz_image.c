/* libFuzzer harness: the JPEG and PNG readers (csrc/io/image.c) on bytes from
 * memory and as files, with the resize and centre crop behind them.
 * Invariants: a header that parses gives a sane size; an image that decodes
 * has the header's size (full-scale decode) and resizes to any small size;
 * the scaled JPEG decode covers the size asked for; every error leaves a
 * message, and the file path's errors start with the path. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "io/image.h"
#include "status.h"

/* Images larger than this are only header-checked: decoding them is slow
 * under the sanitizers and teaches the fuzzer nothing new. */
#define FUZZ_MAX_PIXELS (1 << 20)

static void check_resize(const ln_image *img, int h, int w)
{
    uint8_t *out = malloc((size_t)3 * h * w);
    if (!out)
        fuzz_fail("out of memory");
    if (ln_image_resize_center_crop(img, h, w, out) != LN_OK)
        fuzz_fail("resizing a %dx%d image to %dx%d failed: %s", img->width, img->height, w, h,
                  ln_last_error());
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ln_image_format format;
    int width = 0, height = 0;
    int header = ln_image_header(data, size, &format, &width, &height);
    if (header != LN_OK) {
        fuzz_check_message(NULL);
    } else {
        if (width < 1 || height < 1 || width > LN_IMAGE_MAX_SIDE || height > LN_IMAGE_MAX_SIDE)
            fuzz_fail("the header passed with a size of %dx%d", width, height);
        if ((int64_t)width * height > FUZZ_MAX_PIXELS)
            return 0;
    }

    ln_image img;
    int decoded = ln_image_decode(data, size, 0, 0, &img);
    if (decoded == LN_OK) {
        if (header != LN_OK)
            fuzz_fail("decoded an image whose header does not parse");
        if (img.width != width || img.height != height)
            fuzz_fail("decoded %dx%d, the header says %dx%d", img.width, img.height, width,
                      height);
        check_resize(&img, 1, 1);
        check_resize(&img, 7, 5);
        check_resize(&img, 3, 17);
        ln_image_free(&img);
    } else {
        fuzz_check_message(NULL);
    }

    if (header == LN_OK) { /* the scaled decode must cover what it was asked for */
        ln_image small;
        if (ln_image_decode(data, size, 4, 3, &small) == LN_OK) {
            if (small.width < 4 && small.width < width)
                fuzz_fail("a scaled decode gave width %d < 4 (full %d)", small.width, width);
            if (small.height < 3 && small.height < height)
                fuzz_fail("a scaled decode gave height %d < 3 (full %d)", small.height, height);
            ln_image_free(&small);
        }
    }

    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    uint8_t out[3 * 6 * 4];
    int loaded = ln_image_load(path, 6, 4, out);
    if (loaded != LN_OK) {
        fuzz_check_message(path);
    }
    ln_image_format probed;
    int pw, ph;
    if (ln_image_probe(path, &probed, &pw, &ph) != LN_OK)
        fuzz_check_message(path);
    else if (pw != width || ph != height)
        fuzz_fail("the probe says %dx%d, the header %dx%d", pw, ph, width, height);
    fuzz_memfile_close(fd);
    return 0;
}
