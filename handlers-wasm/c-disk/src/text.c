#include "text.h"

struct text text_init(char *buf, size_t size) {
    buf[0] = '\0';
    return (struct text){.buf = buf, .size = size, .len = 0};
}

static void put(struct text *t, char ch) {
    if (t->len + 1 < t->size) {
        t->buf[t->len++] = ch;
        t->buf[t->len] = '\0';
    }
}

void text_str(struct text *t, const char *s) {
    while (*s)
        put(t, *s++);
}

void text_mem(struct text *t, const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        put(t, s[i]);
}

void text_u64(struct text *t, uint64_t value) {
    char digits[20]; /* 2^64 - 1 has 20 */
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (n > 0)
        put(t, digits[--n]);
}

void text_hex8(struct text *t, uint8_t value) {
    static const char HEX[] = "0123456789ABCDEF";
    put(t, HEX[value >> 4]);
    put(t, HEX[value & 0x0F]);
}
