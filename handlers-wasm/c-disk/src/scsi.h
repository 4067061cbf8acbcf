/*
 * SCSI constants the disk needs (SPC-4, SBC-3) and big-endian field
 * access. CDB and parameter fields are big-endian on the wire; reading
 * them a byte at a time keeps the code free of alignment and endianness
 * assumptions.
 */
#ifndef C_DISK_SCSI_H
#define C_DISK_SCSI_H

#include <stddef.h>
#include <stdint.h>

/* Status bytes. */
#define STATUS_GOOD 0x00
#define STATUS_CHECK_CONDITION 0x02

/* Peripheral device type of a direct-access block device. */
#define PERIPHERAL_DISK 0x00

/* Operation codes. */
enum {
    OP_TEST_UNIT_READY = 0x00,
    OP_REQUEST_SENSE = 0x03,
    OP_READ_6 = 0x08,
    OP_WRITE_6 = 0x0A,
    OP_INQUIRY = 0x12,
    OP_MODE_SELECT_6 = 0x15,
    OP_MODE_SENSE_6 = 0x1A,
    OP_START_STOP_UNIT = 0x1B,
    OP_PREVENT_ALLOW_MEDIUM_REMOVAL = 0x1E,
    OP_READ_CAPACITY_10 = 0x25,
    OP_READ_10 = 0x28,
    OP_WRITE_10 = 0x2A,
    OP_VERIFY_10 = 0x2F,
    OP_SYNCHRONIZE_CACHE_10 = 0x35,
    OP_WRITE_SAME_10 = 0x41,
    OP_UNMAP = 0x42,
    OP_MODE_SELECT_10 = 0x55,
    OP_MODE_SENSE_10 = 0x5A,
    OP_PERSISTENT_RESERVE_IN = 0x5E,
    OP_PERSISTENT_RESERVE_OUT = 0x5F,
    OP_VARIABLE_LENGTH_CDB = 0x7F,
    OP_EXTENDED_COPY = 0x83,
    OP_RECEIVE_COPY_RESULTS = 0x84,
    OP_READ_16 = 0x88,
    OP_COMPARE_AND_WRITE = 0x89,
    OP_WRITE_16 = 0x8A,
    OP_VERIFY_16 = 0x8F,
    OP_SYNCHRONIZE_CACHE_16 = 0x91,
    OP_WRITE_SAME_16 = 0x93,
    OP_SERVICE_ACTION_IN_16 = 0x9E,
    OP_SERVICE_ACTION_OUT_16 = 0x9F,
    OP_REPORT_LUNS = 0xA0,
    OP_MAINTENANCE_IN = 0xA3,
    OP_MAINTENANCE_OUT = 0xA4,
    OP_READ_12 = 0xA8,
    OP_WRITE_12 = 0xAA,
    OP_SERVICE_ACTION_IN_12 = 0xAB,
    OP_VERIFY_12 = 0xAF,
};

/* Service actions. */
#define SA_READ_CAPACITY_16 0x10
#define SA_REPORT_SUPPORTED_OPERATION_CODES 0x0C

/* VPD page codes. */
enum {
    VPD_SUPPORTED_PAGES = 0x00,
    VPD_UNIT_SERIAL_NUMBER = 0x80,
    VPD_DEVICE_IDENTIFICATION = 0x83,
    VPD_BLOCK_LIMITS = 0xB0,
    VPD_BLOCK_DEVICE_CHARACTERISTICS = 0xB1,
    VPD_LOGICAL_BLOCK_PROVISIONING = 0xB2,
};

/* Whether `opcode` is one whose CDB carries a service action field
 * (SPC-4 4.2.5.1): REPORT SUPPORTED OPERATION CODES must then be asked
 * with reporting option 010b, not 001b. */
static inline int has_service_action(uint8_t opcode) {
    switch (opcode) {
    case OP_PERSISTENT_RESERVE_IN:
    case OP_PERSISTENT_RESERVE_OUT:
    case OP_VARIABLE_LENGTH_CDB:
    case OP_EXTENDED_COPY:
    case OP_RECEIVE_COPY_RESULTS:
    case OP_SERVICE_ACTION_IN_16:
    case OP_SERVICE_ACTION_OUT_16:
    case OP_MAINTENANCE_IN:
    case OP_MAINTENANCE_OUT:
    case OP_SERVICE_ACTION_IN_12:
        return 1;
    default:
        return 0;
    }
}

static inline uint16_t get_be16(const uint8_t *p) {
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t get_be24(const uint8_t *p) {
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static inline uint32_t get_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t get_be64(const uint8_t *p) {
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static inline void put_be16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void put_be64(uint8_t *p, uint64_t v) {
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

#endif
