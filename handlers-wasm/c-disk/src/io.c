/*
 * READ, WRITE, VERIFY, COMPARE AND WRITE and SYNCHRONIZE CACHE.
 *
 * READ and WRITE never see their data: the store moves it between the
 * medium and the command's buffers (read-to-data-in, write-from-data-out),
 * so the bulk path costs a host call, not a copy through guest memory.
 * Only the compares bring data in, a chunk at a time.
 */
#include "disk.h"
#include "scsi.h"

/* The fields READ, WRITE and VERIFY share. */
struct block_request {
    uint64_t lba;
    uint32_t blocks;
    uint8_t byte1; /* flags: RDPROTECT/WRPROTECT, DPO, FUA, BYTCHK */
};

/* LBA and TRANSFER LENGTH of a READ or WRITE, in any of the four sizes. */
static struct outcome decode_read_write(const struct command *c, struct block_request *out) {
    const uint8_t *cdb = c->cdb;
    switch (cdb[0]) {
    case OP_READ_6:
    case OP_WRITE_6:
        TRY(need_cdb(c, 6));
        out->lba = get_be24(cdb + 1) & 0x1FFFFF;
        out->blocks = cdb[4] == 0 ? 256 : cdb[4]; /* SBC-3: 0 means 256 */
        out->byte1 = 0;                           /* no flags in a 6-byte CDB */
        return good();
    case OP_READ_10:
    case OP_WRITE_10:
        TRY(need_cdb(c, 10));
        out->lba = get_be32(cdb + 2);
        out->blocks = get_be16(cdb + 7);
        break;
    case OP_READ_12:
    case OP_WRITE_12:
        TRY(need_cdb(c, 12));
        out->lba = get_be32(cdb + 2);
        out->blocks = get_be32(cdb + 6);
        break;
    default: /* READ(16), WRITE(16) */
        TRY(need_cdb(c, 16));
        out->lba = get_be64(cdb + 2);
        out->blocks = get_be32(cdb + 10);
        break;
    }
    out->byte1 = cdb[1];
    return good();
}

static bool fua(const struct block_request *request) {
    return request->byte1 & 0x08;
}

/* The device reports no protection information support (PROTECT=0), so
 * a non-zero RDPROTECT, WRPROTECT or VRPROTECT is an invalid field. */
static struct outcome refuse_protection(const struct block_request *request) {
    return (request->byte1 >> 5) == 0 ? good() : fail(invalid_cdb_field(1, 7));
}

/* FUA on a read needs nothing: every read comes from the store. */
struct outcome cmd_read(struct disk *d, const struct command *c) {
    struct block_request request;
    TRY(decode_read_write(c, &request));
    TRY(refuse_protection(&request));
    struct extent extent;
    TRY(disk_extent(d, request.lba, request.blocks, &extent));
    uint32_t len;
    TRY(fits_buffer(extent.len, c->data_in_len, &len));
    if (len > 0) {
        const enum io_result result = store_read_to_data_in(extent.offset, len, 0);
        if (result != IO_OK)
            return fail(read_failure(result));
    }
    return good_with_data(len);
}

struct outcome cmd_write(struct disk *d, const struct command *c) {
    struct block_request request;
    TRY(decode_read_write(c, &request));
    TRY(refuse_protection(&request));
    TRY(disk_check_writable(d));
    struct extent extent;
    TRY(disk_extent(d, request.lba, request.blocks, &extent));
    uint32_t len;
    TRY(fits_buffer(extent.len, c->data_out_len, &len));
    if (len == 0)
        return good();
    const enum io_result result = store_write_from_data_out(extent.offset, len, 0);
    if (result != IO_OK)
        return fail(write_failure(result));
    return disk_complete_write(d, fua(&request));
}

/* What the medium is compared with. */
enum expected_source {
    EXPECT_DATA_OUT,       /* the data-out, byte for byte from offset 0 */
    EXPECT_REPEATED_BLOCK, /* one block, repeated (VERIFY with BYTCHK 11b) */
};

/* Compare `extent` of the medium with what `source` says belongs there.
 * On a difference, `*mismatch` is set to its offset within the extent. */
static struct outcome compare_medium(struct extent extent, enum expected_source source, const uint8_t *block,
                                     bool *found, uint64_t *mismatch) {
    *found = false;
    for (uint64_t done = 0; done < extent.len;) {
        const uint64_t left = extent.len - done;
        const uint32_t len = left < CHUNK_BYTES ? (uint32_t)left : CHUNK_BYTES;
        struct bytes medium;
        enum io_result result = store_read_at(extent.offset + done, len, &medium);
        if (result != IO_OK)
            return fail(read_failure(result));
        struct bytes wanted = {0};
        if (source == EXPECT_DATA_OUT) {
            /* Callers checked the data-out holds the extent, whose length
             * then fits 32 bits. */
            result = transfer_read_data_out((uint32_t)done, len, &wanted);
            if (result != IO_OK) {
                bytes_free(&medium);
                return fail_code(INTERNAL_TARGET_FAILURE);
            }
        }
        const size_t n = medium.len < len ? medium.len : len;
        const bool short_read = n < len || (source == EXPECT_DATA_OUT && wanted.len < n);
        for (size_t i = 0; i < n && !short_read && !*found; i++) {
            /* Chunks start on block boundaries, so the offset within the
             * chunk is also the offset into the repeated block. */
            const uint8_t want = source == EXPECT_DATA_OUT ? wanted.ptr[i] : block[i % BLOCK_SIZE];
            if (medium.ptr[i] != want) {
                *found = true;
                *mismatch = done + i;
            }
        }
        bytes_free(&medium);
        bytes_free(&wanted);
        if (short_read)
            return fail_code(INTERNAL_TARGET_FAILURE); /* the host broke its promise */
        if (*found)
            return good();
        done += len;
    }
    return good();
}

