/* Shared pieces of the libFuzzer harnesses: in-memory files, a Lua state with
 * lunet.core, and the invariant failure that libFuzzer reports as a crash. */
#ifndef LUNET_FUZZ_UTIL_H
#define LUNET_FUZZ_UTIL_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

/* A file holding `data` that the readers can open by name: a memfd, named
 * "/proc/self/fd/N" in `path`. Returns the descriptor, to close with
 * fuzz_memfile_close. */
int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t path_len);
void fuzz_memfile_close(int fd);

/* A directory for files the harnesses write (a tmpfs when there is one). */
const char *fuzz_scratch_dir(void);

/* A new Lua state with the standard libraries, `core` = lunet.core (also in
 * package.loaded) and one CPU thread. */
lua_State *fuzz_lua_state(void);

/* Runs `chunk` with the values on the stack as arguments (chunk's `...`); a
 * Lua error is an invariant violation, reported with fuzz_fail. */
void fuzz_lua_run(lua_State *L, const char *chunk_name, const char *chunk, int nargs);

/* An invariant does not hold: prints the message and aborts, which libFuzzer
 * reports as a crash and saves the input. */
void fuzz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Checks that a failed core call left a message (and, when `prefix` is not
 * NULL, that the message starts with it). */
void fuzz_check_message(const char *prefix);

/* Checks a file reader's status `read` against the parser's status `parsed`
 * on the same bytes: a plain (not gzipped) file reads exactly when its bytes
 * parse, and a failed read leaves a message that starts with `path`. Returns
 * whether the read succeeded. */
int fuzz_check_read(const uint8_t *data, size_t size, int parsed, int read, const char *path);

#endif
