#include "sense.h"

#include <string.h>

#include "scsi.h"

enum {
    FIXED_CURRENT = 0x70,
    DESCRIPTOR_CURRENT = 0x72,
    FIXED_LEN = 18,
    DESCRIPTOR_HEADER_LEN = 8,
    /* VALID bit of fixed byte 0 and of the information descriptor. */
    VALID = 0x80,
    INFORMATION_DESCRIPTOR = 0x00,
    SENSE_KEY_SPECIFIC_DESCRIPTOR = 0x02,
    /* Sense-key-specific bits: SKSV, C/D and BPV. */
    SKSV = 0x80,
    C_D = 0x40,
    BPV = 0x08,
};

struct sense sense_of(struct sense_code code) {
    return (struct sense){.code = code, .field_bit = NO_BIT};
}

static struct sense field_pointer(struct sense_code code, bool in_cdb, uint16_t byte, int bit) {
    struct sense s = sense_of(code);
    s.has_field_pointer = true;
    s.field_in_cdb = in_cdb;
    s.field_byte = byte;
    s.field_bit = (bit >= 0 && bit <= 7) ? (int8_t)bit : NO_BIT;
    return s;
}

struct sense invalid_cdb_field(uint16_t byte, int bit) {
    return field_pointer(INVALID_FIELD_IN_CDB, true, byte, bit);
}

struct sense invalid_parameter_field(uint16_t byte, int bit) {
    return field_pointer(INVALID_FIELD_IN_PARAMETER_LIST, false, byte, bit);
}

struct sense sense_with_information(struct sense_code code, uint64_t information) {
    struct sense s = sense_of(code);
    s.has_information = true;
    s.information = information;
    return s;
}

/* The three sense-key-specific bytes of a field pointer. */
static void encode_field_pointer(const struct sense *sense, uint8_t out[3]) {
    out[0] = SKSV;
    if (sense->field_in_cdb)
        out[0] |= C_D;
    if (sense->field_bit != NO_BIT)
        out[0] |= (uint8_t)(BPV | (sense->field_bit & 0x07));
    put_be16(out + 1, sense->field_byte);
}

static size_t encode_fixed(const struct sense *sense, uint8_t out[SENSE_MAX_LEN]) {
    memset(out, 0, FIXED_LEN);
    out[0] = FIXED_CURRENT;
    out[2] = sense->code.key & 0x0F;
    /* Fixed format has 32 bits of INFORMATION; a wider value is left
     * out (VALID clear), as SPC-4 requires. */
    if (sense->has_information && sense->information <= UINT32_MAX) {
        out[0] |= VALID;
        put_be32(out + 3, (uint32_t)sense->information);
    }
    out[7] = FIXED_LEN - 8; /* ADDITIONAL SENSE LENGTH: bytes 8..17 */
    out[12] = sense->code.asc;
    out[13] = sense->code.ascq;
    if (sense->has_field_pointer)
        encode_field_pointer(sense, out + 15);
    return FIXED_LEN;
}

static size_t encode_descriptor(const struct sense *sense, uint8_t out[SENSE_MAX_LEN]) {
    memset(out, 0, SENSE_MAX_LEN);
    out[0] = DESCRIPTOR_CURRENT;
    out[1] = sense->code.key & 0x0F;
    out[2] = sense->code.asc;
    out[3] = sense->code.ascq;
    size_t len = DESCRIPTOR_HEADER_LEN;
    if (sense->has_information) {
        /* 12 bytes: type, ADDITIONAL LENGTH 0Ah, VALID, reserved, 8 bytes. */
        uint8_t *d = out + len;
        d[0] = INFORMATION_DESCRIPTOR;
        d[1] = 0x0A;
        d[2] = VALID;
        put_be64(d + 4, sense->information);
        len += 12;
    }
    if (sense->has_field_pointer) {
        /* 8 bytes: type, ADDITIONAL LENGTH 06h, 2 reserved, 3 SKS bytes, reserved. */
        uint8_t *d = out + len;
        d[0] = SENSE_KEY_SPECIFIC_DESCRIPTOR;
        d[1] = 0x06;
        encode_field_pointer(sense, d + 4);
        len += 8;
    }
    out[7] = (uint8_t)(len - DESCRIPTOR_HEADER_LEN);
    return len;
}

size_t sense_encode(const struct sense *sense, bool descriptor_format, uint8_t out[SENSE_MAX_LEN]) {
    return descriptor_format ? encode_descriptor(sense, out) : encode_fixed(sense, out);
}
