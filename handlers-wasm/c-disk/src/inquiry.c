/*
 * INQUIRY: who the device is (standard data, unit serial number, device
 * identification) and what it can do (the SBC-3 VPD pages).
 */
#include <string.h>

#include "disk.h"
#include "scsi.h"

#define VENDOR "TCMUWASM"
#define PRODUCT "C DISK"
#define REVISION "0.1"

/* Version descriptors: SAM-5, SPC-4, SBC-3. */
static const uint16_t VERSION_DESCRIPTORS[] = {0x00A0, 0x0460, 0x04C0};
#define VERSION_DESCRIPTORS_AT 58

/* Pages offered, in ascending order as SPC-4 requires of page 00h. */
static const uint8_t VPD_PAGES[] = {
    VPD_SUPPORTED_PAGES,    VPD_UNIT_SERIAL_NUMBER,           VPD_DEVICE_IDENTIFICATION,
    VPD_BLOCK_LIMITS,       VPD_BLOCK_DEVICE_CHARACTERISTICS, VPD_LOGICAL_BLOCK_PROVISIONING,
};

/* Designation descriptor fields (SPC-4 7.8.6). */
enum {
    CODE_SET_BINARY = 0x1,
    CODE_SET_ASCII = 0x2,
    DESIGNATOR_T10_VENDOR_ID = 0x1,
    DESIGNATOR_NAA = 0x3,
};

static void standard_data(struct reply *r) {
    const size_t len = VERSION_DESCRIPTORS_AT + 2 * (sizeof VERSION_DESCRIPTORS / sizeof VERSION_DESCRIPTORS[0]);
    reply_u8(r, PERIPHERAL_DISK); /* qualifier 000b: the unit is connected */
    reply_u8(r, 0);               /* not removable */
    reply_u8(r, 0x06);            /* VERSION: SPC-4 */
    reply_u8(r, 0x02);            /* RESPONSE DATA FORMAT 2 */
    reply_u8(r, (uint8_t)(len - 5));
    reply_u8(r, 0);
    reply_u8(r, 0);
    reply_u8(r, 0x02); /* CMDQUE: the kernel queues, the handler serializes */
    reply_ascii(r, VENDOR, 8);
    reply_ascii(r, PRODUCT, 16);
    reply_ascii(r, REVISION, 4);
    reply_zeroes(r, VERSION_DESCRIPTORS_AT - r->len);
    for (size_t i = 0; i < sizeof VERSION_DESCRIPTORS / sizeof VERSION_DESCRIPTORS[0]; i++)
        reply_be16(r, VERSION_DESCRIPTORS[i]);
}

/* Start a VPD page; vpd_end fills in its PAGE LENGTH. */
static void vpd_begin(struct reply *r, uint8_t code) {
    reply_u8(r, PERIPHERAL_DISK);
    reply_u8(r, code);
    reply_be16(r, 0);
}

static void vpd_end(struct reply *r) {
    uint8_t *length = reply_at(r, 2);
    if (length && r->len >= 4)
        put_be16(length, (uint16_t)(r->len - 4));
}

static void device_identification(const struct disk *d, struct reply *r) {
    /* The logical unit's NAA name: what multipath and udev key on. */
    reply_u8(r, CODE_SET_BINARY);
    reply_u8(r, DESIGNATOR_NAA); /* association 00b: the logical unit */
    reply_u8(r, 0);
    reply_u8(r, (uint8_t)d->naa_len);
    reply_bytes(r, d->naa, d->naa_len);

    /* A T10 vendor ID designator: vendor, then the serial, padded to a
     * multiple of four bytes as SPC-4 wants. */
    const size_t serial_len = strlen(d->serial);
    size_t id_len = 8 + serial_len;
    id_len = (id_len + 3) & ~(size_t)3;
    reply_u8(r, CODE_SET_ASCII);
    reply_u8(r, DESIGNATOR_T10_VENDOR_ID);
    reply_u8(r, 0);
    reply_u8(r, (uint8_t)id_len); /* at most 8 + 128 rounded up: fits */
    reply_ascii(r, VENDOR, 8);
    reply_ascii(r, d->serial, id_len - 8);
}

