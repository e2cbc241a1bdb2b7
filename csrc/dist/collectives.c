/* Collectives over MPI (see collectives.h). MPI is called from the thread
 * that loaded the module only (MPI_THREAD_FUNNELED): lunet's worker threads
 * never call it. */
#define _GNU_SOURCE /* dladdr, on_exit */
#include "collectives.h"

#include <dlfcn.h>
#include <limits.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
    int initialized;       /* MPI_Init done by us */
    int finished;          /* MPI_Finalize done */
    int rank, size, local_rank, local_size;
    MPI_Comm comm;         /* our own copy of MPI_COMM_WORLD */
    int64_t seq;           /* collectives run so far */
    double seconds;        /* inside collectives */
    double wait_seconds;   /* of which in the agreement: mostly waiting for the slowest rank */
    char error[2048];
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
} g = {.comm = MPI_COMM_NULL};

int ln_dist_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g.error, sizeof g.error, fmt, ap);
    va_end(ap);
    return -1;
}

const char *ln_dist_error(void) { return g.error; }
int ln_dist_initialized(void) { return g.initialized && !g.finished; }
int ln_dist_rank(void) { return g.rank; }
int ln_dist_size(void) { return g.initialized ? g.size : 1; }
int ln_dist_local_rank(void) { return g.local_rank; }
int ln_dist_local_size(void) { return g.initialized ? g.local_size : 1; }
double ln_dist_seconds(void) { return g.seconds; }
double ln_dist_wait_seconds(void) { return g.wait_seconds; }

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "MPI_Allreduce: MPI_ERR_TRUNCATE: message truncated" */
static int mpi_fail(const char *call, int code)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "MPI error %d", code);
    return ln_dist_fail("%s failed on rank %d of %d: %s", call, g.rank, g.size, text);
}

int ln_dist_launched(void)
{
    /* Open MPI, MPICH/Hydra (and Slurm's PMI), PMIx launchers */
    const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v)
            return 1;
    }
    return 0;
}

const char *ln_dist_library_version(void)
{
    if (!g.version[0]) {
        int len = 0;
        MPI_Get_library_version(g.version, &len);
        char *nl = strchr(g.version, '\n'); /* first line: name and version */
        if (nl)
            *nl = '\0';
        nl = strchr(g.version, ',');
        if (nl)
            *nl = '\0';
    }
    return g.version;
}

void ln_dist_abort(int code, const char *message)
{
    fprintf(stderr, "lunet.dist: rank %d of %d: %s\n", g.rank, ln_dist_size(), message);
    fflush(stderr);
    fflush(stdout);
    if (g.initialized && !g.finished)
        MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
    _exit(code ? code : 1);
}

/* Runs when the process ends (exit or return from main, after lua_close).
 * A failed rank (non-zero status: the Lua error is printed above) stops the
 * job at once, so the others never wait for it. A rank that ends normally
 * first agrees with the others that everyone has finished: a rank still
 * waiting in a collective then fails with an error naming this one instead
 * of hanging; then MPI is finalized. */
static void at_process_exit(int status, void *arg)
{
    (void)arg;
    if (!g.initialized || g.finished)
        return;
    if (status != 0) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "exited with status %d (its error is printed above); stopping every rank "
                 "(MPI_Abort)", status);
        ln_dist_abort(status, msg);
    }
    fflush(stdout);
    ln_dist_call finish = {.kind = LN_DIST_FINISH, .dtype = -1};
    if (ln_dist_agree(&finish) != 0)
        ln_dist_abort(1, g.error);
    g.finished = 1;
    MPI_Comm_free(&g.comm);
    MPI_Finalize();
}

int ln_dist_init(int *rank, int *size)
{
    if (g.finished)
        return ln_dist_fail("lunet.dist: MPI was already finalized in this process");
    if (!g.initialized) {
        /* Open MPI loads its components with dlopen and they look for
         * libmpi's symbols globally; this module was loaded RTLD_LOCAL by
         * Lua, so make libmpi global first. */
        Dl_info info;
        if (dladdr((void *)&MPI_Init, &info) && info.dli_fname)
            dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
        int already = 0;
        MPI_Initialized(&already);
        if (!already) {
            int provided = 0;
            int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
            if (rc != MPI_SUCCESS)
                return ln_dist_fail("lunet.dist.init: MPI_Init_thread failed (code %d)", rc);
        }
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        int rc = MPI_Comm_dup(MPI_COMM_WORLD, &g.comm);
        if (rc != MPI_SUCCESS)
            return mpi_fail("lunet.dist.init: MPI_Comm_dup", rc);
        MPI_Comm_set_errhandler(g.comm, MPI_ERRORS_RETURN);
        MPI_Comm_rank(g.comm, &g.rank);
        MPI_Comm_size(g.comm, &g.size);
        MPI_Comm local;
        if (MPI_Comm_split_type(g.comm, MPI_COMM_TYPE_SHARED, g.rank, MPI_INFO_NULL, &local) ==
            MPI_SUCCESS) {
            MPI_Comm_rank(local, &g.local_rank);
            MPI_Comm_size(local, &g.local_size);
            MPI_Comm_free(&local);
        } else {
            g.local_rank = g.rank;
            g.local_size = g.size;
        }
        g.initialized = 1;
        on_exit(at_process_exit, NULL);
    }
    *rank = g.rank;
    *size = g.size;
    return 0;
}

