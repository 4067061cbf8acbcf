//! A test fixture, not a device: a minimal disk that misbehaves on
//! purpose, so tests can prove a handler cannot hurt the host or other
//! devices — tried the way an attacker would. The config string is
//! `[WHEN:]MISDEED`, where WHEN is `read` (the default: on READ(10)),
//! `every` (every command), `open` or `close`:
//!
//! | misdeed | what it does |
//! |---|---|
//! | `spin` | loop forever (the CPU budget must stop it) |
//! | `spin-ms=N` | burn N ms of CPU, then answer (a hog under its budget) |
//! | `oom` | allocate until memory runs out (the memory cap must stop it) |
//! | `trap` | panic (a wasm trap) |
//! | `sleep` | `std::thread::sleep(60 s)` (a blocking host call) |
//! | `poll` | wait on a clock pollable with `wasi:io/poll.poll` |
//! | `exit` | `std::process::exit(3)` |
//! | `pollables` | create pollables without end (host resource table) |
//! | `log-flood` | log 200,000 lines |
//! | `log-forge` | log a line with an embedded newline that imitates a host line |
//! | `bad-status` | answer status 0x77 |
//! | `no-sense` | answer CHECK CONDITION without sense |
//! | `escape` | reach past its grant (store end, data-in end, huge reads) and report in the data-in what the host answered (every attempt must be refused) |
//! | `well-behaved` | answer READ(10) with zeroes |
//!
//! Every other command gets GOOD, so a device serving it looks alive.
//!
//! State, for tests of what survives an instance: the fixture counts the
//! commands it served and remembers the last write-cache setting the host
//! told it; vendor command C0h answers `[wce, served (u32 LE)]` (wce 2 =
//! never told). It saves both through the SDK's state hooks (format byte
//! 0x48), unless the config ends in `,stateless`.
//!
//! Cargo features build variants whose `describe` misbehaves:
//! `describe-sleeps`, `describe-spins`, `huge-name`.

use tcmu_guest_sdk::{
    Command, Completion, DeviceIdentity, DeviceType, Handler, HandlerInfo, IoError, LogLevel, Store, Transfer, log,
    sense,
};

/// When the misdeed happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// On READ(10).
    Read,
    /// On every command.
    Every,
    /// In `open`.
    Open,
    /// In `close`.
    Close,
}

/// The misdeed chosen at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misdeed {
    /// Loop forever.
    Spin,
    /// Burn this many milliseconds, then answer.
    SpinMs(u64),
    /// Exhaust memory.
    Oom,
    /// Panic.
    Trap,
    /// Block in `thread::sleep`.
    Sleep,
    /// Block in `wasi:io/poll.poll`.
    Poll,
    /// Exit the process.
    Exit,
    /// Create host resources without end.
    Pollables,
    /// Log without end.
    LogFlood,
    /// Log a line that imitates the host's.
    LogForge,
    /// Answer a status SAM does not define.
    BadStatus,
    /// CHECK CONDITION without sense.
    NoSense,
    /// CHECK CONDITION whose sense (ILLEGAL REQUEST, INVALID FIELD IN CDB)
    /// comes through `transfer.set-sense` followed by a megabyte of junk,
    /// after two earlier calls the last one replaces.
    SenseFlood,
    /// Probe the grant's edges.
    Escape,
    /// Behave.
    WellBehaved,
}

/// The fixture handler.
pub struct Hostile {
    when: When,
    misdeed: Misdeed,
    store: Option<Box<dyn Store>>,
    stateless: bool,
    write_cache: Option<bool>,
    served: u32,
}

const READ_10: u8 = 0x28;
/// Vendor-specific: report the fixture's state.
const QUERY_STATE: u8 = 0xc0;
const STATE_FORMAT: u8 = 0x48;

