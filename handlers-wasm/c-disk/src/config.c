/*
 * The operator's config string and the device's identity.
 *
 * Items are separated by ',' or ';', each a bare flag or key=value,
 * whitespace around them ignored, as every handler in this repository
 * reads its config:
 *
 *   ro          refuse writes (DATA PROTECT, WRITE PROTECTED)
 *   serial=S    unit serial number, 1 to 128 printable ASCII characters;
 *               the NAA name is then derived from it
 *
 * Without serial= the disk reports the serial and NAA name the host
 * assigned, which are unique per device and stable across restarts.
 */
#include <string.h>

#include "disk.h"
#include "scsi.h"

#define KNOWN_KEYS "ro, serial"

/* A piece of the (not NUL-terminated) config string. */
struct span {
    const char *ptr;
    size_t len;
};

static bool is_space(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

static struct span trim(struct span s) {
    while (s.len > 0 && is_space(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && is_space(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

static bool span_is(struct span s, const char *word) {
    return s.len == strlen(word) && memcmp(s.ptr, word, s.len) == 0;
}

/* Printable ASCII, as SPC-4 requires of identification fields. */
static bool printable(char ch) {
    return ch >= 0x20 && ch <= 0x7E;
}

/* Error messages quote what the operator wrote, at most this much of it. */
#define QUOTE_MAX 64

/* Quoted, with anything unprintable shown as '?'. */
static void quote(struct text *t, struct span s) {
    text_str(t, "\"");
    for (size_t i = 0; i < s.len && i < QUOTE_MAX; i++)
        text_mem(t, printable(s.ptr[i]) ? &s.ptr[i] : "?", 1);
    text_str(t, "\"");
}

/* FNV-1a, 64 bits: a stable hash, so a configured serial always gives the
 * same NAA name (the SDK derives names the same way, so a disk keeps its
 * name when it moves between the Rust and C handlers). */
static uint64_t fnv1a64(uint64_t state, const char *bytes, size_t len) {
    for (size_t i = 0; i < len; i++) {
        state ^= (uint8_t)bytes[i];
        state *= UINT64_C(0x100000001b3);
    }
    return state;
}

/* An NAA 6 (IEEE registered extended) name under the Linux target OUI
 * 00-14-05: 36 vendor-specific bits and a 64-bit extension, all hashed
 * from the serial. */
static void naa_from_serial(struct disk *d) {
    const size_t len = strlen(d->serial);
    const uint64_t first = fnv1a64(UINT64_C(0xcbf29ce484222325), d->serial, len);
    const uint64_t second = fnv1a64(first, d->serial, len);
    const uint64_t high = UINT64_C(6) << 60 | UINT64_C(0x001405) << 36 | first >> 28;
    put_be64(d->naa, high);
    put_be64(d->naa + 8, second);
    d->naa_len = 16;
}

static int hex_value(char ch) {
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* "naa.5" and 15 hex digits, or "naa.6" and 31: what the host sends. */
static bool parse_naa(struct disk *d, struct span text) {
    if (text.len >= 4 && (memcmp(text.ptr, "naa.", 4) == 0 || memcmp(text.ptr, "NAA.", 4) == 0)) {
        text.ptr += 4;
        text.len -= 4;
    }
    const bool valid_len = (text.len == 16 && text.ptr[0] == '5') || (text.len == 32 && text.ptr[0] == '6');
    if (!valid_len)
        return false;
    uint8_t bytes[16];
    for (size_t i = 0; i < text.len; i += 2) {
        const int hi = hex_value(text.ptr[i]);
        const int lo = hex_value(text.ptr[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        bytes[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(d->naa, bytes, text.len / 2);
    d->naa_len = text.len / 2;
    return true;
}

/* The host promises printable ASCII of at most 64 characters; hold it to
 * that rather than let a stray byte reach an initiator. */
static void set_host_serial(struct disk *d, struct span serial) {
    size_t n = serial.len < MAX_SERIAL_LEN ? serial.len : MAX_SERIAL_LEN;
    for (size_t i = 0; i < n; i++)
        d->serial[i] = printable(serial.ptr[i]) ? serial.ptr[i] : '_';
    d->serial[n] = '\0';
    if (n == 0)
        strcpy(d->serial, "c-disk");
}

static bool option_error(struct text *error, const char *key, const char *problem) {
    text_str(error, "option \"");
    text_str(error, key);
    text_str(error, "\" ");
    text_str(error, problem);
    return false;
}

static bool set_serial(struct disk *d, struct span value, struct text *error) {
    if (value.len == 0 || value.len > MAX_SERIAL_LEN) {
        text_str(error, "serial must be 1 to ");
        text_u64(error, MAX_SERIAL_LEN);
        text_str(error, " characters, got ");
        text_u64(error, value.len);
        return false;
    }
    for (size_t i = 0; i < value.len; i++) {
        if (!printable(value.ptr[i])) {
            text_str(error, "serial must be printable ASCII, got ");
            quote(error, value);
            return false;
        }
    }
    memcpy(d->serial, value.ptr, value.len);
    d->serial[value.len] = '\0';
    return true;
}

/* Which options were given, to refuse one given twice. */
struct seen {
    bool ro;
    bool serial;
};

/* One item (`value` is NULL for a bare flag); returns false with a message. */
static bool apply_item(struct disk *d, struct span key, const struct span *value, struct seen *seen,
                       struct text *error) {
    if (span_is(key, "ro")) {
        if (seen->ro)
            return option_error(error, "ro", "is given twice");
        if (value)
            return option_error(error, "ro", "takes no value");
        seen->ro = true;
        d->read_only = true;
        return true;
    }
    if (span_is(key, "serial")) {
        if (seen->serial)
            return option_error(error, "serial", "is given twice");
        if (!value)
            return option_error(error, "serial", "needs a value (serial=...)");
        seen->serial = true;
        return set_serial(d, *value, error);
    }
    text_str(error, "unknown option ");
    quote(error, key);
    text_str(error, " (known: " KNOWN_KEYS ")");
    return false;
}

bool disk_configure(struct disk *d, const char *config, size_t config_len, const char *host_serial,
                    size_t host_serial_len, const char *host_naa, size_t host_naa_len, struct text *error) {
    struct seen seen = {0};
    size_t at = 0;
    while (at <= config_len) {
        size_t end = at;
        while (end < config_len && config[end] != ',' && config[end] != ';')
            end++;
        const struct span item = trim((struct span){config + at, end - at});
        at = end + 1;
        if (item.len == 0)
            continue;
        const char *eq = memchr(item.ptr, '=', item.len);
        struct span key = item;
        struct span value = {0};
        if (eq) {
            key = trim((struct span){item.ptr, (size_t)(eq - item.ptr)});
            value = trim((struct span){eq + 1, item.len - (size_t)(eq - item.ptr) - 1});
        }
        if (!apply_item(d, key, eq ? &value : NULL, &seen, error))
            return false;
    }

    if (seen.serial) {
        naa_from_serial(d);
    } else {
        set_host_serial(d, (struct span){host_serial, host_serial_len});
        if (!parse_naa(d, (struct span){host_naa, host_naa_len}))
            naa_from_serial(d); /* a malformed name from the host: derive one */
    }
    return true;
}
