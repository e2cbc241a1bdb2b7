/* NCCL for CUDA tensors (see nccl_comm.h). One communicator for the whole
 * job, on this rank's CUDA device (one rank per GPU: NCCL refuses two ranks
 * on one device), and a stream of our own; lunet's stream is synchronised by
 * the caller before, and ours here after, so the order is kept without
 * reaching into the CUDA backend. */
#include "nccl_comm.h"

#include "collectives.h"

#ifndef LUNET_WITH_NCCL

int ln_dist_nccl_built(void) { return 0; }

static int not_built(void)
{
    return ln_dist_fail("this lunet/dist.so was built without NCCL (cmake -DLUNET_NCCL=ON); "
                        "CUDA tensors go through host memory instead");
}

int ln_dist_nccl_allreduce(void *data, int64_t numel, ln_dtype dtype, int op, int device_index)
{
    (void)data, (void)numel, (void)dtype, (void)op, (void)device_index;
    return not_built();
}

int ln_dist_nccl_broadcast(void *data, int64_t numel, ln_dtype dtype, int root, int device_index)
{
    (void)data, (void)numel, (void)dtype, (void)root, (void)device_index;
    return not_built();
}

#else

#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>
#include <time.h>

void ln_dist_internal_comm(void *out);
void ln_dist_internal_add_seconds(double s);

static struct {
    int ready;
    int device;
    ncclComm_t comm;
    cudaStream_t stream;
} nc = {.device = -1};

int ln_dist_nccl_built(void) { return 1; }

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int nccl_fail(const char *call, ncclResult_t r)
{
    return ln_dist_fail("%s failed on rank %d: %s%s", call, ln_dist_rank(), ncclGetErrorString(r),
                        r == ncclInvalidUsage ? " (each rank needs a GPU of its own: cuda:<local rank>)"
                                              : "");
}

static int cuda_fail(const char *call, cudaError_t e)
{
    return ln_dist_fail("%s failed on rank %d: %s", call, ln_dist_rank(), cudaGetErrorString(e));
}

static int setup(int device_index)
{
    if (nc.ready) {
        if (device_index != nc.device)
            return ln_dist_fail("NCCL was set up on cuda:%d, and this tensor is on cuda:%d "
                                "(one GPU per rank)", nc.device, device_index);
        return 0;
    }
    ncclUniqueId id;
    if (ln_dist_rank() == 0) {
        ncclResult_t r = ncclGetUniqueId(&id);
        if (r != ncclSuccess)
            return nccl_fail("ncclGetUniqueId", r);
    }
    MPI_Comm comm;
    ln_dist_internal_comm(&comm);
    int rc = MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, comm);
    if (rc != MPI_SUCCESS)
        return ln_dist_fail("MPI_Bcast of the NCCL id failed (code %d)", rc);
    cudaError_t e = cudaSetDevice(device_index);
    if (e != cudaSuccess)
        return cuda_fail("cudaSetDevice", e);
    e = cudaStreamCreateWithFlags(&nc.stream, cudaStreamNonBlocking);
    if (e != cudaSuccess)
        return cuda_fail("cudaStreamCreateWithFlags", e);
    ncclResult_t r = ncclCommInitRank(&nc.comm, ln_dist_size(), id, ln_dist_rank());
    if (r != ncclSuccess)
        return nccl_fail("ncclCommInitRank", r);
    nc.device = device_index;
    nc.ready = 1;
    return 0;
}

static int nccl_type(ln_dtype dtype, ncclDataType_t *out)
{
    switch (dtype) {
    case LN_FLOAT32: *out = ncclFloat32; return 0;
    case LN_INT32: *out = ncclInt32; return 0;
    case LN_UINT8: *out = ncclUint8; return 0;
    case LN_FLOAT16: *out = ncclFloat16; return 0;
    case LN_BFLOAT16: *out = ncclBfloat16; return 0;
    default: return ln_dist_fail("%s tensors are not supported by NCCL", ln_dtype_name(dtype));
    }
}

static int finish(double t0)
{
    cudaError_t e = cudaStreamSynchronize(nc.stream);
    if (e != cudaSuccess)
        return cuda_fail("cudaStreamSynchronize", e);
    ln_dist_internal_add_seconds(now() - t0);
    return 0;
}

int ln_dist_nccl_allreduce(void *data, int64_t numel, ln_dtype dtype, int op, int device_index)
{
    ncclDataType_t type = ncclFloat32;
    if (nccl_type(dtype, &type) != 0 || setup(device_index) != 0)
        return -1;
    double t0 = now();
    ncclRedOp_t red = op == 2 ? ncclMax : op == 1 ? ncclAvg : ncclSum;
    ncclResult_t r = ncclAllReduce(data, data, (size_t)numel, type, red, nc.comm, nc.stream);
    if (r != ncclSuccess)
        return nccl_fail("ncclAllReduce", r);
    return finish(t0);
}

int ln_dist_nccl_broadcast(void *data, int64_t numel, ln_dtype dtype, int root, int device_index)
{
    ncclDataType_t type = ncclFloat32;
    if (nccl_type(dtype, &type) != 0 || setup(device_index) != 0)
        return -1;
    double t0 = now();
    ncclResult_t r = ncclBroadcast(data, data, (size_t)numel, type, root, nc.comm, nc.stream);
    if (r != ncclSuccess)
        return nccl_fail("ncclBroadcast", r);
    return finish(t0);
}

#endif