/* --- agreement ------------------------------------------------------------- */

#define CALL_FIELDS ((int)(sizeof(ln_dist_call) / sizeof(int64_t)))

static const char *op_name(int64_t op)
{
    switch (op) {
    case LN_DIST_SUM: return "sum";
    case LN_DIST_AVG: return "avg";
    case LN_DIST_MAX: return "max";
    default: return "?";
    }
}

/* "allreduce(avg) of float32 [3290000] on the host, collective #12" */
static void describe_call(char *buf, size_t len, const ln_dist_call *c)
{
    char what[64] = "";
    switch (c->kind) {
    case LN_DIST_ALLREDUCE: snprintf(what, sizeof what, "allreduce(%s)", op_name(c->op)); break;
    case LN_DIST_BROADCAST: snprintf(what, sizeof what, "broadcast(root %lld)", (long long)c->root); break;
    case LN_DIST_BARRIER: snprintf(what, sizeof what, "barrier"); break;
    case LN_DIST_FINISH: snprintf(what, sizeof what, "the end of its program"); break;
    default: snprintf(what, sizeof what, "collective kind %lld", (long long)c->kind); break;
    }
    if (c->dtype < 0) {
        snprintf(buf, len, "%s (collective #%lld)", what, (long long)c->seq + 1);
        return;
    }
    char shape[256];
    size_t used = 0;
    shape[0] = '\0';
    for (int64_t d = 0; d < c->ndim && d < LN_MAX_DIMS; d++)
        used += (size_t)snprintf(shape + used, sizeof shape - used, "%s%lld", d ? ", " : "",
                                 (long long)c->shape[d]);
    const char *dtype = (c->dtype >= 0 && c->dtype < LN_DTYPE_COUNT)
                            ? ln_dtype_name((ln_dtype)c->dtype) : "?";
    snprintf(buf, len, "%s of %s [%s] in %s memory (collective #%lld)", what, dtype, shape,
             c->device_type ? "CUDA" : "host", (long long)c->seq + 1);
}

/* LUNET_DIST_TIMEOUT=<seconds>: how long a rank waits for the others to
 * reach a collective before it stops the job; unset or 0: no limit (a rank
 * that fails stops the job anyway; this catches one that hangs). */
static double wait_limit(void)
{
    const char *v = getenv("LUNET_DIST_TIMEOUT");
    double s = v ? atof(v) : 0;
    return s > 0 ? s : 0;
}

/* Waits for a non-blocking request: spins briefly, then sleeps in growing
 * steps, so a rank that waits for a slower one leaves it the CPU. */
static int wait_request(MPI_Request *req, const char *call, const ln_dist_call *what)
{
    long sleep_ns = 0;
    double limit = wait_limit(), t0 = limit > 0 ? now() : 0;
    for (int spins = 0;; spins++) {
        int done = 0;
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS)
            return mpi_fail(call, rc);
        if (done)
            return 0;
        if (spins < 200)
            continue;
        if (limit > 0 && (spins & 63) == 0 && now() - t0 > limit) {
            char desc[400], msg[600];
            describe_call(desc, sizeof desc, what);
            snprintf(msg, sizeof msg, "waited more than %g s (LUNET_DIST_TIMEOUT) for the other ranks to "
                     "reach %s; a rank is stuck or much slower: stopping every rank (MPI_Abort)",
                     limit, desc);
            ln_dist_abort(1, msg);
        }
        sleep_ns = sleep_ns ? (sleep_ns * 2 > 1000000 ? 1000000 : sleep_ns * 2) : 10000;
        struct timespec ts = {0, sleep_ns};
        nanosleep(&ts, NULL);
    }
}

