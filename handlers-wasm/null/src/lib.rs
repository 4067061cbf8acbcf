//! `null`: a disk that answers READ and WRITE without touching any store,
//! like LIO's `rd_mcp` with `nullio=true`. What it costs per command is
//! what the ring, the device loop and the sandbox cost: `tcmu-wasm bench
//! --handler null` reports it as daemon CPU time per command.
//!
//! Reads return whatever the data area held (no defined data); writes are
//! dropped. It is a measuring instrument, not storage: the kernel and an
//! initiator see an ordinary SBC disk (INQUIRY, READ CAPACITY, TEST UNIT
//! READY, SYNCHRONIZE CACHE), so it can be exported and driven by fio too.
//!
//! Config: `blocks=N` (default 2097152, 1 GiB of 512-byte blocks) when no
//! backing is granted; with one, its size. `serial=` as every handler.

use tcmu_guest_sdk::scsi::capacity::{ReadCapacity16Data, read_capacity_10_data};
use tcmu_guest_sdk::scsi::cdb::{ReadCapacity10, ReadCapacity16, ReadWrite};
use tcmu_guest_sdk::scsi::inquiry::{StandardInquiry, peripheral_type};
use tcmu_guest_sdk::scsi::{opcode, respond};
use tcmu_guest_sdk::sense::{INVALID_COMMAND_OPERATION_CODE, LBA_OUT_OF_RANGE, Sense};
use tcmu_guest_sdk::spc::Spc;
use tcmu_guest_sdk::{Command, Completion, DeviceIdentity, DeviceType, Handler, HandlerInfo, Store, Transfer};

const BLOCK: u32 = 512;
const DEFAULT_BLOCKS: u64 = 2 * 1024 * 1024;

/// The null disk.
pub struct NullDisk {
    blocks: u64,
    spc: Spc,
}

impl NullDisk {
    fn execute(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Result<Completion, Sense> {
        use opcode::*;
        match cmd.opcode() {
            READ_6 | READ_10 | READ_12 | READ_16 => {
                Ok(Completion::good_with_data(self.transfer(cmd, cmd.data_in_len)?))
            }
            WRITE_6 | WRITE_10 | WRITE_12 | WRITE_16 => {
                self.transfer(cmd, cmd.data_out_len)?;
                Ok(Completion::good())
            }
            TEST_UNIT_READY | SYNCHRONIZE_CACHE_10 | SYNCHRONIZE_CACHE_16 => Ok(Completion::good()),
            INQUIRY => {
                let standard = StandardInquiry::new(peripheral_type::DISK, "TCMUWASM", "null", "0.1");
                self.spc.inquiry(cmd, xfer, &standard, &[])
            }
            READ_CAPACITY_10 => {
                ReadCapacity10::parse(cmd.cdb)?;
                let data = read_capacity_10_data(self.blocks - 1, BLOCK);
                Ok(respond(xfer, cmd, &data, data.len() as u32))
            }
            SERVICE_ACTION_IN_16 => {
                let request = ReadCapacity16::parse(cmd.cdb)?;
                let data = ReadCapacity16Data { last_lba: self.blocks - 1, block_length: BLOCK, ..Default::default() }
                    .to_bytes();
                Ok(respond(xfer, cmd, &data, request.allocation_length))
            }
            _ => Err(INVALID_COMMAND_OPERATION_CODE.into()),
        }
    }

    /// The bytes a READ/WRITE moves, after the checks a disk makes: the
    /// range lies on the disk and fits the buffer the initiator gave.
    fn transfer(&self, cmd: &Command<'_>, buffer: u32) -> Result<u32, Sense> {
        let rw = ReadWrite::parse(cmd.cdb)?;
        match rw.lba.checked_add(rw.blocks.into()) {
            Some(end) if end <= self.blocks => Ok((u64::from(rw.blocks) * u64::from(BLOCK)).min(buffer.into()) as u32),
            _ => Err(LBA_OUT_OF_RANGE.into()),
        }
    }
}

impl Handler for NullDisk {
    fn describe() -> HandlerInfo {
        HandlerInfo::new("null", DeviceType::Disk, "answers READ/WRITE without I/O (measures per-command cost)")
    }

    fn open(config: &str, identity: &DeviceIdentity, store: Option<Box<dyn Store>>) -> Result<Self, String> {
        let mut blocks = store.as_ref().map_or(DEFAULT_BLOCKS, |s| s.size() / u64::from(BLOCK));
        for item in config.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item.split_once('=') {
                Some(("blocks", n)) => blocks = n.parse().map_err(|_| format!("blocks={n}: not a number"))?,
                Some(("serial", _)) => {}
                _ => return Err(format!("unknown config item {item:?} (null takes blocks=N, serial=S)")),
            }
        }
        if blocks == 0 {
            return Err("the disk needs at least one block".into());
        }
        Ok(Self { blocks, spc: Spc::new(identity.clone()) })
    }

    fn handle(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Completion {
        if let Err(attention) = self.spc.gate(cmd) {
            return attention;
        }
        self.execute(cmd, xfer).unwrap_or_else(|sense| self.spc.fail(sense))
    }
}

tcmu_guest_sdk::export_handler!(NullDisk);

#[cfg(test)]
mod tests {
    use super::*;
    use tcmu_guest_sdk::testing::run;

    fn disk(config: &str) -> NullDisk {
        NullDisk::open(config, &DeviceIdentity::from_name("n0"), None).unwrap()
    }

    fn send(d: &mut NullDisk, cdb: &[u8], data_in_len: u32) -> (Completion, Vec<u8>) {
        run(&Command { cdb, data_out_len: 0, data_in_len }, &[], |c, x| d.handle(c, x))
    }

    #[test]
    fn reads_and_writes_inside_the_disk_succeed_and_past_its_end_fail() {
        let mut d = disk("blocks=8");
        let (done, _) = send(&mut d, &[0x88, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 2, 0, 0], 1024);
        assert_eq!((done.status, done.data_in_len), (0, 1024));
        let (done, _) = send(&mut d, &[0x88, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0], 1024);
        assert_eq!(done.status, 2, "CHECK CONDITION past the last block");
        let (cap, data) = send(&mut d, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8);
        assert_eq!(cap.status, 0);
        assert_eq!(&data[..8], &[0, 0, 0, 7, 0, 0, 2, 0], "last LBA 7, 512-byte blocks");
        let (done, _) = send(&mut d, &[0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0);
        assert_eq!(done.status, 2, "anything else: INVALID COMMAND OPERATION CODE");
        assert!(NullDisk::open("frob=1", &DeviceIdentity::from_name("n0"), None).is_err());
        assert!(NullDisk::open("blocks=0", &DeviceIdentity::from_name("n0"), None).is_err());
    }
}
