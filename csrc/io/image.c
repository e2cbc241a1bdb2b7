#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../status.h"

#ifdef LUNET_HAVE_JPEG
#include <jpeglib.h>
#endif
#ifdef LUNET_HAVE_PNG
#include <png.h>
#endif

static const uint8_t PNG_SIGNATURE[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

ln_image_format ln_image_sniff(const void *head, size_t len)
{
    const uint8_t *b = head;
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        return LN_IMAGE_JPEG;
    if (len >= 8 && memcmp(b, PNG_SIGNATURE, 8) == 0)
        return LN_IMAGE_PNG;
    return LN_IMAGE_UNKNOWN;
}

const char *ln_image_format_name(ln_image_format format)
{
    switch (format) {
    case LN_IMAGE_JPEG: return "JPEG";
    case LN_IMAGE_PNG: return "PNG";
    default: return "unknown";
    }
}

int ln_image_format_supported(ln_image_format format)
{
#ifdef LUNET_HAVE_JPEG
    if (format == LN_IMAGE_JPEG)
        return 1;
#endif
#ifdef LUNET_HAVE_PNG
    if (format == LN_IMAGE_PNG)
        return 1;
#endif
    (void)format;
    return 0;
}

static int unsupported(ln_image_format format)
{
    if (format == LN_IMAGE_JPEG)
        return ln_error(LN_ENOTSUP, "this lunet was built without JPEG support: install "
                        "libjpeg62-turbo-dev (scripts/setup.sh does) and rebuild");
    return ln_error(LN_ENOTSUP, "this lunet was built without PNG support: install libpng-dev "
                    "(scripts/setup.sh does) and rebuild");
}

static int check_size(int width, int height, const char *what)
{
    if (width <= 0 || height <= 0)
        return ln_error(LN_EFORMAT, "corrupt %s: the header says %dx%d pixels", what, width, height);
    if (width > LN_IMAGE_MAX_SIDE || height > LN_IMAGE_MAX_SIDE
        || (int64_t)width * height > LN_IMAGE_MAX_PIXELS)
        return ln_error(LN_EFORMAT, "%s of %dx%d pixels is larger than lunet decodes (at most "
                        "%d per side, %lld pixels)", what, width, height, LN_IMAGE_MAX_SIDE,
                        (long long)LN_IMAGE_MAX_PIXELS);
    return LN_OK;
}

/* --- headers ------------------------------------------------------------------ */

/* The frame size of a JPEG from its SOF marker, walking the marker segments. */
static int jpeg_header(const uint8_t *b, size_t len, int *width, int *height)
{
    size_t at = 2;
    while (at + 4 <= len) {
        if (b[at] != 0xFF)
            return ln_error(LN_EFORMAT, "corrupt JPEG: no marker at byte %zu", at);
        uint8_t marker = b[at + 1];
        if (marker == 0xFF) { /* fill byte */
            at++;
            continue;
        }
        if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {
            at += 2;
            continue;
        }
        if (marker == 0xD9 || marker == 0xDA)
            return ln_error(LN_EFORMAT, "corrupt JPEG: image data before a frame header");
        size_t seg = ((size_t)b[at + 2] << 8) | b[at + 3];
        if (seg < 2)
            return ln_error(LN_EFORMAT, "corrupt JPEG: a segment of length %zu", seg);
        int sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8
                  && marker != 0xCC;
        if (sof) {
            if (at + 9 > len || seg < 7)
                return ln_error(LN_EFORMAT, "truncated JPEG: the frame header is cut off");
            *height = (b[at + 5] << 8) | b[at + 6];
            *width = (b[at + 7] << 8) | b[at + 8];
            return check_size(*width, *height, "JPEG");
        }
        at += 2 + seg;
    }
    return ln_error(LN_EFORMAT, "truncated JPEG: no frame header (SOF) found in %zu bytes", len);
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int ln_image_header(const void *buf, size_t len, ln_image_format *format, int *width,
                    int *height)
{
    const uint8_t *b = buf;
    *width = *height = 0;
    *format = ln_image_sniff(buf, len);
    if (*format == LN_IMAGE_JPEG)
        return jpeg_header(b, len, width, height);
    if (*format == LN_IMAGE_PNG) {
        if (len < 24 || memcmp(b + 12, "IHDR", 4) != 0)
            return ln_error(LN_EFORMAT, "corrupt PNG: no IHDR chunk after the signature");
        uint32_t w = be32(b + 16), h = be32(b + 20);
        if (w > INT32_MAX || h > INT32_MAX)
            return ln_error(LN_EFORMAT, "corrupt PNG: the header says %ux%u pixels", w, h);
        *width = (int)w;
        *height = (int)h;
        return check_size(*width, *height, "PNG");
    }
    return ln_error(LN_EFORMAT, "not a JPEG or PNG image (the file starts with neither "
                    "signature)");
}

/* --- decoding ------------------------------------------------------------------- */

#ifdef LUNET_HAVE_JPEG
typedef struct jpeg_failure {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    int warned;
} jpeg_failure;

static void jpeg_on_error(j_common_ptr c)
{
    jpeg_failure *f = (jpeg_failure *)c->err;
    (*c->err->format_message)(c, f->message);
    longjmp(f->jump, 1);
}

/* Warnings (level -1) mean damaged data that libjpeg papers over: an error here. */
static void jpeg_on_message(j_common_ptr c, int level)
{
    jpeg_failure *f = (jpeg_failure *)c->err;
    if (level < 0 && !f->warned) {
        (*c->err->format_message)(c, f->message);
        f->warned = 1;
    }
}

static int decode_jpeg(const void *buf, size_t len, int min_width, int min_height, ln_image *out)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_failure fail;
    uint8_t *volatile pixels = NULL;
    memset(&cinfo, 0, sizeof cinfo);
    memset(&fail, 0, sizeof fail);
    cinfo.err = jpeg_std_error(&fail.mgr);
    fail.mgr.error_exit = jpeg_on_error;
    fail.mgr.emit_message = jpeg_on_message;
    if (setjmp(fail.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return ln_error(LN_EFORMAT, "corrupt JPEG: %s", fail.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, (const unsigned char *)buf, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    int st = check_size((int)cinfo.image_width, (int)cinfo.image_height, "JPEG");
    if (st != LN_OK) {
        jpeg_destroy_decompress(&cinfo);
        return st;
    }
    cinfo.out_color_space = JCS_RGB;
    /* the smallest DCT scale that still covers the size asked for */
    for (unsigned denom = 8; denom >= 2; denom /= 2) {
        if ((int)(cinfo.image_width / denom) >= min_width
            && (int)(cinfo.image_height / denom) >= min_height && min_width > 0
            && min_height > 0) {
            cinfo.scale_num = 1;
            cinfo.scale_denom = denom;
            break;
        }
    }
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != 3) {
        jpeg_destroy_decompress(&cinfo);
        return ln_error(LN_EFORMAT, "JPEG with %d colour components cannot be read as RGB",
                        cinfo.output_components);
    }
    size_t row = (size_t)cinfo.output_width * 3;
    pixels = malloc(row * cinfo.output_height);
    if (!pixels) {
        jpeg_destroy_decompress(&cinfo);
        return ln_error(LN_ENOMEM, "out of host memory for a %ux%u JPEG", cinfo.output_width,
                        cinfo.output_height);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[1] = {pixels + row * cinfo.output_scanline};
        jpeg_read_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_decompress(&cinfo);
    out->width = (int)cinfo.output_width;
    out->height = (int)cinfo.output_height;
    jpeg_destroy_decompress(&cinfo);
    if (fail.warned) {
        free(pixels);
        return ln_error(LN_EFORMAT, "corrupt or truncated JPEG: %s", fail.message);
    }
    out->rgb = pixels;
    return LN_OK;
}
#endif

#ifdef LUNET_HAVE_PNG
static int decode_png(const void *buf, size_t len, ln_image *out)
{
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&image, buf, len))
        return ln_error(LN_EFORMAT, "corrupt PNG: %s", image.message);
    int st = check_size((int)image.width, (int)image.height, "PNG");
    if (st != LN_OK) {
        png_image_free(&image);
        return st;
    }
    image.format = PNG_FORMAT_RGB;
    uint8_t *pixels = malloc(PNG_IMAGE_SIZE(image));
    if (!pixels) {
        png_image_free(&image);
        return ln_error(LN_ENOMEM, "out of host memory for a %ux%u PNG", image.width,
                        image.height);
    }
    if (!png_image_finish_read(&image, NULL, pixels, 0, NULL)) {
        free(pixels);
        return ln_error(LN_EFORMAT, "corrupt or truncated PNG: %s", image.message);
    }
    out->width = (int)image.width;
    out->height = (int)image.height;
    out->rgb = pixels;
    return LN_OK;
}
#endif

int ln_image_decode(const void *buf, size_t len, int min_width, int min_height, ln_image *out)
{
    memset(out, 0, sizeof *out);
    ln_image_format format;
    int width, height;
    LN_TRY(ln_image_header(buf, len, &format, &width, &height));
    if (!ln_image_format_supported(format))
        return unsupported(format);
#ifdef LUNET_HAVE_JPEG
    if (format == LN_IMAGE_JPEG)
        return decode_jpeg(buf, len, min_width, min_height, out);
#endif
#ifdef LUNET_HAVE_PNG
    if (format == LN_IMAGE_PNG)
        return decode_png(buf, len, out);
#endif
    (void)min_width;
    (void)min_height;
    return unsupported(format);
}

void ln_image_free(ln_image *img)
{
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

/* --- resizing ----------------------------------------------------------------------- */

/* Output pixel i of `count` reads source pixels first[i] .. first[i] + taps[i] - 1
 * with weights weight[i * max_taps + k] (summing to 1). */
typedef struct axis_filter {
    int *first, *taps;
    float *weight;
    int max_taps;
} axis_filter;

static void axis_free(axis_filter *f)
{
    free(f->first);
    free(f->taps);
    free(f->weight);
}

/* Output pixel i covers source [offset + i / scale, offset + (i + 1) / scale). */
static int axis_make(axis_filter *f, int count, int src, double scale, double offset)
{
    double support = scale < 1 ? 1 / scale : 1; /* triangle radius in source pixels */
    f->max_taps = (int)ceil(2 * support) + 2;
    f->first = malloc(sizeof(int) * (size_t)count);
    f->taps = malloc(sizeof(int) * (size_t)count);
    f->weight = malloc(sizeof(float) * (size_t)count * (size_t)f->max_taps);
    if (!f->first || !f->taps || !f->weight) {
        axis_free(f);
        return ln_error(LN_ENOMEM, "out of host memory for resizing");
    }
    for (int i = 0; i < count; i++) {
        double center = offset + (i + 0.5) / scale;
        int lo = (int)floor(center - support), hi = (int)ceil(center + support);
        if (lo < 0)
            lo = 0;
        if (hi > src - 1)
            hi = src - 1;
        if (hi - lo + 1 > f->max_taps)
            hi = lo + f->max_taps - 1;
        double total = 0;
        int taps = 0;
        float *w = f->weight + (size_t)i * (size_t)f->max_taps;
        for (int s = lo; s <= hi; s++) {
            double d = fabs(s + 0.5 - center) / support;
            double v = d < 1 ? 1 - d : 0;
            w[taps++] = (float)v;
            total += v;
        }
        if (total <= 0) { /* the nearest pixel, when every weight vanished */
            int s = (int)floor(center);
            lo = s < 0 ? 0 : (s > src - 1 ? src - 1 : s);
            taps = 1;
            w[0] = 1;
            total = 1;
        }
        for (int k = 0; k < taps; k++)
            w[k] = (float)(w[k] / total);
        f->first[i] = lo;
        f->taps[i] = taps;
    }
    return LN_OK;
}

int ln_image_resize_center_crop(const ln_image *img, int height, int width, uint8_t *out)
{
    if (height < 1 || width < 1 || !img->rgb)
        return ln_error(LN_EINVAL, "cannot resize to %dx%d", height, width);
    int sw = img->width, sh = img->height;
    double scale = fmax((double)width / sw, (double)height / sh);
    double off_x = (sw - width / scale) / 2, off_y = (sh - height / scale) / 2;
    axis_filter fx = {0}, fy = {0};
    LN_TRY(axis_make(&fx, width, sw, scale, off_x));
    int st = axis_make(&fy, height, sh, scale, off_y);
    if (st != LN_OK) {
        axis_free(&fx);
        return st;
    }
    /* horizontal pass over the source rows the vertical pass reads */
    int row_lo = fy.first[0], row_hi = fy.first[height - 1] + fy.taps[height - 1] - 1;
    size_t rows = (size_t)(row_hi - row_lo + 1);
    float *tmp = malloc(sizeof(float) * rows * (size_t)width * 3);
    if (!tmp) {
        axis_free(&fx);
        axis_free(&fy);
        return ln_error(LN_ENOMEM, "out of host memory for resizing");
    }
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *src = img->rgb + ((size_t)row_lo + r) * (size_t)sw * 3;
        float *dst = tmp + r * (size_t)width * 3;
        for (int x = 0; x < width; x++) {
            const float *w = fx.weight + (size_t)x * (size_t)fx.max_taps;
            const uint8_t *p = src + (size_t)fx.first[x] * 3;
            float a = 0, b = 0, c = 0;
            for (int k = 0; k < fx.taps[x]; k++) {
                a += w[k] * p[3 * k];
                b += w[k] * p[3 * k + 1];
                c += w[k] * p[3 * k + 2];
            }
            dst[3 * x] = a;
            dst[3 * x + 1] = b;
            dst[3 * x + 2] = c;
        }
    }
    size_t plane = (size_t)height * (size_t)width;
    for (int y = 0; y < height; y++) {
        const float *w = fy.weight + (size_t)y * (size_t)fy.max_taps;
        const float *base = tmp + (size_t)(fy.first[y] - row_lo) * (size_t)width * 3;
        for (int x = 0; x < width; x++) {
            float v[3] = {0, 0, 0};
            for (int k = 0; k < fy.taps[y]; k++) {
                const float *p = base + ((size_t)k * (size_t)width + (size_t)x) * 3;
                v[0] += w[k] * p[0];
                v[1] += w[k] * p[1];
                v[2] += w[k] * p[2];
            }
            for (int c = 0; c < 3; c++) {
                float q = v[c] + 0.5f;
                out[c * plane + (size_t)y * width + x] =
                    (uint8_t)(q < 0 ? 0 : (q > 255 ? 255 : q));
            }
        }
    }
    free(tmp);
    axis_free(&fx);
    axis_free(&fy);
    return LN_OK;
}

/* --- files ----------------------------------------------------------------------------- */

/* Opens `path` for reading if it is a regular file (a FIFO would block, a
 * device could be endless); returns the descriptor and its size. */
static int open_regular(const char *path, int *fd_out, size_t *size)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return ln_error(LN_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ln_error(LN_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ln_error(LN_EIO, "%s: not a regular file (%s)", path,
                        S_ISDIR(st.st_mode) ? "a directory" : "a device, FIFO or socket");
    }
    *fd_out = fd;
    *size = (size_t)st.st_size;
    return LN_OK;
}

static int read_fully(int fd, uint8_t *buf, size_t want, size_t *got)
{
    *got = 0;
    while (*got < want) {
        ssize_t n = read(fd, buf + *got, want - *got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    return 0;
}

int ln_image_read_file(const char *path, size_t max_bytes, void **data, size_t *len,
                       ln_image_format *format)
{
    *data = NULL;
    *len = 0;
    *format = LN_IMAGE_UNKNOWN;
    int fd = -1;
    size_t size = 0;
    LN_TRY(open_regular(path, &fd, &size));
    if (size == 0) {
        close(fd);
        return ln_error(LN_EFORMAT, "%s: empty file, not an image", path);
    }
    if (size > max_bytes) {
        close(fd);
        return ln_error(LN_EFORMAT, "%s: %zu bytes, more than the %zu an image may have here",
                        path, size, max_bytes);
    }
    uint8_t *buf = malloc(size);
    if (!buf) {
        close(fd);
        return ln_error(LN_ENOMEM, "%s: out of host memory (%zu bytes)", path, size);
    }
    /* the signature first: a file that is no image is not read further */
    size_t head = size < 16 ? size : 16, got = 0;
    if (read_fully(fd, buf, head, &got) != 0) {
        int e = errno;
        free(buf);
        close(fd);
        return ln_error(LN_EIO, "%s: cannot read: %s", path, strerror(e));
    }
    *format = ln_image_sniff(buf, got);
    if (*format == LN_IMAGE_UNKNOWN) {
        free(buf);
        close(fd);
        return ln_error(LN_EFORMAT, "%s: not a JPEG or PNG image (wrong signature)", path);
    }
    size_t rest = 0;
    if (got == head && read_fully(fd, buf + got, size - got, &rest) != 0) {
        int e = errno;
        free(buf);
        close(fd);
        return ln_error(LN_EIO, "%s: cannot read: %s", path, strerror(e));
    }
    close(fd);
    *data = buf;
    *len = got + rest; /* a file that shrank meanwhile is simply shorter */
    return LN_OK;
}

int ln_image_probe(const char *path, ln_image_format *format, int *width, int *height)
{
    void *buf;
    size_t len;
    LN_TRY(ln_image_read_file(path, LN_IMAGE_MAX_FILE_BYTES, &buf, &len, format));
    int st = ln_image_header(buf, len, format, width, height);
    free(buf);
    if (st == LN_OK && !ln_image_format_supported(*format))
        st = unsupported(*format);
    if (st != LN_OK)
        ln_error_prefix(path);
    return st;
}

int ln_image_load(const char *path, int height, int width, uint8_t *out)
{
    void *buf;
    size_t len;
    ln_image_format format;
    LN_TRY(ln_image_read_file(path, LN_IMAGE_MAX_FILE_BYTES, &buf, &len, &format));
    ln_image img;
    int st = ln_image_decode(buf, len, width, height, &img);
    free(buf);
    if (st == LN_OK) {
        st = ln_image_resize_center_crop(&img, height, width, out);
        ln_image_free(&img);
    }
    if (st != LN_OK)
        ln_error_prefix(path);
    return st;
}

/* --- writing ----------------------------------------------------------------------------- */

#ifdef LUNET_HAVE_JPEG
static int write_jpeg(const char *path, const uint8_t *hwc, int channels, int height, int width,
                      int quality)
{
    struct jpeg_compress_struct cinfo;
    jpeg_failure fail;
    FILE *volatile f = NULL;
    memset(&cinfo, 0, sizeof cinfo);
    memset(&fail, 0, sizeof fail);
    cinfo.err = jpeg_std_error(&fail.mgr);
    fail.mgr.error_exit = jpeg_on_error;
    if (setjmp(fail.jump)) {
        jpeg_destroy_compress(&cinfo);
        if (f)
            fclose(f);
        return ln_error(LN_EIO, "%s: cannot write the JPEG: %s", path, fail.message);
    }
    jpeg_create_compress(&cinfo);
    f = fopen(path, "wb");
    if (!f) {
        jpeg_destroy_compress(&cinfo);
        return ln_error(LN_EIO, "%s: cannot create: %s", path, strerror(errno));
    }
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row[1] = {(JSAMPROW)(hwc + (size_t)cinfo.next_scanline * width * channels)};
        jpeg_write_scanlines(&cinfo, row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    if (fclose(f) != 0)
        return ln_error(LN_EIO, "%s: cannot write: %s", path, strerror(errno));
    return LN_OK;
}
#endif

#ifdef LUNET_HAVE_PNG
static int write_png(const char *path, const uint8_t *hwc, int channels, int height, int width)
{
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)width;
    image.height = (png_uint_32)height;
    image.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    if (!png_image_write_to_file(&image, path, 0, hwc, 0, NULL))
        return ln_error(LN_EIO, "%s: cannot write the PNG: %s", path, image.message);
    return LN_OK;
}
#endif

int ln_image_write(const char *path, ln_image_format format, const uint8_t *chw, int channels,
                   int height, int width, int quality)
{
    (void)path; /* unused in a build without either library */
    if (channels != 1 && channels != 3)
        return ln_error(LN_EINVAL, "an image to write must have 1 or 3 channels, got %d", channels);
    if (height < 1 || width < 1 || height > 65535 || width > 65535)
        return ln_error(LN_EINVAL, "cannot write a %dx%d image", height, width);
    if (quality < 1 || quality > 100)
        return ln_error(LN_EINVAL, "quality must be in 1..100, got %d", quality);
    if (!ln_image_format_supported(format))
        return format == LN_IMAGE_UNKNOWN ? ln_error(LN_EINVAL, "unknown image format")
                                          : unsupported(format);
    size_t plane = (size_t)height * (size_t)width;
    uint8_t *hwc = malloc(plane * (size_t)channels);
    if (!hwc)
        return ln_error(LN_ENOMEM, "out of host memory");
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < channels; c++)
            hwc[i * (size_t)channels + (size_t)c] = chw[(size_t)c * plane + i];
    int st = LN_ENOTSUP;
#ifdef LUNET_HAVE_JPEG
    if (format == LN_IMAGE_JPEG)
        st = write_jpeg(path, hwc, channels, height, width, quality);
#endif
#ifdef LUNET_HAVE_PNG
    if (format == LN_IMAGE_PNG)
        st = write_png(path, hwc, channels, height, width);
#endif
    free(hwc);
    return st;
}
