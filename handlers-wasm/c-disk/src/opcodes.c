/*
 * REPORT SUPPORTED OPERATION CODES (SPC-4 6.35), from a table of what
 * disk.c dispatches. Each entry's CDB usage data has a one in every CDB
 * bit the handler acts on; bits it only looks at to refuse (RDPROTECT,
 * ANCHOR, LOEJ, ...) are zero, telling initiators not to use them.
 */
#include "disk.h"
#include "scsi.h"

#define F 0xFF

struct supported_command {
    uint8_t opcode;
    bool has_service_action;
    uint16_t service_action;
    uint8_t cdb_len;
    uint8_t usage[16];
};

/* In opcode order. */
static const struct supported_command COMMANDS[] = {
    {OP_TEST_UNIT_READY, false, 0, 6, {OP_TEST_UNIT_READY, 0, 0, 0, 0, 0}},
    {OP_REQUEST_SENSE, false, 0, 6, {OP_REQUEST_SENSE, 0x01, 0, 0, F, 0}},
    {OP_READ_6, false, 0, 6, {OP_READ_6, 0x1F, F, F, F, 0}},
    {OP_WRITE_6, false, 0, 6, {OP_WRITE_6, 0x1F, F, F, F, 0}},
    {OP_INQUIRY, false, 0, 6, {OP_INQUIRY, 0x01, F, F, F, 0}},
    {OP_MODE_SELECT_6, false, 0, 6, {OP_MODE_SELECT_6, 0x10, 0, 0, F, 0}},
    {OP_MODE_SENSE_6, false, 0, 6, {OP_MODE_SENSE_6, 0x08, F, F, F, 0}},
    {OP_START_STOP_UNIT, false, 0, 6, {OP_START_STOP_UNIT, 0x01, 0, 0, 0x05, 0}},
    {OP_PREVENT_ALLOW_MEDIUM_REMOVAL, false, 0, 6, {OP_PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 0x03, 0}},
    {OP_READ_CAPACITY_10, false, 0, 10, {OP_READ_CAPACITY_10, 0, F, F, F, F, 0, 0, 0x01, 0}},
    {OP_READ_10, false, 0, 10, {OP_READ_10, 0x18, F, F, F, F, 0, F, F, 0}},
    {OP_WRITE_10, false, 0, 10, {OP_WRITE_10, 0x18, F, F, F, F, 0, F, F, 0}},
    {OP_VERIFY_10, false, 0, 10, {OP_VERIFY_10, 0x16, F, F, F, F, 0, F, F, 0}},
    {OP_SYNCHRONIZE_CACHE_10, false, 0, 10, {OP_SYNCHRONIZE_CACHE_10, 0x02, F, F, F, F, 0, F, F, 0}},
    {OP_WRITE_SAME_10, false, 0, 10, {OP_WRITE_SAME_10, 0x08, F, F, F, F, 0, F, F, 0}},
    {OP_UNMAP, false, 0, 10, {OP_UNMAP, 0, 0, 0, 0, 0, 0, F, F, 0}},
    {OP_MODE_SELECT_10, false, 0, 10, {OP_MODE_SELECT_10, 0x10, 0, 0, 0, 0, 0, F, F, 0}},
    {OP_MODE_SENSE_10, false, 0, 10, {OP_MODE_SENSE_10, 0x18, F, F, 0, 0, 0, F, F, 0}},
    {OP_READ_16, false, 0, 16, {OP_READ_16, 0x18, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0}},
    {OP_COMPARE_AND_WRITE, false, 0, 16, {OP_COMPARE_AND_WRITE, 0x18, F, F, F, F, F, F, F, F, 0, 0, 0, F, 0, 0}},
    {OP_WRITE_16, false, 0, 16, {OP_WRITE_16, 0x18, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0}},
    {OP_VERIFY_16, false, 0, 16, {OP_VERIFY_16, 0x16, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0}},
    {OP_SYNCHRONIZE_CACHE_16, false, 0, 16, {OP_SYNCHRONIZE_CACHE_16, 0x02, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0}},
    {OP_WRITE_SAME_16, false, 0, 16, {OP_WRITE_SAME_16, 0x09, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0}},
    {OP_SERVICE_ACTION_IN_16,
     true,
     SA_READ_CAPACITY_16,
     16,
     {OP_SERVICE_ACTION_IN_16, SA_READ_CAPACITY_16, F, F, F, F, F, F, F, F, F, F, F, F, 0x01, 0}},
    {OP_MAINTENANCE_IN,
     true,
     SA_REPORT_SUPPORTED_OPERATION_CODES,
     12,
     {OP_MAINTENANCE_IN, SA_REPORT_SUPPORTED_OPERATION_CODES, 0x87, F, F, F, F, F, F, F, 0, 0}},
    {OP_READ_12, false, 0, 12, {OP_READ_12, 0x18, F, F, F, F, F, F, F, F, 0, 0}},
    {OP_WRITE_12, false, 0, 12, {OP_WRITE_12, 0x18, F, F, F, F, F, F, F, F, 0, 0}},
    {OP_VERIFY_12, false, 0, 12, {OP_VERIFY_12, 0x16, F, F, F, F, F, F, F, F, 0, 0}},
};
#define COMMAND_COUNT (sizeof COMMANDS / sizeof COMMANDS[0])

