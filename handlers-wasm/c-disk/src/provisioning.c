/*
 * WRITE SAME and UNMAP: writing or deallocating many blocks at once.
 * Deallocated blocks read back as zeroes (the store's discard promises
 * it), so the disk reports LBPRZ and may unmap instead of writing zeroes.
 */
#include <stdlib.h>
#include <string.h>

#include "disk.h"
#include "scsi.h"

enum {
    UNMAP_HEADER_LEN = 8,
    UNMAP_DESCRIPTOR_LEN = 16,
};

static bool all_zero(const uint8_t *bytes, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (bytes[i])
            return false;
    }
    return true;
}

/* Write `block` over `extent` from a chunk of it repeated, CHUNK_BYTES
 * (whole blocks) per store call. */
static struct outcome write_pattern(struct extent extent, const uint8_t *block) {
    const size_t chunk_len = extent.len < CHUNK_BYTES ? (size_t)extent.len : CHUNK_BYTES;
    uint8_t *chunk = malloc(chunk_len);
    if (!chunk)
        return fail_code(INTERNAL_TARGET_FAILURE);
    for (size_t at = 0; at < chunk_len; at += BLOCK_SIZE)
        memcpy(chunk + at, block, BLOCK_SIZE);
    enum io_result result = IO_OK;
    for (uint64_t done = 0; done < extent.len && result == IO_OK;) {
        const uint64_t left = extent.len - done;
        const size_t len = left < chunk_len ? (size_t)left : chunk_len;
        result = store_write_at(extent.offset + done, chunk, len);
        done += len;
    }
    free(chunk);
    return result == IO_OK ? good() : fail(write_failure(result));
}

/* WRITE SAME(10/16). A zero block (or NDOB) becomes write-zeroes, or a
 * discard when the UNMAP bit allows it; other data is written out in
 * chunks of the repeated block. */
struct outcome cmd_write_same(struct disk *d, const struct command *c) {
    const bool ten = c->cdb[0] == OP_WRITE_SAME_10;
    TRY(need_cdb(c, ten ? 10 : 16));
    const uint8_t byte1 = c->cdb[1];
    uint64_t lba;
    uint32_t blocks;
    bool ndob = false;
    if (ten) {
        /* PBDATA and LBDATA: this disk reports no such data to fill in. */
        if (byte1 & 0x06)
            return fail(invalid_cdb_field(1, (byte1 & 0x04) ? 2 : 1));
        lba = get_be32(c->cdb + 2);
        blocks = get_be16(c->cdb + 7);
    } else {
        lba = get_be64(c->cdb + 2);
        blocks = get_be32(c->cdb + 10);
        ndob = byte1 & 0x01;
    }
    if (byte1 >> 5)
        return fail(invalid_cdb_field(1, 7)); /* WRPROTECT: no protection information */
    if (byte1 & 0x10)
        return fail(invalid_cdb_field(1, 4)); /* ANCHOR: ANC_SUP is 0 */
    /* WSNZ is set, so 0 ("to the end of the medium") is refused, as is
     * more than MAXIMUM WRITE SAME LENGTH. */
    if (blocks == 0 || blocks > MAX_PROVISIONING_BLOCKS)
        return fail(invalid_cdb_field(ten ? 7 : 10, NO_BIT));
    TRY(disk_check_writable(d));
    struct extent extent;
    TRY(disk_extent(d, lba, blocks, &extent));
    const bool unmap = byte1 & 0x08;

    struct bytes block = {0};
    if (!ndob) {
        uint32_t len;
        TRY(fits_buffer(BLOCK_SIZE, c->data_out_len, &len));
        if (transfer_read_data_out(0, BLOCK_SIZE, &block) != IO_OK)
            return fail_code(INTERNAL_TARGET_FAILURE);
        if (block.len != BLOCK_SIZE) {
            bytes_free(&block);
            return fail_code(INTERNAL_TARGET_FAILURE);
        }
    }
    struct outcome outcome;
    if (ndob || all_zero(block.ptr, block.len)) {
        const enum io_result result =
            unmap ? store_discard(extent.offset, extent.len) : store_write_zeroes(extent.offset, extent.len);
        outcome = result == IO_OK ? good() : fail(write_failure(result));
    } else {
        outcome = write_pattern(extent, block.ptr);
    }
    bytes_free(&block);
    TRY(outcome);
    return disk_complete_write(d, false);
}

/* The block descriptors of an UNMAP parameter list. */
struct unmap_list {
    const uint8_t *descriptors;
    size_t count;
};

static struct outcome parse_unmap_list(const uint8_t *list, size_t len, struct unmap_list *out) {
    out->descriptors = NULL;
    out->count = 0;
    if (len == 0)
        return good();
    if (len < UNMAP_HEADER_LEN)
        return fail_code(PARAMETER_LIST_LENGTH_ERROR);
    /* UNMAP BLOCK DESCRIPTOR DATA LENGTH, trusted only as far as the list
     * goes; a partial descriptor at the end is ignored. */
    size_t declared = get_be16(list + 2);
    if (declared > len - UNMAP_HEADER_LEN)
        declared = len - UNMAP_HEADER_LEN;
    out->descriptors = list + UNMAP_HEADER_LEN;
    out->count = declared / UNMAP_DESCRIPTOR_LEN;
    if (out->count > MAX_UNMAP_DESCRIPTORS)
        return fail(invalid_parameter_field(2, NO_BIT));
    return good();
}

/* Check every descriptor before deallocating anything, so a bad one
 * leaves the medium untouched; then discard. */
static struct outcome unmap_descriptors(const struct disk *d, const struct unmap_list *list) {
    uint64_t total = 0;
    for (size_t i = 0; i < list->count; i++) {
        const uint8_t *descriptor = list->descriptors + i * UNMAP_DESCRIPTOR_LEN;
        const uint32_t blocks = get_be32(descriptor + 8);
        total += blocks;
        if (total > MAX_PROVISIONING_BLOCKS) /* this descriptor's NUMBER OF LOGICAL BLOCKS */
            return fail(invalid_parameter_field((uint16_t)(UNMAP_HEADER_LEN + i * UNMAP_DESCRIPTOR_LEN + 8), NO_BIT));
        struct extent extent;
        TRY(disk_extent(d, get_be64(descriptor), blocks, &extent));
    }
    for (size_t i = 0; i < list->count; i++) {
        const uint8_t *descriptor = list->descriptors + i * UNMAP_DESCRIPTOR_LEN;
        struct extent extent;
        TRY(disk_extent(d, get_be64(descriptor), get_be32(descriptor + 8), &extent));
        if (extent.len == 0)
            continue;
        const enum io_result result = store_discard(extent.offset, extent.len);
        if (result != IO_OK)
            return fail(write_failure(result));
    }
    return good();
}

struct outcome cmd_unmap(struct disk *d, const struct command *c) {
    TRY(need_cdb(c, 10));
    if (c->cdb[1] & 0x01)
        return fail(invalid_cdb_field(1, 0)); /* ANCHOR: ANC_SUP is 0 */
    TRY(disk_check_writable(d));
    uint32_t len = get_be16(c->cdb + 7);
    if (len > c->data_out_len)
        len = c->data_out_len;
    if (len == 0)
        return good();
    struct bytes list;
    if (transfer_read_data_out(0, len, &list) != IO_OK)
        return fail_code(INTERNAL_TARGET_FAILURE);
    struct unmap_list descriptors;
    struct outcome outcome = parse_unmap_list(list.ptr, list.len, &descriptors);
    if (outcome.good)
        outcome = unmap_descriptors(d, &descriptors);
    bytes_free(&list);
    return outcome;
}
