//! Byte offsets and constants of the shared region, exactly as
//! `<linux/target_core_user.h>` lays it out. The kernel structs are
//! `packed`, so every offset here is a plain byte offset; the one
//! alignment attribute (`cmd_tail` on its own 64-byte line) is spelled out.

/// `TCMU_MAILBOX_VERSION`: the only layout this crate speaks.
pub const MAILBOX_VERSION: u16 = 2;

/// Mailbox field offsets (`struct tcmu_mailbox`).
pub mod mailbox {
    /// `__u16 version`.
    pub const VERSION: usize = 0;
    /// `__u16 flags` (capability bits, `FLAG_CAP_*`).
    pub const FLAGS: usize = 2;
    /// `__u32 cmdr_off`: ring offset from the start of the region.
    pub const CMDR_OFF: usize = 4;
    /// `__u32 cmdr_size`: ring size in bytes.
    pub const CMDR_SIZE: usize = 8;
    /// `__u32 cmd_head`: written by the kernel.
    pub const CMD_HEAD: usize = 12;
    /// `__u32 cmd_tail`, `__aligned__(64)`: written by user space, on its
    /// own cache line. A translation that drops the alignment puts it at 16
    /// and corrupts the kernel's view of the ring.
    pub const CMD_TAIL: usize = 64;
    /// `sizeof(struct tcmu_mailbox)`; the kernel's ring starts here.
    pub const SIZE: usize = 128;
}

/// Out-of-order completions are allowed.
pub const FLAG_CAP_OOOC: u16 = 1 << 0;
/// The kernel honours `rsp.read_len` with `UFLAG_READ_LEN`.
pub const FLAG_CAP_READ_LEN: u16 = 1 << 1;
/// The kernel sends TMR entries.
pub const FLAG_CAP_TMR: u16 = 1 << 2;
/// The kernel can keep data buffers after completion.
pub const FLAG_CAP_KEEP_BUF: u16 = 1 << 3;

/// Entry opcodes (low 3 bits of `len_op`).
pub mod op {
    /// Padding up to the end of the ring.
    pub const PAD: u32 = 0;
    /// A SCSI command.
    pub const CMD: u32 = 1;
    /// A task management notification.
    pub const TMR: u32 = 2;
    /// `TCMU_OP_MASK`.
    pub const MASK: u32 = 0x7;
}

/// Entries start and end on this alignment (`TCMU_OP_ALIGN_SIZE`).
pub const ENTRY_ALIGN: u32 = 8;

/// `struct tcmu_cmd_entry_hdr` offsets, relative to the entry.
pub mod hdr {
    /// `__u32 len_op`.
    pub const LEN_OP: usize = 0;
    /// `__u16 cmd_id`.
    pub const CMD_ID: usize = 4;
    /// `__u8 kflags`.
    pub const KFLAGS: usize = 6;
    /// `__u8 uflags`.
    pub const UFLAGS: usize = 7;
    /// Header size.
    pub const SIZE: usize = 8;
}

/// `uflags`: user space did not understand the entry's opcode.
pub const UFLAG_UNKNOWN_OP: u8 = 0x1;
/// `uflags`: `rsp.read_len` is valid.
pub const UFLAG_READ_LEN: u8 = 0x2;
/// `uflags`: keep the data buffer (not used by this daemon).
pub const UFLAG_KEEP_BUF: u8 = 0x4;

/// `tcmu_cmd_entry.req` offsets, relative to the entry.
///
/// `struct tcmu_cmd_entry` is packed, but the `req` struct inside its
/// union is not: `cdb_off` keeps its natural 8-byte alignment, so four
/// bytes of padding follow `iov_dif_cnt`. Offsets that assume packing all
/// the way down read the CDB offset from the wrong bytes.
pub mod req {
    /// `__u32 iov_cnt`.
    pub const IOV_CNT: usize = 8;
    /// `__u32 iov_bidi_cnt`.
    pub const IOV_BIDI_CNT: usize = 12;
    /// `__u32 iov_dif_cnt`.
    pub const IOV_DIF_CNT: usize = 16;
    /// `__u64 cdb_off`: CDB offset from the start of the region.
    pub const CDB_OFF: usize = 24;
    /// `struct iovec iov[]` (base u64, len u64; base is a region offset).
    pub const IOV: usize = 48;
    /// `sizeof(struct iovec)` on 64-bit.
    pub const IOV_SIZE: usize = 16;
}

