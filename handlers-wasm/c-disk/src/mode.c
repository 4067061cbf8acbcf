/*
 * MODE SENSE and MODE SELECT (SPC-4 6.11-6.14, SBC-3 6.4): the caching
 * page (WCE changeable) and the control page (D_SENSE changeable).
 * Nothing is saved across restarts, so saved values are refused.
 *
 * SPC would have a mode change raise MODE PARAMETERS CHANGED for the
 * other initiators; the handler cannot tell initiators apart (the kernel
 * keeps the I_T nexus to itself), so it does not.
 */
#include <string.h>

#include "disk.h"
#include "scsi.h"

enum page_control { PC_CURRENT = 0, PC_CHANGEABLE = 1, PC_DEFAULT = 2, PC_SAVED = 3 };

enum {
    PAGE_VENDOR_SPECIFIC = 0x00,
    PAGE_CACHING = 0x08,
    PAGE_CONTROL = 0x0A,
    PAGE_ALL = 0x3F,
    SUBPAGE_ALL = 0xFF,
    /* Parameter bytes after the two-byte page header. */
    CACHING_LEN = 0x12,
    CONTROL_LEN = 0x0A,
    /* Bits in the first parameter byte. */
    WCE = 0x04,
    D_SENSE = 0x04,
    /* DEVICE-SPECIFIC PARAMETER of the mode header (SBC-3 6.4.1). */
    DEVICE_SPECIFIC_WP = 0x80,
    DEVICE_SPECIFIC_DPOFUA = 0x10,
    SHORT_DESCRIPTOR_LEN = 8,
    LONG_DESCRIPTOR_LEN = 16,
    MAX_PAGE_LEN = CACHING_LEN,
};

/* The mode parameters of one page, in each flavour: built fresh from the
 * device state, so MODE SENSE and MODE SELECT agree by construction. */
struct mode_page {
    uint8_t code;
    uint8_t len;
    void (*fill)(const struct disk *d, enum page_control pc, uint8_t *parameters);
};

static void caching_parameters(const struct disk *d, enum page_control pc, uint8_t *p) {
    memset(p, 0, CACHING_LEN);
    const bool wce = pc == PC_CHANGEABLE || pc == PC_DEFAULT || d->write_cache;
    p[0] = wce ? WCE : 0; /* RCD stays 0: reads are cached by the host */
}

static void control_parameters(const struct disk *d, enum page_control pc, uint8_t *p) {
    memset(p, 0, CONTROL_LEN);
    const bool d_sense = pc == PC_CHANGEABLE || (pc == PC_CURRENT && d->descriptor_sense);
    p[0] = d_sense ? D_SENSE : 0;
}

/* In ascending page order, which is how page 3Fh returns them. */
static const struct mode_page PAGES[] = {
    {PAGE_CACHING, CACHING_LEN, caching_parameters},
    {PAGE_CONTROL, CONTROL_LEN, control_parameters},
};
#define PAGE_COUNT (sizeof PAGES / sizeof PAGES[0])

static const struct mode_page *find_page(uint8_t code) {
    for (size_t i = 0; i < PAGE_COUNT; i++) {
        if (PAGES[i].code == code)
            return &PAGES[i];
    }
    return NULL;
}

static void append_page(const struct disk *d, const struct mode_page *page, enum page_control pc, struct reply *r) {
    reply_u8(r, page->code); /* PS 0: nothing is savable; SPF 0: page_0 format */
    reply_u8(r, page->len);
    uint8_t *parameters = reply_zeroes(r, page->len);
    if (parameters)
        page->fill(d, pc, parameters);
}

static void append_block_descriptor(const struct disk *d, bool long_lba, enum page_control pc, struct reply *r) {
    /* Nothing in a block descriptor is changeable. */
    const uint64_t blocks = pc == PC_CHANGEABLE ? 0 : disk_blocks(d);
    const uint32_t length = pc == PC_CHANGEABLE ? 0 : BLOCK_SIZE;
    if (long_lba) {
        reply_be64(r, blocks);
        reply_be32(r, 0);
        reply_be32(r, length);
    } else {
        /* SBC-3: a count that does not fit is reported as FFFFFFFFh. */
        reply_be32(r, blocks > UINT32_MAX ? UINT32_MAX : (uint32_t)blocks);
        reply_u8(r, 0);
        reply_u8(r, (uint8_t)(length >> 16));
        reply_be16(r, (uint16_t)length);
    }
}

