/*
 * Command dispatch, unit attentions and the checks every block command
 * shares.
 */
#include "disk.h"

#include <string.h>

#include "scsi.h"

uint64_t disk_blocks(const struct disk *d) {
    return d->size / BLOCK_SIZE;
}

void disk_raise_unit_attention(struct disk *d, struct sense_code code) {
    for (size_t i = 0; i < d->unit_attention_count; i++) {
        if (sense_code_equal(d->unit_attentions[i], code))
            return; /* the same condition is never queued twice */
    }
    if (d->unit_attention_count == MAX_UNIT_ATTENTIONS) {
        memmove(d->unit_attentions, d->unit_attentions + 1,
                (MAX_UNIT_ATTENTIONS - 1) * sizeof d->unit_attentions[0]);
        d->unit_attention_count--;
    }
    d->unit_attentions[d->unit_attention_count++] = code;
}

bool disk_take_unit_attention(struct disk *d, struct sense_code *out) {
    if (d->unit_attention_count == 0)
        return false;
    *out = d->unit_attentions[0];
    d->unit_attention_count--;
    memmove(d->unit_attentions, d->unit_attentions + 1, d->unit_attention_count * sizeof d->unit_attentions[0]);
    return true;
}

/* SAM-5 5.14: INQUIRY and REPORT LUNS run despite a pending unit
 * attention and leave it pending; REQUEST SENSE runs and reports it. */
static bool bypasses_unit_attention(uint8_t opcode) {
    return opcode == OP_INQUIRY || opcode == OP_REPORT_LUNS || opcode == OP_REQUEST_SENSE;
}

static struct outcome dispatch(struct disk *d, const struct command *c) {
    switch (c->cdb[0]) {
    case OP_TEST_UNIT_READY:
        return cmd_test_unit_ready(d, c);
    case OP_REQUEST_SENSE:
        return cmd_request_sense(d, c);
    case OP_INQUIRY:
        return cmd_inquiry(d, c);
    case OP_MODE_SENSE_6:
    case OP_MODE_SENSE_10:
        return cmd_mode_sense(d, c);
    case OP_MODE_SELECT_6:
    case OP_MODE_SELECT_10:
        return cmd_mode_select(d, c);
    case OP_START_STOP_UNIT:
        return cmd_start_stop_unit(d, c);
    case OP_PREVENT_ALLOW_MEDIUM_REMOVAL:
        return cmd_prevent_allow_medium_removal(d, c);
    case OP_READ_CAPACITY_10:
        return cmd_read_capacity_10(d, c);
    case OP_SERVICE_ACTION_IN_16:
        return cmd_service_action_in_16(d, c);
    case OP_MAINTENANCE_IN:
        return cmd_report_supported_operation_codes(d, c);
    case OP_READ_6:
    case OP_READ_10:
    case OP_READ_12:
    case OP_READ_16:
        return cmd_read(d, c);
    case OP_WRITE_6:
    case OP_WRITE_10:
    case OP_WRITE_12:
    case OP_WRITE_16:
        return cmd_write(d, c);
    case OP_VERIFY_10:
    case OP_VERIFY_12:
    case OP_VERIFY_16:
        return cmd_verify(d, c);
    case OP_COMPARE_AND_WRITE:
        return cmd_compare_and_write(d, c);
    case OP_WRITE_SAME_10:
    case OP_WRITE_SAME_16:
        return cmd_write_same(d, c);
    case OP_UNMAP:
        return cmd_unmap(d, c);
    case OP_SYNCHRONIZE_CACHE_10:
    case OP_SYNCHRONIZE_CACHE_16:
        return cmd_synchronize_cache(d, c);
    default:
        return fail_code(INVALID_COMMAND_OPERATION_CODE);
    }
}

struct outcome disk_handle(struct disk *d, const struct command *c) {
    if (c->cdb_len == 0)
        return fail_code(INVALID_COMMAND_OPERATION_CODE);
    struct sense_code attention;
    if (!bypasses_unit_attention(c->cdb[0]) && disk_take_unit_attention(d, &attention))
        return fail_code(attention);
    return dispatch(d, c);
}

struct outcome need_cdb(const struct command *c, size_t len) {
    return c->cdb_len >= len ? good() : fail_code(INVALID_FIELD_IN_CDB);
}

struct outcome disk_extent(const struct disk *d, uint64_t lba, uint64_t blocks, struct extent *out) {
    const uint64_t total = disk_blocks(d);
    /* Written so that nothing can wrap: LBA 2^64-1 plus two blocks is out
     * of range, not LBA 0. Zero blocks at the capacity is in range. */
    if (blocks > total || lba > total - blocks)
        return fail_code(LBA_OUT_OF_RANGE);
    out->offset = lba * BLOCK_SIZE;
    out->len = blocks * BLOCK_SIZE;
    return good();
}

struct outcome disk_check_writable(const struct disk *d) {
    return d->read_only ? fail_code(WRITE_PROTECTED) : good();
}

struct outcome fits_buffer(uint64_t len, uint32_t room, uint32_t *out) {
    /* The kernel sizes buffers by the initiator's expected transfer
     * length, which can disagree with the CDB; like LIO, refuse such a
     * command rather than move part of its data. */
    if (len > room)
        return fail_code(INVALID_FIELD_IN_CDB);
    *out = (uint32_t)len;
    return good();
}

struct outcome disk_complete_write(const struct disk *d, bool fua) {
    if (fua || !d->write_cache) {
        enum io_result result = store_flush();
        if (result != IO_OK)
            return fail(write_failure(result));
    }
    return good();
}

struct outcome respond(const struct command *c, const struct reply *r, uint32_t allocation_length) {
    if (r->overflow) {
        char buf[80];
        struct text message = text_init(buf, sizeof buf);
        text_str(&message, "the reply to opcode 0x");
        text_hex8(&message, c->cdb[0]);
        text_str(&message, " outgrew its buffer");
        host_log(LOG_ERROR, buf);
        return fail_code(INTERNAL_TARGET_FAILURE);
    }
    /* SPC-4 4.2.5.6: a short allocation length is no error; the initiator
     * gets the first bytes, length fields still describing the whole. */
    size_t len = r->len;
    if (len > allocation_length)
        len = allocation_length;
    if (len > c->data_in_len)
        len = c->data_in_len;
    if (len == 0)
        return good();
    if (transfer_write_data_in(0, r->data, len) != IO_OK)
        return fail_code(INTERNAL_TARGET_FAILURE);
    return good_with_data((uint32_t)len);
}

/* OUT OF RANGE from the store can only mean it shrank under the command. */
struct sense read_failure(enum io_result result) {
    switch (result) {
    case IO_OUT_OF_RANGE:
        return sense_of(LBA_OUT_OF_RANGE);
    case IO_FAILED:
        return sense_of(UNRECOVERED_READ_ERROR);
    default:
        return sense_of(INTERNAL_TARGET_FAILURE);
    }
}

struct sense write_failure(enum io_result result) {
    switch (result) {
    case IO_OUT_OF_RANGE:
        return sense_of(LBA_OUT_OF_RANGE);
    case IO_READ_ONLY:
        return sense_of(WRITE_PROTECTED);
    case IO_FAILED:
        return sense_of(WRITE_ERROR);
    default:
        return sense_of(INTERNAL_TARGET_FAILURE);
    }
}
