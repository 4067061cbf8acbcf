/*
 * Commands about the logical unit as a whole: readiness, sense, power,
 * medium removal and capacity.
 */
#include "disk.h"
#include "scsi.h"

/* A store shrunk below one block leaves no medium to speak of. */
static struct outcome medium_present(const struct disk *d) {
    return disk_blocks(d) > 0 ? good() : fail_code(MEDIUM_NOT_PRESENT);
}

struct outcome cmd_test_unit_ready(struct disk *d, const struct command *c) {
    TRY(need_cdb(c, 6));
    return medium_present(d);
}

/* REQUEST SENSE: the oldest unit attention (which this clears), else NO
 * SENSE. Sense of failed commands travels with their CHECK CONDITION
 * (autosense), so nothing else is kept for REQUEST SENSE. DESC picks the
 * format. */
struct outcome cmd_request_sense(struct disk *d, const struct command *c) {
    TRY(need_cdb(c, 6));
    const bool descriptor = c->cdb[1] & 0x01;
    const uint8_t allocation_length = c->cdb[4];
    struct sense_code code = NO_ADDITIONAL_SENSE;
    disk_take_unit_attention(d, &code);
    const struct sense sense = sense_of(code);
    uint8_t bytes[SENSE_MAX_LEN];
    const size_t len = sense_encode(&sense, descriptor, bytes);
    struct reply r;
    reply_init(&r);
    reply_bytes(&r, bytes, len);
    return respond(c, &r, allocation_length);
}

/* START STOP UNIT. A store has no spindle, so the unit stays ready either
 * way; stopping flushes first unless NO_FLUSH says otherwise, which is
 * the part initiators rely on at shutdown. No power conditions, and no
 * medium to eject. */
struct outcome cmd_start_stop_unit(struct disk *d, const struct command *c) {
    (void)d;
    TRY(need_cdb(c, 6));
    const uint8_t byte4 = c->cdb[4];
    if (byte4 >> 4 != 0)
        return fail(invalid_cdb_field(4, 7)); /* POWER CONDITION */
    if (byte4 & 0x02)
        return fail(invalid_cdb_field(4, 1)); /* LOEJ */
    const bool start = byte4 & 0x01;
    const bool no_flush = byte4 & 0x04;
    if (!start && !no_flush) {
        enum io_result result = store_flush();
        if (result != IO_OK)
            return fail(write_failure(result));
    }
    return good();
}

/* PREVENT ALLOW MEDIUM REMOVAL: the medium cannot be removed anyway, so
 * either request is satisfied once it is valid. */
struct outcome cmd_prevent_allow_medium_removal(struct disk *d, const struct command *c) {
    (void)d;
    TRY(need_cdb(c, 6));
    if ((c->cdb[4] & 0x03) > 1)
        return fail(invalid_cdb_field(4, 1)); /* PREVENT 10b/11b: medium changers only */
    return good();
}

/* READ CAPACITY(10). PMI asks for the last block before a delay; there
 * are no delays, so the answer is always the last block. A LOGICAL
 * BLOCK ADDRESS without PMI is invalid. */
struct outcome cmd_read_capacity_10(struct disk *d, const struct command *c) {
    TRY(need_cdb(c, 10));
    const bool pmi = c->cdb[8] & 0x01;
    if (!pmi && get_be32(c->cdb + 2) != 0)
        return fail(invalid_cdb_field(2, NO_BIT));
    TRY(medium_present(d));
    const uint64_t last_lba = disk_blocks(d) - 1;
    struct reply r;
    reply_init(&r);
    /* FFFFFFFFh tells the initiator to use READ CAPACITY(16). */
    reply_be32(&r, last_lba > UINT32_MAX ? UINT32_MAX : (uint32_t)last_lba);
    reply_be32(&r, BLOCK_SIZE);
    return respond(c, &r, 8);
}

/* READ CAPACITY(16), the only SERVICE ACTION IN(16) this disk has. LBPME
 * and LBPRZ match VPD page B2h: thin provisioned, unmapped blocks read as
 * zeroes (the store's discard promises that). */
static struct outcome read_capacity_16(struct disk *d, const struct command *c) {
    const bool pmi = c->cdb[14] & 0x01;
    if (!pmi && get_be64(c->cdb + 2) != 0)
        return fail(invalid_cdb_field(2, NO_BIT));
    TRY(medium_present(d));
    struct reply r;
    reply_init(&r);
    reply_be64(&r, disk_blocks(d) - 1);
    reply_be32(&r, BLOCK_SIZE);
    reply_u8(&r, 0);          /* no protection information */
    reply_u8(&r, 0);          /* one logical block per physical block */
    reply_u8(&r, 0x80 | 0x40); /* LBPME, LBPRZ; LOWEST ALIGNED LBA 0 */
    reply_zeroes(&r, 32 - r.len);
    return respond(c, &r, get_be32(c->cdb + 10));
}

struct outcome cmd_service_action_in_16(struct disk *d, const struct command *c) {
    TRY(need_cdb(c, 16));
    if ((c->cdb[1] & 0x1F) != SA_READ_CAPACITY_16)
        return fail(invalid_cdb_field(1, 4));
    return read_capacity_16(d, c);
}
