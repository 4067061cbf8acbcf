/*
 * The component boundary: the `tcmu:handler/device` exports wit-bindgen
 * declares in device_handler.h, and host.h over its imports.
 *
 * Ownership, as wit-bindgen's C bindings express the canonical ABI:
 * - Exports own their arguments. Strings and lists the host passed in
 *   (config, identity, the CDB) were allocated with cabi_realloc and must
 *   be freed by the callee with the generated *_free helpers.
 * - Exports' results are freed by the generated post-return functions
 *   with free(), so every string or list returned (handler-info, the
 *   error of open, the sense of a completion) must come from malloc.
 * - Imports borrow their arguments (the caller keeps them, so stack
 *   buffers do) and hand over their results: a list or an io(string)
 *   error returned by the host is the guest's to free.
 * - The store arrives as an owned handle; calls take a borrow of it, and
 *   close drops it.
 */
#include <stdlib.h>
#include <string.h>

#include "device_handler.h"
#include "disk.h"
#include "scsi.h"

static struct disk device;
static tcmu_handler_backing_own_store_t store;
static bool have_store;

static tcmu_handler_backing_borrow_store_t borrowed_store(void) {
    return tcmu_handler_backing_borrow_store(store);
}

/* ---- host.h ---------------------------------------------------------- */

void bytes_free(struct bytes *bytes) {
    /* A zero-length list may point at nothing (cabi_realloc returns the
     * alignment for size 0), so only a non-empty one is freed. */
    device_handler_list_u8_t list = {bytes->ptr, bytes->len};
    device_handler_list_u8_free(&list);
    bytes->ptr = NULL;
    bytes->len = 0;
}

void host_log(enum log_level level, const char *message) {
    static const tcmu_handler_log_log_level_t LEVELS[] = {
        [LOG_ERROR] = TCMU_HANDLER_TYPES_LOG_LEVEL_ERROR,
        [LOG_WARN] = TCMU_HANDLER_TYPES_LOG_LEVEL_WARN,
        [LOG_INFO] = TCMU_HANDLER_TYPES_LOG_LEVEL_INFO,
        [LOG_DEBUG] = TCMU_HANDLER_TYPES_LOG_LEVEL_DEBUG,
    };
    device_handler_string_t text;
    device_handler_string_set(&text, message); /* borrowed: no copy */
    tcmu_handler_log_log(LEVELS[level], &text);
}

/* Log why `what` failed, release the error and flatten it. */
static enum io_result io_failed(const char *what, tcmu_handler_types_io_error_t *err) {
    char buf[256];
    struct text message = text_init(buf, sizeof buf);
    text_str(&message, what);
    text_str(&message, " failed: ");
    enum io_result result;
    switch (err->tag) {
    case TCMU_HANDLER_TYPES_IO_ERROR_OUT_OF_RANGE:
        text_str(&message, "out of range");
        result = IO_OUT_OF_RANGE;
        break;
    case TCMU_HANDLER_TYPES_IO_ERROR_READ_ONLY:
        text_str(&message, "read-only");
        result = IO_READ_ONLY;
        break;
    case TCMU_HANDLER_TYPES_IO_ERROR_TOO_LARGE:
        text_str(&message, "too large");
        result = IO_TOO_LARGE;
        break;
    default:
        text_mem(&message, (const char *)err->val.io.ptr, err->val.io.len);
        result = IO_FAILED;
        break;
    }
    tcmu_handler_types_io_error_free(err);
    host_log(LOG_ERROR, buf);
    return result;
}

uint64_t store_size(void) {
    return tcmu_handler_backing_method_store_size(borrowed_store());
}

bool store_read_only(void) {
    return tcmu_handler_backing_method_store_read_only(borrowed_store());
}

enum io_result store_read_at(uint64_t offset, uint32_t len, struct bytes *out) {
    device_handler_list_u8_t data;
    tcmu_handler_types_io_error_t err;
    *out = (struct bytes){0};
    if (!tcmu_handler_backing_method_store_read_at(borrowed_store(), offset, len, &data, &err))
        return io_failed("store.read-at", &err);
    *out = (struct bytes){data.ptr, data.len};
    return IO_OK;
}

