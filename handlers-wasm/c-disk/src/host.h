/*
 * What the handler reaches of the host: the granted backing store, the
 * current command's data buffers and the log. glue.c implements these
 * over the wit-bindgen bindings, so the SCSI code never touches generated
 * types and the ownership rules of the canonical ABI live in one file.
 *
 * One component instance serves one device, so "the store" needs no
 * handle here.
 */
#ifndef C_DISK_HOST_H
#define C_DISK_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How a store or transfer call ended (the WIT io-error, flattened). */
enum io_result {
    IO_OK,
    IO_OUT_OF_RANGE, /* the range leaves the store or the command's buffer */
    IO_READ_ONLY,    /* the store was granted read-only */
    IO_TOO_LARGE,    /* more than the handler's memory cap */
    IO_FAILED,       /* the host's I/O failed (logged with its errno text) */
};

/* Bytes the host handed to the guest; release with bytes_free. */
struct bytes {
    uint8_t *ptr;
    size_t len;
};

void bytes_free(struct bytes *bytes);

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void host_log(enum log_level level, const char *message);

/* The backing store. Failures other than IO_OK are logged here. */
uint64_t store_size(void);
bool store_read_only(void);
enum io_result store_read_at(uint64_t offset, uint32_t len, struct bytes *out);
enum io_result store_write_at(uint64_t offset, const uint8_t *data, size_t len);
enum io_result store_flush(void);
enum io_result store_discard(uint64_t offset, uint64_t len);
enum io_result store_write_zeroes(uint64_t offset, uint64_t len);
/* Move bytes between the store and the command's buffers without passing
 * them through guest memory. */
enum io_result store_read_to_data_in(uint64_t offset, uint32_t len, uint32_t data_in_offset);
enum io_result store_write_from_data_out(uint64_t offset, uint32_t len, uint32_t data_out_offset);

/* The current command's buffers. */
enum io_result transfer_read_data_out(uint32_t offset, uint32_t len, struct bytes *out);
enum io_result transfer_write_data_in(uint32_t offset, const uint8_t *data, size_t len);

#endif
