#include "reply.h"

#include <string.h>

#include "scsi.h"

void reply_init(struct reply *r) {
    r->len = 0;
    r->overflow = false;
}

uint8_t *reply_zeroes(struct reply *r, size_t n) {
    if (r->overflow || n > REPLY_CAPACITY - r->len) {
        r->overflow = true;
        return NULL;
    }
    uint8_t *at = r->data + r->len;
    memset(at, 0, n);
    r->len += n;
    return at;
}

void reply_u8(struct reply *r, uint8_t v) {
    uint8_t *p = reply_zeroes(r, 1);
    if (p)
        *p = v;
}

void reply_be16(struct reply *r, uint16_t v) {
    uint8_t *p = reply_zeroes(r, 2);
    if (p)
        put_be16(p, v);
}

void reply_be32(struct reply *r, uint32_t v) {
    uint8_t *p = reply_zeroes(r, 4);
    if (p)
        put_be32(p, v);
}

void reply_be64(struct reply *r, uint64_t v) {
    uint8_t *p = reply_zeroes(r, 8);
    if (p)
        put_be64(p, v);
}

void reply_bytes(struct reply *r, const void *data, size_t n) {
    uint8_t *p = reply_zeroes(r, n);
    if (p && n > 0)
        memcpy(p, data, n);
}

void reply_ascii(struct reply *r, const char *text, size_t width) {
    uint8_t *p = reply_zeroes(r, width);
    if (!p)
        return;
    memset(p, ' ', width);
    for (size_t i = 0; i < width && text[i] != '\0'; i++)
        p[i] = (uint8_t)text[i];
}

uint8_t *reply_at(struct reply *r, size_t at) {
    return at < r->len ? r->data + at : NULL;
}
