/* The CPU backend's own thread pool.
 *
 * Why not OpenMP: between parallel regions libgomp's idle threads spin for
 * up to several milliseconds (GOMP_SPINCOUNT) before they sleep, and the wait
 * policy can only be changed through the environment before libgomp starts,
 * which a Lua module loaded later cannot do. On a quiet machine the spinning
 * costs nothing; on a busy one (another process on one of two cores) the
 * spinning thread takes turns on the remaining core with the thread doing
 * the work, and a training step got 1.6x slower with two threads than with
 * one (bench/NOTES.md). Here an idle thread spins for at most SPIN_NS, then
 * sleeps on a condition variable; the caller does the same while it waits
 * for the last items.
 *
 * One job at a time: the caller publishes (task, arg, items) under the lock
 * by bumping `generation`, works on items itself, and waits until every
 * worker has reported back. Items are handed out with an atomic counter, so
 * a thread that lost its core does fewer of them. lunet's CPU device serves
 * one caller at a time: its context (the scratch workspace above all) is one
 * per process, so two Lua states driving it from two threads at once are not
 * supported. The submit lock is only tried: a second caller (or a task that
 * broke the rule and started parallel work) runs its items on its own thread
 * instead of deadlocking on the pool; that does not make it safe. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "../status.h"
#include "cpu.h"

/* How long an idle thread polls before it sleeps: longer than the gap
 * between two parallel passes of a layer, much shorter than a time slice. */
#define SPIN_NS 50000

struct ln_cpu_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;          /* workers sleep here between jobs */
    pthread_cond_t done;          /* the caller sleeps here until a job is done */
    pthread_mutex_t submit;       /* one job at a time */
    pthread_t *ids;
    int workers;                  /* threads started, besides the caller */
    int capacity;                 /* length of ids */
    int sleeping_workers;         /* under lock */
    int caller_sleeping;          /* under lock */
    int stop;                     /* under lock */
    /* the current job, written before `generation` moves */
    ln_cpu_task task;
    void *arg;
    int64_t items;
    int participants;             /* threads that take items: caller + workers 1..p-1 */
    _Atomic uint64_t generation;
    _Atomic int64_t next;         /* the next item to hand out */
    _Atomic int pending;          /* workers yet to report on this job */
};

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void run_items(struct ln_cpu_pool *pool, int thread)
{
    int64_t i;
    while ((i = atomic_fetch_add_explicit(&pool->next, 1, memory_order_relaxed)) < pool->items)
        pool->task(pool->arg, i, thread);
}

typedef struct worker_start {
    struct ln_cpu_pool *pool;
    int thread;
    uint64_t seen;                /* the generation before its first job */
} worker_start;

static void *worker_main(void *p)
{
    worker_start start = *(worker_start *)p;
    free(p);
    struct ln_cpu_pool *pool = start.pool;
    uint64_t seen = start.seen;
    for (;;) {
        /* wait for the next job: poll a while, then sleep */
        int64_t until = now_ns() + SPIN_NS;
        int spins = 0;
        while (atomic_load_explicit(&pool->generation, memory_order_acquire) == seen) {
            cpu_relax();
            if (++spins % 64 == 0 && now_ns() > until) {
                pthread_mutex_lock(&pool->lock);
                pool->sleeping_workers++;
                while (atomic_load_explicit(&pool->generation, memory_order_acquire) == seen
                       && !pool->stop)
                    pthread_cond_wait(&pool->wake, &pool->lock);
                pool->sleeping_workers--;
                int stop = pool->stop;
                pthread_mutex_unlock(&pool->lock);
                if (stop)
                    return NULL;
                break;
            }
        }
        seen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        if (start.thread < pool->participants)
            run_items(pool, start.thread);
        if (atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool->lock);
            if (pool->caller_sleeping)
                pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->lock);
        }
    }
}

int ln_cpu_pool_open(ln_cpu_context *ctx)
{
    struct ln_cpu_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return ln_error(LN_ENOMEM, "out of host memory for the cpu thread pool");
    pthread_mutex_init(&pool->lock, NULL);
    pthread_mutex_init(&pool->submit, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    ctx->pool = pool;
    return LN_OK;
}

void ln_cpu_pool_close(ln_cpu_context *ctx)
{
    struct ln_cpu_pool *pool = ctx->pool;
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stop = 1;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->workers; i++)
        pthread_join(pool->ids[i], NULL);
    pthread_cond_destroy(&pool->done);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->submit);
    pthread_mutex_destroy(&pool->lock);
    free(pool->ids);
    free(pool);
    ctx->pool = NULL;
}

/* Starts workers until there are `count` (under submit); returns how many
 * there are: fewer when the system refuses threads. */