/// `tcmu_cmd_entry.rsp` offsets, relative to the entry.
pub mod rsp {
    /// `__u8 scsi_status`.
    pub const SCSI_STATUS: usize = 8;
    /// `__u32 read_len`.
    pub const READ_LEN: usize = 12;
    /// `char sense_buffer[96]`.
    pub const SENSE: usize = 16;
    /// End of the response; every CMD entry is at least this long.
    pub const END: usize = SENSE + super::SENSE_BUFFER_SIZE;
}

/// `TCMU_SENSE_BUFFERSIZE`.
pub const SENSE_BUFFER_SIZE: usize = 96;

/// `struct tcmu_tmr_entry` offsets, relative to the entry.
pub mod tmr {
    /// `__u8 tmr_type` (`TYPE_*`).
    pub const TYPE: usize = 8;
    /// `__u32 cmd_cnt`.
    pub const CMD_CNT: usize = 12;
    /// `__u16 cmd_ids[]`.
    pub const CMD_IDS: usize = 32;

    /// `TCMU_TMR_ABORT_TASK`.
    pub const TYPE_ABORT_TASK: u8 = 1;
    /// `TCMU_TMR_ABORT_TASK_SET`.
    pub const TYPE_ABORT_TASK_SET: u8 = 2;
    /// `TCMU_TMR_CLEAR_ACA`.
    pub const TYPE_CLEAR_ACA: u8 = 3;
    /// `TCMU_TMR_CLEAR_TASK_SET`.
    pub const TYPE_CLEAR_TASK_SET: u8 = 4;
    /// `TCMU_TMR_LUN_RESET`.
    pub const TYPE_LUN_RESET: u8 = 5;
    /// `TCMU_TMR_TARGET_WARM_RESET`.
    pub const TYPE_TARGET_WARM_RESET: u8 = 6;
    /// `TCMU_TMR_TARGET_COLD_RESET`.
    pub const TYPE_TARGET_COLD_RESET: u8 = 7;
    /// `TCMU_TMR_LUN_RESET_PRO`.
    pub const TYPE_LUN_RESET_PRO: u8 = 128;
}