int ln_dist_agree(ln_dist_call *mine)
{
    if (!ln_dist_initialized())
        return ln_dist_fail("MPI is not initialized (call lunet.dist.init() under mpirun)");
    mine->seq = g.seq;
    double t0 = now();
    /* maxima of the fields and of their negations: max == -max(-x) on every
     * field means every rank sent the same record */
    int64_t both[2 * CALL_FIELDS];
    const int64_t *fields = (const int64_t *)mine;
    for (int i = 0; i < CALL_FIELDS; i++) {
        both[i] = fields[i];
        both[CALL_FIELDS + i] = -fields[i];
    }
    MPI_Request req;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, both, 2 * CALL_FIELDS, MPI_INT64_T, MPI_MAX, g.comm,
                            &req);
    if (rc != MPI_SUCCESS)
        return mpi_fail("MPI_Iallreduce", rc);
    if (wait_request(&req, "MPI_Iallreduce", mine) != 0)
        return -1;
    g.seq++;
    int same = 1;
    for (int i = 0; i < CALL_FIELDS; i++)
        same = same && both[i] == -both[CALL_FIELDS + i];
    if (same) {
        double spent = now() - t0;
        g.seconds += spent;
        g.wait_seconds += spent;
        return 0;
    }
    /* every rank saw the mismatch: gather each one's record to name them */
    ln_dist_call *all = calloc((size_t)g.size, sizeof *all);
    if (!all)
        return ln_dist_fail("the ranks disagree on the collective (no memory to say how)");
    rc = MPI_Allgather(mine, CALL_FIELDS, MPI_INT64_T, all, CALL_FIELDS, MPI_INT64_T, g.comm);
    if (rc != MPI_SUCCESS) {
        free(all);
        return mpi_fail("MPI_Allgather", rc);
    }
    size_t used = (size_t)snprintf(g.error, sizeof g.error,
                                   "the ranks disagree on the collective call:");
    int shown = 0;
    for (int r = 0; r < g.size && used < sizeof g.error; r++) {
        /* list the first rank of each different call (at most 8) */
        int seen = 0;
        for (int q = 0; q < r && !seen; q++)
            seen = memcmp(&all[q], &all[r], sizeof all[r]) == 0;
        if (seen)
            continue;
        if (shown++ == 8) {
            used += (size_t)snprintf(g.error + used, sizeof g.error - used, " ...");
            break;
        }
        char call[400];
        describe_call(call, sizeof call, &all[r]);
        used += (size_t)snprintf(g.error + used, sizeof g.error - used, " rank %d: %s;", r, call);
    }
    if (used < sizeof g.error)
        snprintf(g.error + used, sizeof g.error - used,
                 " every rank must make the same calls in the same order (this is rank %d)",
                 g.rank);
    free(all);
    g.seconds += now() - t0;
    return -1;
}

/* --- data ---------------------------------------------------------------- */

static int mpi_type(ln_dtype dtype, MPI_Datatype *out)
{
    switch (dtype) {
    case LN_FLOAT32: *out = MPI_FLOAT; return 0;
    case LN_INT32: *out = MPI_INT32_T; return 0;
    case LN_UINT8: *out = MPI_UINT8_T; return 0;
    default: return -1;
    }
}

/* MPI counts are ints: larger buffers go in chunks */
#define CHUNK_ELEMENTS ((int64_t)1 << 30)

int ln_dist_allreduce(void *data, int64_t numel, ln_dtype dtype, ln_dist_op op)
{
    MPI_Datatype type;
    if (mpi_type(dtype, &type) != 0)
        return ln_dist_fail("%s tensors cannot be reduced (float32, int32 or uint8)",
                            ln_dtype_name(dtype));
    if (op == LN_DIST_AVG && dtype != LN_FLOAT32)
        return ln_dist_fail("\"avg\" needs a float32 tensor, got %s", ln_dtype_name(dtype));
    double t0 = now();
    size_t esize = ln_dtype_size(dtype);
    for (int64_t done = 0; done < numel; done += CHUNK_ELEMENTS) {
        int64_t n = numel - done < CHUNK_ELEMENTS ? numel - done : CHUNK_ELEMENTS;
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)data + (size_t)done * esize, (int)n, type,
                               op == LN_DIST_MAX ? MPI_MAX : MPI_SUM, g.comm);
        if (rc != MPI_SUCCESS)
            return mpi_fail("MPI_Allreduce", rc);
    }
    if (op == LN_DIST_AVG) {
        float *x = data;
        const float size = (float)g.size;
        for (int64_t i = 0; i < numel; i++)
            x[i] /= size; /* a division, not a product with 1/size: exact as the mean of 1 process */
    }
    g.seconds += now() - t0;
    return 0;
}

int ln_dist_broadcast(void *data, int64_t numel, ln_dtype dtype, int root)
{
    double t0 = now();
    int64_t nbytes = numel * (int64_t)ln_dtype_size(dtype);
    for (int64_t done = 0; done < nbytes; done += CHUNK_ELEMENTS) {
        int64_t n = nbytes - done < CHUNK_ELEMENTS ? nbytes - done : CHUNK_ELEMENTS;
        int rc = MPI_Bcast((char *)data + done, (int)n, MPI_BYTE, root, g.comm);
        if (rc != MPI_SUCCESS)
            return mpi_fail("MPI_Bcast", rc);
    }
    g.seconds += now() - t0;
    return 0;
}

/* For the optional NCCL part (nccl.c): the communicator and the clock. */
void ln_dist_internal_comm(void *out);
void ln_dist_internal_comm(void *out) { *(MPI_Comm *)out = g.comm; }
void ln_dist_internal_add_seconds(double s);
void ln_dist_internal_add_seconds(double s) { g.seconds += s; }