static void block_limits(struct reply *r) {
    reply_u8(r, 0x01);                         /* WSNZ: WRITE SAME of 0 blocks is refused */
    reply_u8(r, MAX_COMPARE_AND_WRITE_BLOCKS); /* MAXIMUM COMPARE AND WRITE LENGTH */
    reply_be16(r, 0);                          /* OPTIMAL TRANSFER LENGTH GRANULARITY */
    /* MAXIMUM TRANSFER LENGTH: what the contract's 32-bit byte counts carry. */
    reply_be32(r, UINT32_MAX / BLOCK_SIZE);
    reply_be32(r, 0);                       /* OPTIMAL TRANSFER LENGTH */
    reply_be32(r, 0);                       /* MAXIMUM PREFETCH LENGTH */
    reply_be32(r, MAX_PROVISIONING_BLOCKS); /* MAXIMUM UNMAP LBA COUNT */
    reply_be32(r, MAX_UNMAP_DESCRIPTORS);   /* MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT */
    reply_be32(r, 1);                       /* OPTIMAL UNMAP GRANULARITY */
    reply_be32(r, 0);                       /* UGAVALID clear */
    reply_be64(r, MAX_PROVISIONING_BLOCKS); /* MAXIMUM WRITE SAME LENGTH */
    reply_zeroes(r, 4 + 0x3C - r->len);
}

static void block_device_characteristics(struct reply *r) {
    /* Non-rotating: the store sits behind the host's page cache, so there
     * is no seek penalty a rotation rate would warn about. */
    reply_be16(r, 0x0001);
    reply_u8(r, 0);
    reply_u8(r, 0); /* NOMINAL FORM FACTOR: not reported */
    reply_zeroes(r, 4 + 0x3C - r->len);
}

static void logical_block_provisioning(struct reply *r) {
    reply_u8(r, 0); /* THRESHOLD EXPONENT */
    /* LBPU, LBPWS, LBPWS10, LBPRZ=001b; ANC_SUP clear. */
    reply_u8(r, 0x80 | 0x40 | 0x20 | 0x04);
    reply_u8(r, 0x02); /* PROVISIONING TYPE: thin */
    reply_u8(r, 0);
}

struct outcome cmd_inquiry(struct disk *d, const struct command *c) {
    TRY(need_cdb(c, 6));
    if (c->cdb[1] & 0x02)
        return fail(invalid_cdb_field(1, 1)); /* CMDDT: obsolete */
    const bool evpd = c->cdb[1] & 0x01;
    const uint8_t page = c->cdb[2];
    if (!evpd && page != 0)
        return fail(invalid_cdb_field(2, NO_BIT));

    struct reply r;
    reply_init(&r);
    if (!evpd) {
        standard_data(&r);
        return respond(c, &r, get_be16(c->cdb + 3));
    }
    vpd_begin(&r, page);
    switch (page) {
    case VPD_SUPPORTED_PAGES:
        reply_bytes(&r, VPD_PAGES, sizeof VPD_PAGES);
        break;
    case VPD_UNIT_SERIAL_NUMBER:
        reply_bytes(&r, d->serial, strlen(d->serial));
        break;
    case VPD_DEVICE_IDENTIFICATION:
        device_identification(d, &r);
        break;
    case VPD_BLOCK_LIMITS:
        block_limits(&r);
        break;
    case VPD_BLOCK_DEVICE_CHARACTERISTICS:
        block_device_characteristics(&r);
        break;
    case VPD_LOGICAL_BLOCK_PROVISIONING:
        logical_block_provisioning(&r);
        break;
    default:
        return fail(invalid_cdb_field(2, NO_BIT));
    }
    vpd_end(&r);
    return respond(c, &r, get_be16(c->cdb + 3));
}