/// CDB length from its opcode, as the kernel's `scsi_command_size()`
/// computes it (group code in the top three bits; 0x7f is variable-length
/// with the additional length in byte 7, passed as `cdb7`).
pub fn cdb_len(opcode: u8, cdb7: u8) -> usize {
    const BY_GROUP: [usize; 8] = [6, 10, 10, 12, 16, 12, 10, 10];
    if opcode == 0x7f { 8 + cdb7 as usize } else { BY_GROUP[(opcode >> 5) as usize] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdb_lengths_follow_group_codes() {
        assert_eq!(cdb_len(0x00, 0), 6); // TEST UNIT READY
        assert_eq!(cdb_len(0x28, 0), 10); // READ(10)
        assert_eq!(cdb_len(0x5a, 0), 10); // MODE SENSE(10)
        assert_eq!(cdb_len(0x88, 0), 16); // READ(16)
        assert_eq!(cdb_len(0xa8, 0), 12); // READ(12)
        assert_eq!(cdb_len(0x7f, 24), 32); // variable length
    }

    #[test]
    fn response_fits_the_kernel_struct() {
        // struct tcmu_cmd_entry: 8 header + union(req 40 + iov[], rsp 104) = 112 bytes.
        assert_eq!(rsp::END, 112);
        const { assert!(req::IOV <= rsp::END) };
    }

    /// Compile a C program against the kernel's own header and compare
    /// every offset we use with `offsetof`: the layout is the contract, and
    /// a hand translation has got it wrong before (see `req`).
    #[test]
    fn offsets_match_the_kernel_header() {
        let header = std::path::Path::new("/usr/include/linux/target_core_user.h");
        assert!(header.exists(), "{} is missing: install linux-libc-dev", header.display());
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("offsets.c");
        std::fs::write(
            &src,
            r#"#include <stdio.h>
#include <stddef.h>
#include <linux/target_core_user.h>
#define P(name, expr) printf("%s %zu\n", name, (size_t)(expr))
int main(void) {
    P("mb.version", offsetof(struct tcmu_mailbox, version));
    P("mb.flags", offsetof(struct tcmu_mailbox, flags));
    P("mb.cmdr_off", offsetof(struct tcmu_mailbox, cmdr_off));
    P("mb.cmdr_size", offsetof(struct tcmu_mailbox, cmdr_size));
    P("mb.cmd_head", offsetof(struct tcmu_mailbox, cmd_head));
    P("mb.cmd_tail", offsetof(struct tcmu_mailbox, cmd_tail));
    P("mb.size", sizeof(struct tcmu_mailbox));
    P("hdr.len_op", offsetof(struct tcmu_cmd_entry_hdr, len_op));
    P("hdr.cmd_id", offsetof(struct tcmu_cmd_entry_hdr, cmd_id));
    P("hdr.kflags", offsetof(struct tcmu_cmd_entry_hdr, kflags));
    P("hdr.uflags", offsetof(struct tcmu_cmd_entry_hdr, uflags));
    P("req.iov_cnt", offsetof(struct tcmu_cmd_entry, req.iov_cnt));
    P("req.iov_bidi_cnt", offsetof(struct tcmu_cmd_entry, req.iov_bidi_cnt));
    P("req.iov_dif_cnt", offsetof(struct tcmu_cmd_entry, req.iov_dif_cnt));
    P("req.cdb_off", offsetof(struct tcmu_cmd_entry, req.cdb_off));
    P("req.iov", offsetof(struct tcmu_cmd_entry, req.iov));
    P("iovec.size", sizeof(struct iovec));
    P("rsp.scsi_status", offsetof(struct tcmu_cmd_entry, rsp.scsi_status));
    P("rsp.read_len", offsetof(struct tcmu_cmd_entry, rsp.read_len));
    P("rsp.sense_buffer", offsetof(struct tcmu_cmd_entry, rsp.sense_buffer));
    P("entry.size", sizeof(struct tcmu_cmd_entry));
    P("tmr.tmr_type", offsetof(struct tcmu_tmr_entry, tmr_type));
    P("tmr.cmd_cnt", offsetof(struct tcmu_tmr_entry, cmd_cnt));
    P("tmr.cmd_ids", offsetof(struct tcmu_tmr_entry, cmd_ids));
    return 0;
}
"#,
        )
        .unwrap();
        let exe = dir.path().join("offsets");
        let cc = std::process::Command::new("cc").arg(&src).arg("-o").arg(&exe).status().expect("running cc");
        assert!(cc.success(), "cc failed");
        let out = std::process::Command::new(&exe).output().unwrap();
        let kernel: std::collections::HashMap<String, usize> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let (k, v) = l.split_once(' ').unwrap();
                (k.to_owned(), v.parse().unwrap())
            })
            .collect();
        let ours = [
            ("mb.version", mailbox::VERSION),
            ("mb.flags", mailbox::FLAGS),
            ("mb.cmdr_off", mailbox::CMDR_OFF),
            ("mb.cmdr_size", mailbox::CMDR_SIZE),
            ("mb.cmd_head", mailbox::CMD_HEAD),
            ("mb.cmd_tail", mailbox::CMD_TAIL),
            ("mb.size", mailbox::SIZE),
            ("hdr.len_op", hdr::LEN_OP),
            ("hdr.cmd_id", hdr::CMD_ID),
            ("hdr.kflags", hdr::KFLAGS),
            ("hdr.uflags", hdr::UFLAGS),
            ("req.iov_cnt", req::IOV_CNT),
            ("req.iov_bidi_cnt", req::IOV_BIDI_CNT),
            ("req.iov_dif_cnt", req::IOV_DIF_CNT),
            ("req.cdb_off", req::CDB_OFF),
            ("req.iov", req::IOV),
            ("iovec.size", req::IOV_SIZE),
            ("rsp.scsi_status", rsp::SCSI_STATUS),
            ("rsp.read_len", rsp::READ_LEN),
            ("rsp.sense_buffer", rsp::SENSE),
            ("entry.size", rsp::END),
            ("tmr.tmr_type", tmr::TYPE),
            ("tmr.cmd_cnt", tmr::CMD_CNT),
            ("tmr.cmd_ids", tmr::CMD_IDS),
        ];
        for (name, value) in ours {
            assert_eq!(Some(&value), kernel.get(name), "{name}");
        }
    }
}
