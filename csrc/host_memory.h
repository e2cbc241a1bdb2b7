/* Memory slots shared by the two host backends ("ref" and "cpu"). */
#ifndef LUNET_HOST_MEMORY_H
#define LUNET_HOST_MEMORY_H

#include <stddef.h>

/* 64-byte aligned, so vector loads never split a cache line. */
int ln_host_alloc(void *ctx, size_t nbytes, void **ptr);
/* Successful ln_host_alloc calls so far (tensor storage and the CPU's scratch
 * space): the specs check that a steady training step adds none. */
unsigned long long ln_host_allocation_count(void);
void ln_host_free(void *ctx, void *ptr);
int ln_host_upload(void *ctx, void *dst, const void *host_src, size_t nbytes);
int ln_host_download(void *ctx, void *host_dst, const void *src, size_t nbytes);

/* Model name from /proc/cpuinfo ("unknown CPU" when absent). */
void ln_host_cpu_name(char *buf, size_t len);
int ln_host_cpu_cores(void);

#endif
