/*
 * Sense data (SPC-4 4.5): what a failed command reports, and its
 * encoding in fixed format (response code 70h) or descriptor format
 * (72h), whichever the initiator chose through D_SENSE or REQUEST
 * SENSE's DESC bit.
 */
#ifndef C_DISK_SENSE_H
#define C_DISK_SENSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A sense key with its additional sense code and qualifier. */
struct sense_code {
    uint8_t key;
    uint8_t asc;
    uint8_t ascq;
};

#define SENSE_CODE(k, a, q) ((struct sense_code){.key = (k), .asc = (a), .ascq = (q)})

/* The triples this disk reports. */
#define NO_ADDITIONAL_SENSE SENSE_CODE(0x00, 0x00, 0x00)
#define LUN_NOT_READY SENSE_CODE(0x02, 0x04, 0x00)
#define MEDIUM_NOT_PRESENT SENSE_CODE(0x02, 0x3A, 0x00)
#define WRITE_ERROR SENSE_CODE(0x03, 0x0C, 0x00)
#define UNRECOVERED_READ_ERROR SENSE_CODE(0x03, 0x11, 0x00)
#define INTERNAL_TARGET_FAILURE SENSE_CODE(0x04, 0x44, 0x00)
#define PARAMETER_LIST_LENGTH_ERROR SENSE_CODE(0x05, 0x1A, 0x00)
#define INVALID_COMMAND_OPERATION_CODE SENSE_CODE(0x05, 0x20, 0x00)
#define LBA_OUT_OF_RANGE SENSE_CODE(0x05, 0x21, 0x00)
#define INVALID_FIELD_IN_CDB SENSE_CODE(0x05, 0x24, 0x00)
#define INVALID_FIELD_IN_PARAMETER_LIST SENSE_CODE(0x05, 0x26, 0x00)
#define SAVING_PARAMETERS_NOT_SUPPORTED SENSE_CODE(0x05, 0x39, 0x00)
#define CAPACITY_DATA_HAS_CHANGED SENSE_CODE(0x06, 0x2A, 0x09)
#define WRITE_PROTECTED SENSE_CODE(0x07, 0x27, 0x00)
#define MISCOMPARE_DURING_VERIFY SENSE_CODE(0x0E, 0x1D, 0x00)

/* Bit pointer value meaning "the whole byte": no BPV in the field pointer. */
#define NO_BIT (-1)

/* Sense to report: the triple plus the optional INFORMATION field and
 * sense-key-specific field pointer. */
struct sense {
    struct sense_code code;
    bool has_information;
    uint64_t information;
    bool has_field_pointer;
    bool field_in_cdb;  /* C/D: the field is in the CDB, not the parameter list */
    uint16_t field_byte;
    int8_t field_bit; /* 0..7, or NO_BIT */
};

/* Longest sense this file encodes: the descriptor-format header, an
 * information descriptor and a sense-key-specific descriptor. */
#define SENSE_MAX_LEN 32

static inline bool sense_code_equal(struct sense_code a, struct sense_code b) {
    return a.key == b.key && a.asc == b.asc && a.ascq == b.ascq;
}

struct sense sense_of(struct sense_code code);
/* INVALID FIELD IN CDB pointing at `byte` (and `bit`, or NO_BIT). */
struct sense invalid_cdb_field(uint16_t byte, int bit);
/* INVALID FIELD IN PARAMETER LIST pointing at `byte` (and `bit`, or NO_BIT). */
struct sense invalid_parameter_field(uint16_t byte, int bit);
struct sense sense_with_information(struct sense_code code, uint64_t information);

/* Encode `sense` into `out` (at least SENSE_MAX_LEN bytes); returns the
 * length. */
size_t sense_encode(const struct sense *sense, bool descriptor_format, uint8_t out[SENSE_MAX_LEN]);

#endif
