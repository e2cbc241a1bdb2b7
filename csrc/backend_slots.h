/* The slots of ln_backend by name, to check that a backend fills them all
 * (checked at registration by the core, device.c;
 * lunet.cuda.missing_slots). Compiled into the core and into lunet/cuda.so. */
#ifndef LUNET_BACKEND_SLOTS_H
#define LUNET_BACKEND_SLOTS_H

#include "backend.h"

int ln_backend_slot_count(void);
const char *ln_backend_slot_name(int i);
/* Whether slot i may stay empty (see backend.h: the fused blocks). */
int ln_backend_slot_optional(int i);
/* Whether slot i may stay empty in a backend on host memory (ref, cpu):
 * the optional ones, attach, synchronize and set_num_threads. */
int ln_backend_slot_optional_on_host(int i);
/* Whether slot i of `backend` holds a function. */
int ln_backend_slot_filled(const ln_backend *backend, int i);

#endif