/* MISCOMPARE with INFORMATION set to the offset of the first byte that
 * differed, as SBC-3 asks of VERIFY and COMPARE AND WRITE alike. */
static struct outcome miscompare(uint64_t offset) {
    return fail(sense_with_information(MISCOMPARE_DURING_VERIFY, offset));
}

/* VERIFY(10/12/16). Without BYTCHK only the range is checked: the store
 * reports no latent errors to look for. */
struct outcome cmd_verify(struct disk *d, const struct command *c) {
    const uint8_t *cdb = c->cdb;
    struct block_request request;
    switch (cdb[0]) {
    case OP_VERIFY_10:
        TRY(need_cdb(c, 10));
        request.lba = get_be32(cdb + 2);
        request.blocks = get_be16(cdb + 7);
        break;
    case OP_VERIFY_12:
        TRY(need_cdb(c, 12));
        request.lba = get_be32(cdb + 2);
        request.blocks = get_be32(cdb + 6);
        break;
    default:
        TRY(need_cdb(c, 16));
        request.lba = get_be64(cdb + 2);
        request.blocks = get_be32(cdb + 10);
        break;
    }
    request.byte1 = cdb[1];
    const unsigned byte_check = (request.byte1 >> 1) & 0x03;
    if (byte_check == 0x02)
        return fail(invalid_cdb_field(1, 2)); /* BYTCHK 10b is reserved */
    TRY(refuse_protection(&request));
    struct extent extent;
    TRY(disk_extent(d, request.lba, request.blocks, &extent));
    if (extent.len == 0 || byte_check == 0)
        return good();

    bool found;
    uint64_t mismatch = 0;
    uint32_t len;
    if (byte_check == 0x01) {
        TRY(fits_buffer(extent.len, c->data_out_len, &len));
        TRY(compare_medium(extent, EXPECT_DATA_OUT, NULL, &found, &mismatch));
    } else {
        TRY(fits_buffer(BLOCK_SIZE, c->data_out_len, &len));
        struct bytes block;
        if (transfer_read_data_out(0, BLOCK_SIZE, &block) != IO_OK)
            return fail_code(INTERNAL_TARGET_FAILURE);
        if (block.len != BLOCK_SIZE) {
            bytes_free(&block);
            return fail_code(INTERNAL_TARGET_FAILURE);
        }
        const struct outcome outcome = compare_medium(extent, EXPECT_REPEATED_BLOCK, block.ptr, &found, &mismatch);
        bytes_free(&block);
        TRY(outcome);
    }
    return found ? miscompare(mismatch) : good();
}

/* COMPARE AND WRITE: the data-out holds the blocks to compare, then the
 * blocks to write. Commands run one at a time per device, so the compare
 * and the write are atomic to every initiator. On a miscompare nothing
 * is written. */
struct outcome cmd_compare_and_write(struct disk *d, const struct command *c) {
    TRY(need_cdb(c, 16));
    const struct block_request request = {.lba = get_be64(c->cdb + 2), .blocks = c->cdb[13], .byte1 = c->cdb[1]};
    TRY(refuse_protection(&request));
    TRY(disk_check_writable(d));
    struct extent extent;
    TRY(disk_extent(d, request.lba, request.blocks, &extent));
    if (extent.len == 0) {
        /* Zero blocks is no error, but data-out with it means the
         * initiator meant more than the one-byte field can say. */
        return c->data_out_len == 0 ? good() : fail(invalid_cdb_field(13, NO_BIT));
    }
    uint32_t both;
    TRY(fits_buffer(2 * extent.len, c->data_out_len, &both));
    bool found;
    uint64_t mismatch = 0;
    TRY(compare_medium(extent, EXPECT_DATA_OUT, NULL, &found, &mismatch));
    if (found)
        return miscompare(mismatch);
    const uint32_t len = both / 2;
    const enum io_result result = store_write_from_data_out(extent.offset, len, len);
    if (result != IO_OK)
        return fail(write_failure(result));
    return disk_complete_write(d, fua(&request));
}

/* SYNCHRONIZE CACHE(10/16). The store flushes as a whole, so the range is
 * only checked (0 blocks: to the end of the medium). IMMED changes
 * nothing: the flush is quick to start and the status follows it. */
struct outcome cmd_synchronize_cache(struct disk *d, const struct command *c) {
    uint64_t lba;
    uint32_t blocks;
    if (c->cdb[0] == OP_SYNCHRONIZE_CACHE_10) {
        TRY(need_cdb(c, 10));
        lba = get_be32(c->cdb + 2);
        blocks = get_be16(c->cdb + 7);
    } else {
        TRY(need_cdb(c, 16));
        lba = get_be64(c->cdb + 2);
        blocks = get_be32(c->cdb + 10);
    }
    struct extent extent;
    TRY(disk_extent(d, lba, blocks, &extent));
    const enum io_result result = store_flush();
    return result == IO_OK ? good() : fail(write_failure(result));
}