struct outcome cmd_mode_sense(struct disk *d, const struct command *c) {
    const bool ten = c->cdb[0] == OP_MODE_SENSE_10;
    TRY(need_cdb(c, ten ? 10 : 6));
    const uint8_t *cdb = c->cdb;
    const bool dbd = cdb[1] & 0x08;
    const bool long_lba = ten && (cdb[1] & 0x10); /* LLBAA */
    const enum page_control pc = (enum page_control)(cdb[2] >> 6);
    const uint8_t code = cdb[2] & 0x3F;
    const uint8_t subpage = cdb[3];
    const uint32_t allocation_length = ten ? get_be16(cdb + 7) : cdb[4];

    if (pc == PC_SAVED)
        return fail_code(SAVING_PARAMETERS_NOT_SUPPORTED);
    /* Which pages: all page_0 pages for 3Fh (this disk has no subpages,
     * so 3Fh/FFh is the same list), or the one asked for. Page 00h is
     * vendor specific and needs no page format: without one, the header
     * and block descriptor alone answer it. */
    const struct mode_page *only = NULL;
    if (code == PAGE_ALL) {
        if (subpage != 0 && subpage != SUBPAGE_ALL)
            return fail(invalid_cdb_field(3, NO_BIT));
    } else if (code == PAGE_VENDOR_SPECIFIC && subpage == 0) {
        /* header and block descriptor only */
    } else {
        only = find_page(code);
        if (!only)
            return fail(invalid_cdb_field(2, 5));
        if (subpage != 0 && subpage != SUBPAGE_ALL)
            return fail(invalid_cdb_field(3, NO_BIT));
    }

    struct reply r;
    reply_init(&r);
    const uint8_t device_specific = (uint8_t)((d->read_only ? DEVICE_SPECIFIC_WP : 0) | DEVICE_SPECIFIC_DPOFUA);
    const size_t descriptor_len = dbd ? 0 : long_lba ? LONG_DESCRIPTOR_LEN : SHORT_DESCRIPTOR_LEN;
    if (ten) {
        reply_be16(&r, 0); /* MODE DATA LENGTH, below */
        reply_u8(&r, 0);   /* MEDIUM TYPE */
        reply_u8(&r, device_specific);
        reply_u8(&r, long_lba && !dbd ? 0x01 : 0x00); /* LONGLBA */
        reply_u8(&r, 0);
        reply_be16(&r, (uint16_t)descriptor_len);
    } else {
        reply_u8(&r, 0);
        reply_u8(&r, 0);
        reply_u8(&r, device_specific);
        reply_u8(&r, (uint8_t)descriptor_len);
    }
    if (!dbd)
        append_block_descriptor(d, long_lba, pc, &r);
    if (code == PAGE_ALL) {
        for (size_t i = 0; i < PAGE_COUNT; i++)
            append_page(d, &PAGES[i], pc, &r);
    } else if (only) {
        append_page(d, only, pc, &r);
    }
    /* MODE DATA LENGTH counts the bytes after itself. Every reply here is
     * far below the 256 bytes MODE SENSE(6) can describe. */
    if (ten) {
        uint8_t *len = reply_at(&r, 0);
        if (len)
            put_be16(len, (uint16_t)(r.len - 2));
    } else {
        uint8_t *len = reply_at(&r, 0);
        if (len)
            *len = (uint8_t)(r.len - 1);
    }
    return respond(c, &r, allocation_length);
}

struct outcome disk_set_write_cache(struct disk *d, bool enabled) {
    /* Turning the write cache off promises that completed writes are
     * durable, including those acknowledged while it was on. */
    if (d->write_cache && !enabled) {
        enum io_result result = store_flush();
        if (result != IO_OK)
            return fail(write_failure(result));
    }
    d->write_cache = enabled;
    return good();
}

/* Check a sent page against the current values and the changeable mask:
 * only changeable bits may differ. On success the new values are in
 * `wanted`. `at` is the page's offset in the parameter list, for the
 * field pointer. */
static struct outcome check_page(const struct disk *d, const struct mode_page *page, const uint8_t *sent,
                                 size_t sent_len, size_t at) {
    if (sent_len != page->len)
        return fail(invalid_parameter_field((uint16_t)(at + 1), NO_BIT)); /* PAGE LENGTH */
    uint8_t current[MAX_PAGE_LEN];
    uint8_t changeable[MAX_PAGE_LEN];
    page->fill(d, PC_CURRENT, current);
    page->fill(d, PC_CHANGEABLE, changeable);
    for (size_t i = 0; i < sent_len; i++) {
        const uint8_t forbidden = (uint8_t)((current[i] ^ sent[i]) & ~changeable[i]);
        if (forbidden) {
            int bit = 7;
            while (!(forbidden & (1u << bit)))
                bit--;
            return fail(invalid_parameter_field((uint16_t)(at + 2 + i), bit));
        }
    }
    return good();
}

