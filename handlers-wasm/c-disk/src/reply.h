/*
 * A bounded builder for parameter data (INQUIRY, VPD pages, MODE SENSE,
 * REPORT SUPPORTED OPERATION CODES). Appends past the end are refused
 * and remembered, so builders need no length checks of their own and a
 * too-small buffer shows up as one INTERNAL TARGET FAILURE instead of a
 * memory overrun.
 */
#ifndef C_DISK_REPLY_H
#define C_DISK_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for the largest reply: REPORT SUPPORTED OPERATION CODES with
 * timeout descriptors (4 + 29 * 20 bytes). */
#define REPLY_CAPACITY 1024

struct reply {
    uint8_t data[REPLY_CAPACITY];
    size_t len;
    bool overflow;
};

void reply_init(struct reply *r);
/* Append `n` zero bytes; returns where they start, or NULL (and marks
 * the reply overflowed) if they do not fit. */
uint8_t *reply_zeroes(struct reply *r, size_t n);
void reply_u8(struct reply *r, uint8_t v);
void reply_be16(struct reply *r, uint16_t v);
void reply_be32(struct reply *r, uint32_t v);
void reply_be64(struct reply *r, uint64_t v);
void reply_bytes(struct reply *r, const void *data, size_t n);
/* An ASCII field of `width` bytes: `text`, cut or padded with spaces. */
void reply_ascii(struct reply *r, const char *text, size_t width);
/* The byte at `at`, which must already have been appended (NULL if not). */
uint8_t *reply_at(struct reply *r, size_t at);

#endif