static int grow(struct ln_cpu_pool *pool, int count)
{
    if (count > pool->capacity) {
        pthread_t *ids = realloc(pool->ids, sizeof *ids * (size_t)count);
        if (!ids)
            return pool->workers;
        pool->ids = ids;
        pool->capacity = count;
    }
    while (pool->workers < count) {
        worker_start *start = malloc(sizeof *start);
        if (!start)
            break;
        start->pool = pool;
        start->thread = pool->workers + 1;
        /* no job is in flight: the next generation is its first job */
        start->seen = atomic_load_explicit(&pool->generation, memory_order_relaxed);
        if (pthread_create(&pool->ids[pool->workers], NULL, worker_main, start) != 0) {
            free(start);
            break;
        }
        pool->workers++;
    }
    return pool->workers;
}

void ln_cpu_parallel(ln_cpu_context *ctx, int threads, int64_t items, ln_cpu_task task,
                     void *arg)
{
    struct ln_cpu_pool *pool = ctx->pool;
    if (threads > items)
        threads = (int)items;
    /* pool busy: run alone rather than deadlock (see the top) */
    if (threads <= 1 || !pool || pthread_mutex_trylock(&pool->submit) != 0) {
        for (int64_t i = 0; i < items; i++)
            task(arg, i, 0);
        return;
    }
    int workers = grow(pool, threads - 1);
    pool->task = task;
    pool->arg = arg;
    pool->items = items;
    pool->participants = workers + 1 < threads ? workers + 1 : threads;
    atomic_store_explicit(&pool->next, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->pending, workers, memory_order_relaxed);
    pthread_mutex_lock(&pool->lock);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    if (pool->sleeping_workers)
        pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);

    run_items(pool, 0);

    /* wait for the workers: poll a while, then sleep */
    int64_t until = now_ns() + SPIN_NS;
    int spins = 0;
    while (atomic_load_explicit(&pool->pending, memory_order_acquire) > 0) {
        cpu_relax();
        if (++spins % 64 == 0 && now_ns() > until) {
            pthread_mutex_lock(&pool->lock);
            pool->caller_sleeping = 1;
            while (atomic_load_explicit(&pool->pending, memory_order_acquire) > 0)
                pthread_cond_wait(&pool->done, &pool->lock);
            pool->caller_sleeping = 0;
            pthread_mutex_unlock(&pool->lock);
            break;
        }
    }
    pthread_mutex_unlock(&pool->submit);
}

typedef struct range_job {
    ln_cpu_range_task task;
    void *arg;
    int64_t n, piece;
} range_job;

static void run_piece(void *p, int64_t item, int thread)
{
    (void)thread;
    range_job *job = p;
    int64_t lo = item * job->piece, hi = lo + job->piece < job->n ? lo + job->piece : job->n;
    job->task(job->arg, lo, hi);
}

/* [0, n) in a few pieces per thread, each a whole number of cache lines. */
static void parallel_pieces(ln_cpu_context *ctx, int threads, int64_t n, ln_cpu_range_task task,
                            void *arg)
{
    if (threads <= 1) {
        if (n > 0)
            task(arg, 0, n);
        return;
    }
    int64_t pieces = (int64_t)threads * 4;
    range_job job = {task, arg, n, ((n + pieces - 1) / pieces + 15) & ~(int64_t)15};
    ln_cpu_parallel(ctx, threads, (n + job.piece - 1) / job.piece, run_piece, &job);
}

void ln_cpu_parallel_range(ln_cpu_context *ctx, int64_t n, ln_cpu_range_task task, void *arg)
{
    parallel_pieces(ctx, ln_cpu_threads_for(ctx, n), n, task, arg);
}

void ln_cpu_parallel_range_work(ln_cpu_context *ctx, int64_t n, int64_t work, ln_cpu_range_task task,
                                void *arg)
{
    parallel_pieces(ctx, ln_cpu_threads_for(ctx, work), n, task, arg);
}

typedef struct sum_job {
    float *out;
    const float *groups;
    int count;
    int64_t stride;
    int accumulate;
} sum_job;

/* A block of columns at a time, group after group: each sum adds the same
 * values in the same order as column by column (the same bits), but the
 * additions run down contiguous rows, in vector registers (column by
 * column they were scalar: 3% of block 2's backward, summing its groups'
 * filter gradients). */
#define SUM_BLOCK 64

static void sum_range(void *p, int64_t lo, int64_t hi)
{
    const sum_job *j = p;
    for (int64_t i0 = lo; i0 < hi; i0 += SUM_BLOCK) {
        int n = hi - i0 < SUM_BLOCK ? (int)(hi - i0) : SUM_BLOCK;
        float acc[SUM_BLOCK];
        for (int i = 0; i < n; i++)
            acc[i] = j->accumulate ? j->out[i0 + i] : 0.0f;
        for (int g = 0; g < j->count; g++) {
            const float *row = j->groups + g * j->stride + i0;
            for (int i = 0; i < n; i++)
                acc[i] += row[i];
        }
        for (int i = 0; i < n; i++)
            j->out[i0 + i] = acc[i];
    }
}

void ln_cpu_sum_groups(ln_cpu_context *ctx, float *out, const float *groups, int count,
                       int64_t stride, int64_t n, int accumulate)
{
    sum_job job = {out, groups, count, stride, accumulate};
    parallel_pieces(ctx, ln_cpu_threads_for(ctx, n * count), n, sum_range, &job);
}
