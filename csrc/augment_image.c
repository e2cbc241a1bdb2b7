#include "augment_image.h"

#include <string.h>

void ln_augment_crop_image(const ln_augment_geometry *g, float *out, const float *in, int64_t i,
                           uint64_t seed, uint64_t counter)
{
    int dy, dx;
    ln_augment_crop_offsets(seed, counter, i, g->range_y, g->range_x, &dy, &dx);
    /* window row y, column x reads input row y + dy - padding, column x + dx - padding */
    int64_t y0 = dy - g->padding, x0 = dx - g->padding;
    for (int64_t c = 0; c < g->c; c++) {
        const float *src = in + (i * g->c + c) * g->h * g->w;
        float *dst = out + (i * g->c + c) * g->oh * g->ow;
        for (int64_t y = 0; y < g->oh; y++) {
            float *row = dst + y * g->ow;
            int64_t sy = y + y0;
            if (sy < 0 || sy >= g->h) {
                memset(row, 0, (size_t)g->ow * sizeof *row);
                continue;
            }
            /* columns [lo, hi) of the window lie inside the image */
            int64_t lo = x0 < 0 ? -x0 : 0;
            int64_t hi = g->w - x0 < g->ow ? g->w - x0 : g->ow;
            if (lo > g->ow)
                lo = g->ow;
            if (hi < lo)
                hi = lo;
            memset(row, 0, (size_t)lo * sizeof *row);
            memcpy(row + lo, src + sy * g->w + x0 + lo, (size_t)(hi - lo) * sizeof *row);
            memset(row + hi, 0, (size_t)(g->ow - hi) * sizeof *row);
        }
    }
}

void ln_augment_flip_image(float *data, int64_t c, int64_t h, int64_t w, int64_t i, double p,
                           uint64_t seed, uint64_t counter)
{
    if (!ln_augment_flip_drawn(seed, counter, i, p))
        return;
    float *img = data + i * c * h * w;
    for (int64_t r = 0; r < c * h; r++) {
        float *row = img + r * w;
        for (int64_t x = 0, y = w - 1; x < y; x++, y--) {
            float t = row[x];
            row[x] = row[y];
            row[y] = t;
        }
    }
}

void ln_augment_normalize_image(float *data, int64_t c, int64_t plane, int64_t i,
                                const float *mean, const float *std)
{
    for (int64_t k = 0; k < c; k++) {
        float *p = data + (i * c + k) * plane;
        float m = mean[k], s = std[k];
        for (int64_t j = 0; j < plane; j++)
            p[j] = (p[j] - m) / s; /* a division, as torchvision's Normalize does */
    }
}
