#define _GNU_SOURCE
#include "host_memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "status.h"

static _Atomic unsigned long long host_allocations;

unsigned long long ln_host_allocation_count(void)
{
    return host_allocations;
}

int ln_host_alloc(void *ctx, size_t nbytes, void **ptr)
{
    (void)ctx;
    size_t rounded = (nbytes + 63) & ~(size_t)63;
    if (rounded < nbytes || (*ptr = aligned_alloc(64, rounded)) == NULL)
        return ln_error(LN_ENOMEM, "out of memory: could not allocate %zu bytes "
                        "on the host", nbytes);
    host_allocations++;
    return LN_OK;
}

void ln_host_free(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

int ln_host_upload(void *ctx, void *dst, const void *host_src, size_t nbytes)
{
    (void)ctx;
    if (nbytes)
        memmove(dst, host_src, nbytes);
    return LN_OK;
}

int ln_host_download(void *ctx, void *host_dst, const void *src, size_t nbytes)
{
    (void)ctx;
    if (nbytes)
        memmove(host_dst, src, nbytes);
    return LN_OK;
}

void ln_host_cpu_name(char *buf, size_t len)
{
    snprintf(buf, len, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *colon = strchr(line, ':');
            if (colon) {
                colon++;
                while (*colon == ' ' || *colon == '\t')
                    colon++;
                colon[strcspn(colon, "\n")] = '\0';
                snprintf(buf, len, "%s", colon);
            }
            break;
        }
    }
    fclose(f);
}

int ln_host_cpu_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
