/* Collectives on CUDA memory with NCCL: compiled in only with
 * -DLUNET_NCCL=ON (off by default: never run on a GPU yet). Without it,
 * lunet.dist stages CUDA tensors through host memory and MPI, and these
 * functions report that NCCL is not built. */
#ifndef LUNET_DIST_NCCL_COMM_H
#define LUNET_DIST_NCCL_COMM_H

#include <stdint.h>

#include "dtype.h"

/* 1 when this library was built with NCCL. */
int ln_dist_nccl_built(void);

/* In place on device memory of CUDA device `device_index` (the caller has
 * synchronised lunet's own stream first; these wait for NCCL to finish).
 * op: 0 sum, 1 avg, 2 max. The first call on a device sets up the
 * communicator (its id goes from rank 0 to the others through MPI). */
int ln_dist_nccl_allreduce(void *data, int64_t numel, ln_dtype dtype, int op,
                           int device_index);
int ln_dist_nccl_broadcast(void *data, int64_t numel, ln_dtype dtype, int root,
                           int device_index);

#endif
