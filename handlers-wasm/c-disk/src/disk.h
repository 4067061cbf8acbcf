/*
 * The c-disk handler: an SBC-3 direct-access block device of 512-byte
 * blocks over the backing store the host grants.
 *
 * Every command implementation returns a `struct outcome`: GOOD with a
 * data-in length, or the sense to fail with. TRY() propagates a failed
 * outcome from a helper, which keeps the "decode, check, act" shape of
 * each command readable without nested ifs.
 */
#ifndef C_DISK_DISK_H
#define C_DISK_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host.h"
#include "reply.h"
#include "sense.h"
#include "text.h"

/* Logical block length. The host's store is byte-granular; 512 is what
 * every initiator takes without thinking. */
#define BLOCK_SIZE 512u

/* Longest serial number (VPD page 80h) accepted from `serial=`. It also
 * lands in the T10 vendor ID designator, whose length is one byte. */
#define MAX_SERIAL_LEN 128

/* Unit attentions held at once (SAM-5 lets a device drop the oldest). */
#define MAX_UNIT_ATTENTIONS 4

/* Largest WRITE SAME or UNMAP, in blocks: 2^20 blocks (512 MiB) keeps one
 * command's store work bounded; initiators treat larger MAXIMUM UNMAP
 * LBA COUNTs as implausible anyway. */
#define MAX_PROVISIONING_BLOCKS (1u << 20)
#define MAX_UNMAP_DESCRIPTORS 256u
/* COMPARE AND WRITE's NUMBER OF LOGICAL BLOCKS is one byte. */
#define MAX_COMPARE_AND_WRITE_BLOCKS 255u
/* Bytes compared (VERIFY, COMPARE AND WRITE) or written from guest
 * memory (WRITE SAME) per step: bounds the guest memory a command uses.
 * A multiple of BLOCK_SIZE. */
#define CHUNK_BYTES (256u * 1024u)

/* One SCSI command as the host delivered it. */
struct command {
    const uint8_t *cdb;
    size_t cdb_len;
    uint32_t data_out_len;
    uint32_t data_in_len;
};

struct outcome {
    bool good;
    uint32_t data_in_len; /* when good */
    struct sense sense;   /* when not */
};

static inline struct outcome good(void) {
    return (struct outcome){.good = true};
}

static inline struct outcome good_with_data(uint32_t len) {
    return (struct outcome){.good = true, .data_in_len = len};
}

static inline struct outcome fail(struct sense sense) {
    return (struct outcome){.good = false, .sense = sense};
}

static inline struct outcome fail_code(struct sense_code code) {
    return fail(sense_of(code));
}

#define TRY(expr)                                                                                                      \
    do {                                                                                                               \
        const struct outcome try_outcome_ = (expr);                                                                    \
        if (!try_outcome_.good)                                                                                        \
            return try_outcome_;                                                                                       \
    } while (0)

/* The device: one per component instance. */
struct disk {
    bool is_open;
    /* Store size in bytes; a partial last block is not addressable. */
    uint64_t size;
    /* Writes are refused: the `ro` option or a read-only store. */
    bool read_only;
    /* WCE of the caching page: writes may complete before they are
     * durable. When clear, every write is followed by a flush. */
    bool write_cache;
    /* D_SENSE of the control page: fail commands with descriptor sense. */
    bool descriptor_sense;
    char serial[MAX_SERIAL_LEN + 1];
    /* The logical unit name (NAA 5: 8 bytes, NAA 6: 16 bytes). */
    uint8_t naa[16];
    size_t naa_len;
    /* Pending unit attentions, oldest first. */
    struct sense_code unit_attentions[MAX_UNIT_ATTENTIONS];
    size_t unit_attention_count;
};

/* A byte range of the store. */
struct extent {
    uint64_t offset;
    uint64_t len;
};

/* disk.c: lifecycle and the shared checks. */
struct outcome disk_handle(struct disk *d, const struct command *c);
void disk_raise_unit_attention(struct disk *d, struct sense_code code);
bool disk_take_unit_attention(struct disk *d, struct sense_code *out);
uint64_t disk_blocks(const struct disk *d);
/* INVALID FIELD IN CDB unless the CDB holds at least `len` bytes. */
struct outcome need_cdb(const struct command *c, size_t len);
/* The bytes of `blocks` blocks from `lba`, or LBA OUT OF RANGE. */
struct outcome disk_extent(const struct disk *d, uint64_t lba, uint64_t blocks, struct extent *out);
struct outcome disk_check_writable(const struct disk *d);
/* `len` as a transfer length, if the command's buffer of `room` bytes holds it. */
struct outcome fits_buffer(uint64_t len, uint32_t room, uint32_t *out);
/* Flush when FUA asks or the write cache is off. */
struct outcome disk_complete_write(const struct disk *d, bool fua);
/* Send `r` as data-in, cut to the allocation length and the buffer. */
struct outcome respond(const struct command *c, const struct reply *r, uint32_t allocation_length);
/* The sense for a failed store call. */
struct sense read_failure(enum io_result result);
struct sense write_failure(enum io_result result);

/* config.c */
/* Parse the config and settle the identity; on error appends a message
 * to `error` and returns false. */
bool disk_configure(struct disk *d, const char *config, size_t config_len, const char *host_serial,
                    size_t host_serial_len, const char *host_naa, size_t host_naa_len, struct text *error);

/* unit.c */
struct outcome cmd_test_unit_ready(struct disk *d, const struct command *c);
struct outcome cmd_request_sense(struct disk *d, const struct command *c);
struct outcome cmd_start_stop_unit(struct disk *d, const struct command *c);
struct outcome cmd_prevent_allow_medium_removal(struct disk *d, const struct command *c);
struct outcome cmd_read_capacity_10(struct disk *d, const struct command *c);
struct outcome cmd_service_action_in_16(struct disk *d, const struct command *c);

/* inquiry.c */
struct outcome cmd_inquiry(struct disk *d, const struct command *c);

/* mode.c */
struct outcome cmd_mode_sense(struct disk *d, const struct command *c);
struct outcome cmd_mode_select(struct disk *d, const struct command *c);
/* Set WCE as MODE SELECT would (flushing when it goes off). */
struct outcome disk_set_write_cache(struct disk *d, bool enabled);

/* io.c */
struct outcome cmd_read(struct disk *d, const struct command *c);
struct outcome cmd_write(struct disk *d, const struct command *c);
struct outcome cmd_verify(struct disk *d, const struct command *c);
struct outcome cmd_compare_and_write(struct disk *d, const struct command *c);
struct outcome cmd_synchronize_cache(struct disk *d, const struct command *c);

/* provisioning.c */
struct outcome cmd_write_same(struct disk *d, const struct command *c);
struct outcome cmd_unmap(struct disk *d, const struct command *c);

/* opcodes.c */
struct outcome cmd_report_supported_operation_codes(struct disk *d, const struct command *c);

#endif