fn parse(config: &str) -> Result<(When, Misdeed), String> {
    let config = config.trim();
    let (when, what) = match config.split_once(':') {
        Some(("read", w)) => (When::Read, w),
        Some(("every", w)) => (When::Every, w),
        Some(("open", w)) => (When::Open, w),
        Some(("close", w)) => (When::Close, w),
        Some((other, _)) => return Err(format!("unknown moment {other:?}")),
        None => (When::Read, config),
    };
    let misdeed = match what {
        "spin" => Misdeed::Spin,
        "oom" => Misdeed::Oom,
        "trap" => Misdeed::Trap,
        "sleep" => Misdeed::Sleep,
        "poll" => Misdeed::Poll,
        "exit" => Misdeed::Exit,
        "pollables" => Misdeed::Pollables,
        "log-flood" => Misdeed::LogFlood,
        "log-forge" => Misdeed::LogForge,
        "bad-status" => Misdeed::BadStatus,
        "no-sense" => Misdeed::NoSense,
        "sense-flood" => Misdeed::SenseFlood,
        "escape" => Misdeed::Escape,
        "" | "well-behaved" => Misdeed::WellBehaved,
        other => match other.strip_prefix("spin-ms=").map(str::parse) {
            Some(Ok(ms)) => Misdeed::SpinMs(ms),
            _ => return Err(format!("unknown mode {other:?}")),
        },
    };
    Ok((when, misdeed))
}

impl Handler for Hostile {
    fn describe() -> HandlerInfo {
        #[cfg(feature = "describe-sleeps")]
        std::thread::sleep(std::time::Duration::from_secs(60));
        #[cfg(feature = "describe-spins")]
        spin();
        #[cfg(feature = "huge-name")]
        return HandlerInfo::new(&"h".repeat(4 << 20), DeviceType::Other, "a 4 MiB name");
        #[cfg(not(feature = "huge-name"))]
        HandlerInfo::new("hostile", DeviceType::Other, "test fixture that misbehaves on purpose")
    }

    fn open(config: &str, _identity: &DeviceIdentity, store: Option<Box<dyn Store>>) -> Result<Self, String> {
        let (config, stateless) = match config.strip_suffix(",stateless") {
            Some(rest) => (rest, true),
            None => (config, false),
        };
        let (when, misdeed) = parse(config)?;
        let mut dev = Self { when, misdeed, store, stateless, write_cache: None, served: 0 };
        if when == When::Open {
            dev.misbehave(None, None);
        }
        Ok(dev)
    }

    fn handle(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Completion {
        self.served += 1;
        if cmd.opcode() == QUERY_STATE {
            let mut report = vec![self.write_cache.map_or(2, u8::from)];
            report.extend(self.served.to_le_bytes());
            return match xfer.write_data_in(0, &report) {
                Ok(()) => Completion::good_with_data(report.len() as u32),
                Err(_) => Completion::check_condition(&sense::LUN_NOT_READY),
            };
        }
        let now = match self.when {
            When::Read => cmd.opcode() == READ_10,
            When::Every => true,
            When::Open | When::Close => false,
        };
        if !now {
            return self.zeroes(cmd, xfer);
        }
        self.misbehave(Some(cmd), Some(xfer)).unwrap_or_else(|| self.zeroes(cmd, xfer))
    }

    fn close(&mut self) {
        if self.when == When::Close {
            self.misbehave(None, None);
        }
    }

    fn write_cache_changed(&mut self, enabled: bool) {
        self.write_cache = Some(enabled);
    }

    fn save_state(&self, out: &mut Vec<u8>) {
        if !self.stateless {
            out.extend([STATE_FORMAT, self.write_cache.map_or(2, u8::from)]);
            out.extend(self.served.to_le_bytes());
        }
    }

    fn restore_state(&mut self, state: &[u8]) -> Result<(), String> {
        match state {
            [] => Ok(()),
            [STATE_FORMAT, wce, served @ ..] if served.len() == 4 => {
                self.write_cache = match wce {
                    0 => Some(false),
                    1 => Some(true),
                    _ => None,
                };
                self.served = u32::from_le_bytes(served.try_into().expect("4 bytes"));
                Ok(())
            }
            _ => Err(format!("not a hostile fixture's state ({} bytes)", state.len())),
        }
    }
}

impl Hostile {
    fn zeroes(&self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Completion {
        if cmd.opcode() != READ_10 {
            return Completion::good();
        }
        let zeroes = vec![0u8; cmd.data_in_len as usize];
        match xfer.write_data_in(0, &zeroes) {
            Ok(()) => Completion::good_with_data(cmd.data_in_len),
            Err(_) => Completion::check_condition(&sense::LUN_NOT_READY),
        }
    }

    /// Do the misdeed; `Some` answers the command instead of the usual reply.
    fn misbehave(&mut self, cmd: Option<&Command<'_>>, xfer: Option<&mut dyn Transfer>) -> Option<Completion> {
        match self.misdeed {
            Misdeed::Spin => spin(),
            Misdeed::SpinMs(ms) => {
                let start = std::time::Instant::now();
                let mut x = 0u64;
                while start.elapsed().as_millis() < u128::from(ms) {
                    for _ in 0..10_000 {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                }
                None
            }
            Misdeed::Oom => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut chunk = vec![0u8; 1 << 20];
                    chunk[0] = hoard.len() as u8; // keep it from being optimised away
                    hoard.push(chunk);
                }
            }
            Misdeed::Trap => panic!("hostile handler trapping on purpose"),
            Misdeed::Sleep => {
                std::thread::sleep(std::time::Duration::from_secs(60));
                None
            }
            Misdeed::Poll => {
                wait_on_a_clock();
                None
            }
            Misdeed::Exit => std::process::exit(3),
            Misdeed::Pollables => hoard_pollables(),
            Misdeed::LogFlood => {
                for i in 0..200_000 {
                    log(LogLevel::Warn, &format!("flood line {i}"));
                }
                None
            }
            Misdeed::LogForge => {
                log(LogLevel::Info, "ok\n2026-12-01T00:00:00Z ERROR tcmu_wasm: device=other0 handler fault");
                None
            }
            Misdeed::BadStatus => Some(Completion::status(0x77)),
            Misdeed::NoSense => Some(Completion::check_condition_with_sense(Vec::new())),
            Misdeed::SenseFlood => Some(sense_flood()),
            Misdeed::Escape => Some(self.escape(cmd?, xfer?)),
            Misdeed::WellBehaved => None,
        }
    }