enum io_result store_write_at(uint64_t offset, const uint8_t *data, size_t len) {
    /* The bindings take a non-const list, but an import only reads it. */
    device_handler_list_u8_t list = {(uint8_t *)data, len};
    tcmu_handler_types_io_error_t err;
    if (!tcmu_handler_backing_method_store_write_at(borrowed_store(), offset, &list, &err))
        return io_failed("store.write-at", &err);
    return IO_OK;
}

enum io_result store_flush(void) {
    tcmu_handler_types_io_error_t err;
    if (!tcmu_handler_backing_method_store_flush(borrowed_store(), &err))
        return io_failed("store.flush", &err);
    return IO_OK;
}

enum io_result store_discard(uint64_t offset, uint64_t len) {
    tcmu_handler_types_io_error_t err;
    if (!tcmu_handler_backing_method_store_discard(borrowed_store(), offset, len, &err))
        return io_failed("store.discard", &err);
    return IO_OK;
}

enum io_result store_write_zeroes(uint64_t offset, uint64_t len) {
    tcmu_handler_types_io_error_t err;
    if (!tcmu_handler_backing_method_store_write_zeroes(borrowed_store(), offset, len, &err))
        return io_failed("store.write-zeroes", &err);
    return IO_OK;
}

enum io_result store_read_to_data_in(uint64_t offset, uint32_t len, uint32_t data_in_offset) {
    tcmu_handler_types_io_error_t err;
    if (!tcmu_handler_backing_method_store_read_to_data_in(borrowed_store(), offset, len, data_in_offset, &err))
        return io_failed("store.read-to-data-in", &err);
    return IO_OK;
}

enum io_result store_write_from_data_out(uint64_t offset, uint32_t len, uint32_t data_out_offset) {
    tcmu_handler_types_io_error_t err;
    if (!tcmu_handler_backing_method_store_write_from_data_out(borrowed_store(), offset, len, data_out_offset, &err))
        return io_failed("store.write-from-data-out", &err);
    return IO_OK;
}

enum io_result transfer_read_data_out(uint32_t offset, uint32_t len, struct bytes *out) {
    device_handler_list_u8_t data;
    tcmu_handler_types_io_error_t err;
    *out = (struct bytes){0};
    if (!tcmu_handler_transfer_read_data_out(offset, len, &data, &err))
        return io_failed("transfer.read-data-out", &err);
    *out = (struct bytes){data.ptr, data.len};
    return IO_OK;
}

enum io_result transfer_write_data_in(uint32_t offset, const uint8_t *data, size_t len) {
    device_handler_list_u8_t list = {(uint8_t *)data, len};
    tcmu_handler_types_io_error_t err;
    if (!tcmu_handler_transfer_write_data_in(offset, &list, &err))
        return io_failed("transfer.write-data-in", &err);
    return IO_OK;
}

/* ---- exports of tcmu:handler/device ----------------------------------- */

void exports_tcmu_handler_device_describe(exports_tcmu_handler_device_handler_info_t *ret) {
    device_handler_string_dup(&ret->name, "c-disk");
    ret->device_type = TCMU_HANDLER_TYPES_DEVICE_TYPE_DISK;
    device_handler_string_dup(&ret->description, "SBC-3 disk on the granted backing store, written in C");
}

static void release_store(void) {
    if (have_store)
        tcmu_handler_backing_store_drop_own(store);
    have_store = false;
}

/* A WIT string as C characters. An empty one may point at no object at
 * all (cabi_realloc hands out the alignment for size 0), so it becomes "". */
static const char *chars(const device_handler_string_t *s) {
    return s->len > 0 ? (const char *)s->ptr : "";
}

