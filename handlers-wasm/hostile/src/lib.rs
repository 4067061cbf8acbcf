//! A test fixture, not a device: a minimal disk that misbehaves on
//! purpose when it receives READ(10), so tests can prove a handler cannot
//! hurt the host or other devices. The config string picks the misdeed:
//!
//! - `spin`: loop forever (the CPU budget must stop it);
//! - `oom`: allocate until memory runs out (the memory cap must stop it);
//! - `trap`: panic (a wasm trap);
//! - `escape`: try to reach past its grant — read beyond the store's end
//!   and write data-in past the buffer — and report in the data-in what the
//!   host answered (every attempt must be refused);
//! - `well-behaved`: answer READ(10) with zeroes.
//!
//! Every other command gets GOOD, so a device serving it looks alive.

use tcmu_guest_sdk::{Command, Completion, DeviceType, Handler, HandlerInfo, IoError, Store, Transfer, sense};

/// The misdeed chosen at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Loop forever.
    Spin,
    /// Exhaust memory.
    Oom,
    /// Panic.
    Trap,
    /// Probe the grant's edges.
    Escape,
    /// Behave.
    WellBehaved,
}

/// The fixture handler.
pub struct Hostile {
    mode: Mode,
    store: Option<Box<dyn Store>>,
}

const READ_10: u8 = 0x28;

impl Handler for Hostile {
    fn describe() -> HandlerInfo {
        HandlerInfo::new("hostile", DeviceType::Other, "test fixture that misbehaves on READ(10)")
    }

    fn open(config: &str, store: Option<Box<dyn Store>>) -> Result<Self, String> {
        let mode = match config.trim() {
            "spin" => Mode::Spin,
            "oom" => Mode::Oom,
            "trap" => Mode::Trap,
            "escape" => Mode::Escape,
            "" | "well-behaved" => Mode::WellBehaved,
            other => return Err(format!("unknown mode {other:?}")),
        };
        Ok(Self { mode, store })
    }

    fn handle(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Completion {
        if cmd.opcode() != READ_10 {
            return Completion::good();
        }
        match self.mode {
            Mode::Spin => spin(),
            Mode::Oom => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut chunk = vec![0u8; 1 << 20];
                    chunk[0] = hoard.len() as u8; // keep it from being optimised away
                    hoard.push(chunk);
                }
            }
            Mode::Trap => panic!("hostile handler trapping on purpose"),
            Mode::Escape => self.escape(cmd, xfer),
            Mode::WellBehaved => {
                let zeroes = vec![0u8; cmd.data_in_len as usize];
                match xfer.write_data_in(0, &zeroes) {
                    Ok(()) => Completion::good_with_data(cmd.data_in_len),
                    Err(_) => Completion::check_condition(&sense::LUN_NOT_READY),
                }
            }
        }
    }
}

impl Hostile {
    /// Try each way out of the grant and record the host's answer, one byte
    /// per attempt: 1 = refused with out-of-range, 0 = allowed (a breach).
    fn escape(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Completion {
        let refused = |r: Result<(), IoError>| u8::from(r == Err(IoError::OutOfRange));
        let store = self.store.as_ref().expect("escape mode needs a store");
        let size = store.size();
        let report = [
            refused(store.read_at(size, 1).map(drop)),
            refused(store.read_at(size - 1, 2).map(drop)),
            refused(store.read_at(u64::MAX - 1, 4).map(drop)),
            refused(store.write_at(size, &[0xee])),
            refused(store.read_to_data_in(0, cmd.data_in_len + 1, 0)),
            refused(store.write_from_data_out(size, 1, 0)),
            refused(xfer.write_data_in(cmd.data_in_len, &[0xee])),
            refused(xfer.read_data_out(u32::MAX, 2).map(drop)),
        ];
        match xfer.write_data_in(0, &report) {
            Ok(()) => Completion::good_with_data(report.len() as u32),
            Err(_) => Completion::check_condition(&sense::LUN_NOT_READY),
        }
    }
}

#[allow(clippy::empty_loop)]
fn spin() -> ! {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

tcmu_guest_sdk::export_handler!(Hostile);
