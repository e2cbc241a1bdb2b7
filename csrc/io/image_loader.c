#include "image_loader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../status.h"
#include "image.h"

#define MESSAGE_BYTES 1024

typedef struct batch {
    int64_t ticket;
    int count;
    char **paths;
    uint8_t *pixels;          /* count images of 3 * height * width */
    int next;                 /* the next image to hand out (under lock) */
    int done;                 /* images finished (under lock) */
    int bad;
    int status;               /* the first failure, LN_OK while none */
    char message[MESSAGE_BYTES];
    struct batch *older, *newer;
} batch;

struct ln_image_loader {
    pthread_mutex_t lock;
    pthread_cond_t work;      /* workers wait here for images to decode */
    pthread_cond_t finished;  /* wait() waits here for its batch */
    pthread_t *ids;
    int threads, started, stop;
    int height, width, skip_bad;
    int64_t next_ticket;
    batch *oldest, *newest;   /* every batch not yet waited for, in submit order */
};

static size_t image_bytes(const ln_image_loader *l)
{
    return (size_t)3 * (size_t)l->height * (size_t)l->width;
}

static void batch_free(batch *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->count; i++)
        free(b->paths ? b->paths[i] : NULL);
    free(b->paths);
    free(b->pixels);
    free(b);
}

/* The oldest batch with an image still to hand out, under lock. */
static batch *next_job(ln_image_loader *l)
{
    for (batch *b = l->oldest; b; b = b->newer)
        if (b->next < b->count)
            return b;
    return NULL;
}

static void *worker(void *arg)
{
    ln_image_loader *l = arg;
    size_t bytes = image_bytes(l);
    pthread_mutex_lock(&l->lock);
    for (;;) {
        batch *b;
        while (!l->stop && (b = next_job(l)) == NULL)
            pthread_cond_wait(&l->work, &l->lock);
        if (l->stop)
            break;
        int i = b->next++;
        pthread_mutex_unlock(&l->lock);

        uint8_t *dst = b->pixels + (size_t)i * bytes;
        int st = ln_image_load(b->paths[i], l->height, l->width, dst);
        char message[MESSAGE_BYTES];
        if (st != LN_OK) {
            snprintf(message, sizeof message, "%s", ln_last_error());
            memset(dst, 0, bytes);
        }

        pthread_mutex_lock(&l->lock);
        if (st != LN_OK) {
            if (l->skip_bad && st != LN_ENOMEM && st != LN_ENOTSUP) {
                b->bad++;
            } else if (b->status == LN_OK) {
                b->status = st;
                memcpy(b->message, message, sizeof message);
            }
        }
        if (++b->done == b->count)
            pthread_cond_broadcast(&l->finished);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

int ln_image_loader_open(int threads, int height, int width, int skip_bad,
                         ln_image_loader **out)
{
    *out = NULL;
    if (threads < 1 || threads > 256)
        return ln_error(LN_EINVAL, "threads must be in 1..256, got %d", threads);
    if (height < 1 || width < 1 || height > 16384 || width > 16384)
        return ln_error(LN_EINVAL, "the image size must be in 1..16384, got %dx%d", height, width);
    ln_image_loader *l = calloc(1, sizeof *l);
    if (!l)
        return ln_error(LN_ENOMEM, "out of host memory");
    l->ids = calloc((size_t)threads, sizeof *l->ids);
    if (!l->ids) {
        free(l);
        return ln_error(LN_ENOMEM, "out of host memory");
    }
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->work, NULL);
    pthread_cond_init(&l->finished, NULL);
    l->threads = threads;
    l->height = height;
    l->width = width;
    l->skip_bad = skip_bad;
    l->next_ticket = 1;
    for (int t = 0; t < threads; t++) {
        if (pthread_create(&l->ids[t], NULL, worker, l) != 0)
            break;
        l->started++;
    }
    if (l->started == 0) {
        ln_image_loader_close(l);
        return ln_error(LN_EIO, "cannot start the image decoding threads");
    }
    *out = l;
    return LN_OK;
}

void ln_image_loader_close(ln_image_loader *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->stop = 1;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->lock);
    for (int t = 0; t < l->started; t++)
        pthread_join(l->ids[t], NULL);
    while (l->oldest) {
        batch *b = l->oldest;
        l->oldest = b->newer;
        batch_free(b);
    }
    pthread_cond_destroy(&l->work);
    pthread_cond_destroy(&l->finished);
    pthread_mutex_destroy(&l->lock);
    free(l->ids);
    free(l);
}

int ln_image_loader_threads(const ln_image_loader *l)
{
    return l->started;
}

int ln_image_loader_submit(ln_image_loader *l, const char *const *paths, int count,
                           int64_t *ticket)
{
    if (count < 1)
        return ln_error(LN_EINVAL, "a batch needs at least one path, got %d", count);
    batch *b = calloc(1, sizeof *b);
    if (!b)
        return ln_error(LN_ENOMEM, "out of host memory");
    b->count = count;
    b->paths = calloc((size_t)count, sizeof *b->paths);
    b->pixels = malloc(image_bytes(l) * (size_t)count);
    if (!b->paths || !b->pixels) {
        batch_free(b);
        return ln_error(LN_ENOMEM, "out of host memory for a batch of %d images", count);
    }
    for (int i = 0; i < count; i++) {
        b->paths[i] = strdup(paths[i]);
        if (!b->paths[i]) {
            batch_free(b);
            return ln_error(LN_ENOMEM, "out of host memory");
        }
    }
    pthread_mutex_lock(&l->lock);
    b->ticket = l->next_ticket++;
    b->older = l->newest;
    if (l->newest)
        l->newest->newer = b;
    else
        l->oldest = b;
    l->newest = b;
    *ticket = b->ticket;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->lock);
    return LN_OK;
}

int ln_image_loader_wait(ln_image_loader *l, int64_t ticket, uint8_t *out, size_t out_bytes,
                         int *count, int *bad)
{
    *count = 0;
    *bad = 0;
    pthread_mutex_lock(&l->lock);
    batch *b = l->oldest;
    while (b && b->ticket != ticket)
        b = b->newer;
    if (!b) {
        pthread_mutex_unlock(&l->lock);
        return ln_error(LN_EINVAL, "no batch %lld is being decoded (waited for already?)",
                        (long long)ticket);
    }
    while (b->done < b->count)
        pthread_cond_wait(&l->finished, &l->lock);
    /* unlink */
    if (b->older)
        b->older->newer = b->newer;
    else
        l->oldest = b->newer;
    if (b->newer)
        b->newer->older = b->older;
    else
        l->newest = b->older;
    pthread_mutex_unlock(&l->lock);

    int st = b->status;
    *count = b->count;
    *bad = b->bad;
    size_t bytes = image_bytes(l) * (size_t)b->count;
    if (st != LN_OK)
        ln_error(st, "%s", b->message);
    else if (out && out_bytes != bytes)
        st = ln_error(LN_EINVAL, "the output holds %zu bytes, the batch of %d images %zu",
                      out_bytes, b->count, bytes);
    else if (out)
        memcpy(out, b->pixels, bytes);
    batch_free(b);
    return st;
}