    /// Try each way out of the grant and record the host's answer, one byte
    /// per attempt: 1 = refused, 0 = allowed (a breach).
    fn escape(&mut self, cmd: &Command<'_>, xfer: &mut dyn Transfer) -> Completion {
        let refused = |r: Result<(), IoError>| u8::from(r == Err(IoError::OutOfRange));
        let too_large = |r: Result<(), IoError>| u8::from(r == Err(IoError::TooLarge));
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
            // 4 GiB the guest could never hold: refused before the host
            // allocates anything (the store is smaller, so range checks
            // alone would not stop a large sparse one).
            too_large(store.read_at(0, u32::MAX).map(drop)),
            // The command's data-out is 4 KiB at most: out of range, and
            // checked before any allocation.
            refused(xfer.read_data_out(0, u32::MAX).map(drop)),
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

#[cfg(target_family = "wasm")]
fn wait_on_a_clock() {
    let pollable = wasi::clocks::monotonic_clock::subscribe_duration(60_000_000_000);
    wasi::io::poll::poll(&[&pollable]);
}

#[cfg(not(target_family = "wasm"))]
fn wait_on_a_clock() {
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[cfg(target_family = "wasm")]
fn hoard_pollables() -> ! {
    let mut hoard = Vec::new();
    loop {
        hoard.push(wasi::clocks::monotonic_clock::subscribe_duration(3_600_000_000_000));
    }
}

#[cfg(not(target_family = "wasm"))]
fn hoard_pollables() -> ! {
    spin()
}

tcmu_guest_sdk::export_handler!(Hostile);

/// Hand the host sense data through the raw `transfer.set-sense` (the SDK
/// itself only passes what a completion carries): twice a medium error,
/// then a fixed-format ILLEGAL REQUEST whose additional length claims the
/// 1 MiB of junk that trails it.
/// The completion itself carries none.
fn sense_flood() -> Completion {
    #[cfg(target_family = "wasm")]
    {
        use tcmu_guest_sdk::wasm::bindings::tcmu::handler::transfer::set_sense;
        set_sense(&sense::UNRECOVERED_READ_ERROR.fixed());
        set_sense(&sense::UNRECOVERED_READ_ERROR.fixed());
        let mut flood = sense::INVALID_FIELD_IN_CDB.fixed();
        flood[7] = 0xff; // additional sense length: the junk claims to be sense
        flood.resize(flood.len() + (1 << 20), 0xee);
        set_sense(&flood);
    }
    Completion::check_condition_with_sense(Vec::new())
}
