/* The slots of ln_backend by name, to check that a backend fills them all
 * (lunet.cuda.missing_slots). */
#ifndef LUNET_CUDA_BACKEND_SLOTS_H
#define LUNET_CUDA_BACKEND_SLOTS_H

#include "backend.h"

int ln_backend_slot_count(void);
const char *ln_backend_slot_name(int i);
/* Whether slot i may stay empty (see backend.h: the fused blocks). */
int ln_backend_slot_optional(int i);
/* Whether slot i of `backend` holds a function. */
int ln_backend_slot_filled(const ln_backend *backend, int i);

#endif