/* SUPPORT values of a one-command report. */
enum { NOT_SUPPORTED = 0x1, SUPPORTED_AS_STANDARD = 0x3 };

/* A command timeouts descriptor with no timeouts to report. */
static void timeouts_descriptor(struct reply *r) {
    reply_be16(r, 0x0A); /* DESCRIPTOR LENGTH */
    reply_zeroes(r, 10);
}

static void all_commands(struct reply *r, bool timeouts) {
    reply_be32(r, 0); /* COMMAND DATA LENGTH, below */
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        const struct supported_command *cmd = &COMMANDS[i];
        reply_u8(r, cmd->opcode);
        reply_u8(r, 0);
        reply_be16(r, cmd->service_action);
        reply_u8(r, 0);
        reply_u8(r, (uint8_t)((timeouts ? 0x02 : 0) | (cmd->has_service_action ? 0x01 : 0))); /* CTDP, SERVACTV */
        reply_be16(r, cmd->cdb_len);
        if (timeouts)
            timeouts_descriptor(r);
    }
    uint8_t *len = reply_at(r, 0);
    if (len)
        put_be32(len, (uint32_t)(r->len - 4));
}

static void one_command(struct reply *r, const struct supported_command *cmd, bool timeouts) {
    reply_u8(r, 0);
    if (!cmd) {
        reply_u8(r, NOT_SUPPORTED);
        reply_be16(r, 0);
        return;
    }
    reply_u8(r, (uint8_t)((timeouts ? 0x80 : 0) | SUPPORTED_AS_STANDARD)); /* CTDP, SUPPORT */
    reply_be16(r, cmd->cdb_len);
    reply_bytes(r, cmd->usage, cmd->cdb_len);
    if (timeouts)
        timeouts_descriptor(r);
}

static const struct supported_command *find_command(uint8_t opcode, bool with_service_action, uint16_t service_action) {
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        const struct supported_command *cmd = &COMMANDS[i];
        if (cmd->opcode == opcode && cmd->has_service_action == with_service_action &&
            (!with_service_action || cmd->service_action == service_action))
            return cmd;
    }
    return NULL;
}

/* MAINTENANCE IN: REPORT SUPPORTED OPERATION CODES is its only service
 * action here. */
struct outcome cmd_report_supported_operation_codes(struct disk *d, const struct command *c) {
    (void)d;
    TRY(need_cdb(c, 12));
    const uint8_t *cdb = c->cdb;
    if ((cdb[1] & 0x1F) != SA_REPORT_SUPPORTED_OPERATION_CODES)
        return fail(invalid_cdb_field(1, 4));
    const bool timeouts = cdb[2] & 0x80; /* RCTD */
    const uint8_t opcode = cdb[3];
    const uint16_t service_action = get_be16(cdb + 4);
    const uint32_t allocation_length = get_be32(cdb + 6);

    struct reply r;
    reply_init(&r);
    switch (cdb[2] & 0x07) {
    case 0x0: /* every command */
        all_commands(&r, timeouts);
        break;
    case 0x1: /* one opcode that has no service actions */
        if (has_service_action(opcode))
            return fail(invalid_cdb_field(3, NO_BIT));
        one_command(&r, find_command(opcode, false, 0), timeouts);
        break;
    case 0x2: /* one opcode and service action */
        if (!has_service_action(opcode))
            return fail(invalid_cdb_field(3, NO_BIT));
        one_command(&r, find_command(opcode, true, service_action), timeouts);
        break;
    case 0x3: /* one opcode, with its service action if it has them */
        one_command(&r, find_command(opcode, has_service_action(opcode), service_action), timeouts);
        break;
    default:
        return fail(invalid_cdb_field(2, 2)); /* REPORTING OPTIONS reserved */
    }
    return respond(c, &r, allocation_length);
}
