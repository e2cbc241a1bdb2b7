/* Collectives over MPI for data-parallel training: the Lua-free part of
 * lunet/dist.so (the binding is l_dist.c).
 *
 * Every collective first exchanges a small record of what each rank is about
 * to do (the kind, the reduction, the root, the dtype and shape, and a call
 * counter) with one MPI_Allreduce of maxima and minima. Ranks that disagree
 * (different shapes, one rank at a barrier and another at an allreduce, a
 * rank that skipped a step, a rank that has finished) get an error on every
 * rank that names each rank's call, before any data moves: a mismatch is an
 * error, never a hang or a wrong sum.
 *
 * A rank that ends with a non-zero exit status (a Lua error, os.exit(1))
 * stops the whole job with MPI_Abort, naming itself; a rank that ends
 * normally finalizes MPI once the others have ended too (see
 * ln_dist_init). */
#ifndef LUNET_DIST_COLLECTIVES_H
#define LUNET_DIST_COLLECTIVES_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "backend.h"

typedef enum ln_dist_kind {
    LN_DIST_ALLREDUCE = 1,
    LN_DIST_BROADCAST = 2,
    LN_DIST_BARRIER = 3,
    LN_DIST_FINISH = 4     /* the rank's process is ending normally */
} ln_dist_kind;

typedef enum ln_dist_op { LN_DIST_SUM = 0, LN_DIST_AVG = 1, LN_DIST_MAX = 2 } ln_dist_op;

/* What a rank is about to do; compared across ranks before data moves. */
typedef struct ln_dist_call {
    int64_t kind;          /* ln_dist_kind */
    int64_t op;            /* ln_dist_op (allreduce), else 0 */
    int64_t root;          /* broadcast root, else 0 */
    int64_t dtype;         /* ln_dtype of the data, -1 for none */
    int64_t device_type;   /* 0 host memory, 1 CUDA memory */
    int64_t ndim;
    int64_t shape[LN_MAX_DIMS];
    int64_t seq;           /* collectives this rank has run since init */
} ln_dist_call;

/* 1 when this process was started by an MPI launcher (mpirun, mpiexec,
 * srun): the environment names a rank. */
int ln_dist_launched(void);

/* MPI_Init (once), then the rank and size of MPI_COMM_WORLD. Returns 0, or
 * -1 with the reason in ln_dist_error(). */
int ln_dist_init(int *rank, int *size);
int ln_dist_initialized(void);
int ln_dist_rank(void);
int ln_dist_size(void);
/* The rank among the ranks on this node (for "cuda:<local rank>"). */
int ln_dist_local_rank(void);
int ln_dist_local_size(void);
/* "Open MPI v4.1.4, ..." */
const char *ln_dist_library_version(void);

/* Compares `mine` across ranks (one small allreduce); on a mismatch every
 * rank fails with a message listing each rank's call. Counts the call. */
int ln_dist_agree(ln_dist_call *mine);

/* In-place collectives on host memory of `numel` elements. `avg` divides
 * the sum by the size (float32 only). */
int ln_dist_allreduce(void *data, int64_t numel, ln_dtype dtype, ln_dist_op op);
int ln_dist_broadcast(void *data, int64_t numel, ln_dtype dtype, int root);

/* Prints "lunet.dist: rank R of N: <message>" to stderr and ends the whole
 * job with MPI_Abort(code). Does not return. */
void ln_dist_abort(int code, const char *message);

/* Seconds the ranks have spent inside MPI collectives so far (data moves
 * and waiting for the other ranks, the agreement included). */
double ln_dist_seconds(void);
/* Of those, the seconds spent in the agreement that precedes each
 * collective: mostly waiting for the slowest rank to arrive. */
double ln_dist_wait_seconds(void);

/* The message of the last failure. */
const char *ln_dist_error(void);
/* Formats the failure message and returns -1. */
int ln_dist_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