/* The parameter list, already copied out of data-out. Every page is
 * checked before any takes effect. */
static struct outcome apply_parameters(struct disk *d, const uint8_t *list, size_t len, bool ten) {
    if (len == 0)
        return good();
    const size_t header_len = ten ? 8 : 4;
    if (len < header_len)
        return fail_code(PARAMETER_LIST_LENGTH_ERROR);
    const bool long_lba = ten && (list[4] & 0x01);
    const size_t descriptors_len = ten ? get_be16(list + 6) : list[3];
    const size_t descriptor_len = long_lba ? LONG_DESCRIPTOR_LEN : SHORT_DESCRIPTOR_LEN;
    if (descriptors_len % descriptor_len != 0)
        return fail(invalid_parameter_field(ten ? 6 : 3, NO_BIT));
    if (descriptors_len > len - header_len)
        return fail_code(PARAMETER_LIST_LENGTH_ERROR);

    /* Block descriptors may restate the capacity and block size, not
     * change them. */
    for (size_t at = header_len; at < header_len + descriptors_len; at += descriptor_len) {
        const uint8_t *b = list + at;
        const uint64_t blocks = long_lba ? get_be64(b) : get_be32(b);
        const uint32_t length = long_lba ? get_be32(b + 12) : get_be24(b + 5);
        const uint64_t ours = disk_blocks(d);
        /* A short descriptor says FFFFFFFFh for a count it cannot hold. */
        const bool capped = !long_lba && blocks == UINT32_MAX && ours > UINT32_MAX;
        const bool same_count = blocks == 0 || blocks == ours || capped;
        if (!same_count || length != BLOCK_SIZE)
            return fail(invalid_parameter_field((uint16_t)header_len, NO_BIT));
    }

    bool write_cache = d->write_cache;
    bool descriptor_sense = d->descriptor_sense;
    size_t at = header_len + descriptors_len;
    while (at < len) {
        const uint8_t *page = list + at;
        const size_t rest = len - at;
        const bool subpage_format = page[0] & 0x40;
        const size_t page_header = subpage_format ? 4 : 2;
        if (rest < page_header)
            return fail_code(PARAMETER_LIST_LENGTH_ERROR);
        const size_t parameters_len = subpage_format ? get_be16(page + 2) : page[1];
        if (parameters_len > rest - page_header)
            return fail_code(PARAMETER_LIST_LENGTH_ERROR);
        const struct mode_page *ours = subpage_format ? NULL : find_page(page[0] & 0x3F);
        if (!ours)
            return fail(invalid_parameter_field((uint16_t)at, 5)); /* PAGE CODE */
        const uint8_t *parameters = page + page_header;
        TRY(check_page(d, ours, parameters, parameters_len, at));
        if (ours->code == PAGE_CACHING)
            write_cache = parameters[0] & WCE;
        else
            descriptor_sense = parameters[0] & D_SENSE;
        at += page_header + parameters_len;
    }
    TRY(disk_set_write_cache(d, write_cache));
    d->descriptor_sense = descriptor_sense;
    return good();
}

/* MODE SELECT(6/10). A clear PF bit means a vendor-specific page layout;
 * this device's vendor-specific layout is the standard one, so PF is not
 * checked. */
struct outcome cmd_mode_select(struct disk *d, const struct command *c) {
    const bool ten = c->cdb[0] == OP_MODE_SELECT_10;
    TRY(need_cdb(c, ten ? 10 : 6));
    if (c->cdb[1] & 0x01)
        return fail(invalid_cdb_field(1, 0)); /* SP: nothing is saved */
    uint32_t len = ten ? get_be16(c->cdb + 7) : c->cdb[4];
    if (len > c->data_out_len)
        len = c->data_out_len;
    if (len == 0)
        return good();
    struct bytes list;
    if (transfer_read_data_out(0, len, &list) != IO_OK)
        return fail_code(INTERNAL_TARGET_FAILURE);
    const struct outcome outcome = apply_parameters(d, list.ptr, list.len, ten);
    bytes_free(&list);
    return outcome;
}