/* Set up `device` for an open; returns false with a message. */
static bool open_device(const device_handler_string_t *config, const exports_tcmu_handler_device_device_identity_t *id,
                        struct text *error) {
    if (!have_store) {
        text_str(error, "c-disk needs a backing store; configure one for this device");
        return false;
    }
    device = (struct disk){.write_cache = true};
    if (!disk_configure(&device, chars(config), config->len, chars(&id->serial), id->serial.len, chars(&id->naa),
                        id->naa.len, error))
        return false;
    device.size = store_size();
    if (device.size < BLOCK_SIZE) {
        text_str(error, "the backing store (");
        text_u64(error, device.size);
        text_str(error, " bytes) is smaller than one block");
        return false;
    }
    device.read_only = device.read_only || store_read_only();
    device.is_open = true;

    char buf[256];
    struct text line = text_init(buf, sizeof buf);
    text_str(&line, "c-disk: ");
    text_u64(&line, disk_blocks(&device));
    text_str(&line, " blocks of ");
    text_u64(&line, BLOCK_SIZE);
    text_str(&line, " bytes, ");
    text_str(&line, device.read_only ? "read-only" : "writable");
    text_str(&line, ", serial ");
    text_str(&line, device.serial);
    host_log(LOG_INFO, buf);
    return true;
}

bool exports_tcmu_handler_device_open(device_handler_string_t *config,
                                      exports_tcmu_handler_device_device_identity_t *identity,
                                      exports_tcmu_handler_device_own_store_t *maybe_store,
                                      device_handler_string_t *err) {
    /* A second open on the same instance replaces the first device. */
    release_store();
    device.is_open = false;
    if (maybe_store) {
        store = *maybe_store;
        have_store = true;
    }
    char buf[256];
    struct text error = text_init(buf, sizeof buf);
    const bool opened = open_device(config, identity, &error);
    device_handler_string_free(config);
    exports_tcmu_handler_device_device_identity_free(identity);
    if (!opened) {
        release_store();
        device.is_open = false;
        device_handler_string_dup(err, buf); /* malloc'd: the post-return frees it */
    }
    return opened;
}

void exports_tcmu_handler_device_handle(exports_tcmu_handler_device_command_t *command,
                                        exports_tcmu_handler_device_completion_t *ret) {
    const struct command cmd = {
        .cdb = command->cdb.ptr,
        .cdb_len = command->cdb.len,
        .data_out_len = command->data_out_len,
        .data_in_len = command->data_in_len,
    };
    /* The host only sends commands after a successful open; should one
     * come earlier, the logical unit is not ready. */
    const struct outcome outcome = device.is_open ? disk_handle(&device, &cmd) : fail_code(LUN_NOT_READY);
    exports_tcmu_handler_device_command_free(command);

    *ret = (exports_tcmu_handler_device_completion_t){.state_changed = false};
    if (outcome.good) {
        ret->status = STATUS_GOOD;
        ret->data_in_len = outcome.data_in_len;
        return;
    }
    uint8_t sense[SENSE_MAX_LEN];
    const size_t len = sense_encode(&outcome.sense, device.descriptor_sense, sense);
    uint8_t *copy = malloc(len); /* freed by the post-return function */
    if (!copy)
        abort(); /* as the bindings' own cabi_realloc does: the host rebuilds the instance */
    memcpy(copy, sense, len);
    ret->status = STATUS_CHECK_CONDITION;
    ret->sense = (device_handler_list_u8_t){copy, len};
}

/* Commands run one at a time, so by the time a task management function
 * arrives there is nothing in the handler to abort. Unit attentions after
 * resets are the kernel's to report. */
void exports_tcmu_handler_device_task_management(exports_tcmu_handler_device_task_management_function_t tmf) {
    (void)tmf;
}

/* The store already reports the new size; the next command reports
 * CAPACITY DATA HAS CHANGED. */
void exports_tcmu_handler_device_resized(uint64_t new_size) {
    if (!device.is_open)
        return;
    device.size = new_size;
    char buf[128];
    struct text line = text_init(buf, sizeof buf);
    text_str(&line, "c-disk: resized to ");
    text_u64(&line, new_size);
    text_str(&line, " bytes (");
    text_u64(&line, disk_blocks(&device));
    text_str(&line, " blocks)");
    host_log(LOG_INFO, buf);
    disk_raise_unit_attention(&device, CAPACITY_DATA_HAS_CHANGED);
}

void exports_tcmu_handler_device_write_cache_changed(bool enabled) {
    if (device.is_open)
        disk_set_write_cache(&device, enabled); /* a failed flush is logged */
}

void exports_tcmu_handler_device_close(void) {
    if (device.is_open)
        store_flush(); /* a failure is logged; nothing else to do at close */
    release_store();
    device.is_open = false;
}
