/*
 * A bounded text builder for log lines and error messages.
 *
 * Why not snprintf: wasi-libc's printf family drags in its stdio
 * machinery, whose stdout/stderr streams import WASI (fd_write, fd_seek,
 * fd_close). Without them the component imports nothing but the
 * tcmu:handler interfaces and needs no WASI adapter at all. The messages
 * here need strings and decimal or hex numbers, nothing more.
 */
#ifndef C_DISK_TEXT_H
#define C_DISK_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Text in a caller's buffer, always NUL-terminated; appends past the end
 * are cut off, never written out of bounds. */
struct text {
    char *buf;
    size_t size; /* of buf, including the NUL; at least 1 */
    size_t len;
};

struct text text_init(char *buf, size_t size);
void text_str(struct text *t, const char *s);
/* At most `len` bytes of `s`, which need not be NUL-terminated. */
void text_mem(struct text *t, const char *s, size_t len);
void text_u64(struct text *t, uint64_t value);
/* `value` as two upper-case hex digits. */
void text_hex8(struct text *t, uint8_t value);

#endif
