//! Many commands in flight: the file handler over io_uring, driven by the
//! kernel simulator with bursts of commands queued at once. What is
//! checked is what docs/architecture.md ("Commands in flight") promises:
//! every command completes exactly once with the data a sequential model
//! predicts, overlapping writes land in arrival order, a synchronous store
//! read sees every earlier queued write, an I/O error fails only its own
//! command with the LBA, and a stop answers everything in flight.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tcmu_wasm::aio::{IoMode, IoSettings};
use tcmu_wasm::backing::{BackingFile, OpenFlags};
use tcmu_wasm::device::Backend;
use tcmu_wasm::native::NativeDevice;
use tcmu_wasm::sim::{SimCompletion, SimConfig, SimDevice, SimError, SimKernel, rw16};

const DISK: u64 = 4 << 20;
const SECTOR: usize = 512;

/// io_uring only: every transfer goes through the queue (no RWF_NOWAIT
/// shortcut), so the ordering rules are what keeps the data right.
fn uring() -> IoSettings {
    IoSettings { mode: IoMode::Uring, max_in_flight: 64, nowait_first: false, ..IoSettings::default() }
}

fn sim() -> SimConfig {
    SimConfig { ring_size: 256 * 1024, data_blocks: 1024, ..SimConfig::default() }
}

/// The file disk, natively linked, over `backing`, its transfers queued.
fn start(backing: Arc<BackingFile>, settings: IoSettings) -> SimDevice {
    start_named("fly0", backing, settings)
}

/// [`start`] with the device (and its thread, `dev-<name>`) named `name`.
fn start_named(name: &'static str, backing: Arc<BackingFile>, settings: IoSettings) -> SimDevice {
    SimDevice::start(sim(), name, move || -> anyhow::Result<Box<dyn Backend>> {
        Ok(Box::new(
            NativeDevice::<tcmu_handler_file::FileDisk>::open(
                &format!("serial={name}"),
                &tcmu_guest_sdk::DeviceIdentity::from_name(name),
                Some(backing),
                settings,
            )
            .map_err(anyhow::Error::msg)?,
        ))
    })
    .expect("device starts")
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed) ^ (i >> 9) as u8).collect()
}

/// Collect completions until `ids` have all arrived (each exactly once).
fn collect(kernel: &mut SimKernel, mut left: usize) -> HashMap<u16, SimCompletion> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = HashMap::new();
    while left > 0 {
        assert!(Instant::now() < deadline, "{left} commands never completed");
        for c in kernel.wait(Duration::from_millis(200)).unwrap() {
            assert!(got.insert(c.cmd_id, c).is_none(), "a command completed twice");
            left -= 1;
        }
    }
    got
}

/// Submit, collecting completions while the ring or data area is full.
fn submit(
    kernel: &mut SimKernel,
    done: &mut HashMap<u16, SimCompletion>,
    cdb: &[u8],
    data_out: &[u8],
    data_in: u32,
) -> u16 {
    loop {
        match kernel.submit(cdb, data_out, data_in) {
            Ok(id) => return id,
            Err(SimError::RingFull | SimError::DataAreaFull) => {
                for c in kernel.wait(Duration::from_millis(200)).unwrap() {
                    assert!(done.insert(c.cmd_id, c).is_none(), "a command completed twice");
                }
            }
            Err(e) => panic!("submit: {e}"),
        }
    }
}

#[test]
fn overlapping_writes_land_in_arrival_order_and_reads_see_them() {
    let dir = tempfile::tempdir().unwrap();
    let backing = Arc::new(BackingFile::open(&dir.path().join("d.img"), DISK, false).unwrap());
    let mut dev = start(backing, uring());
    for round in 0..20u8 {
        let mut done = HashMap::new();
        // Sixteen writes of one range, partly overlapping each other, then
        // a read of it: all queued before the device sees any of them.
        let mut model = vec![0u8; 64 * SECTOR];
        let mut ids = Vec::new();
        for i in 0..16u8 {
            let lba = u64::from(i % 4) * 8;
            let data = pattern(32 * SECTOR, round.wrapping_mul(17).wrapping_add(i));
            model[lba as usize * SECTOR..lba as usize * SECTOR + data.len()].copy_from_slice(&data);
            ids.push(submit(&mut dev.kernel, &mut done, &rw16(true, lba, 32), &data, 0));
        }
        let read = submit(&mut dev.kernel, &mut done, &rw16(false, 0, 64), &[], model.len() as u32);
        let left = ids.len() + 1 - done.len();
        done.extend(collect(&mut dev.kernel, left));
        for id in ids {
            assert_eq!(done[&id].status, 0, "write {id}");
        }
        assert_eq!(done[&read].status, 0);
        assert!(done[&read].data_in == model, "round {round}: the read does not show the writes in arrival order");
    }
    dev.stop().unwrap();
}

#[test]
fn a_synchronous_store_read_sees_the_queued_write_before_it() {
    // COMPARE AND WRITE reads with `read-at`: queued right behind a WRITE
    // of the same block, it must compare against what that WRITE wrote.
    let dir = tempfile::tempdir().unwrap();
    let backing = Arc::new(BackingFile::open(&dir.path().join("c.img"), DISK, false).unwrap());
    let mut dev = start(backing, uring());
    for round in 0..20u8 {
        let mut done = HashMap::new();
        let lba = u64::from(round) * 4;
        let written = pattern(SECTOR, round);
        let replacement = pattern(SECTOR, round ^ 0x5a);
        let w = submit(&mut dev.kernel, &mut done, &rw16(true, lba, 1), &written, 0);
        let mut caw = [0u8; 16];
        caw[0] = 0x89;
        caw[2..10].copy_from_slice(&lba.to_be_bytes());
        caw[13] = 1;
        let data_out = [written.clone(), replacement.clone()].concat();
        let c = submit(&mut dev.kernel, &mut done, &caw, &data_out, 0);
        let r = submit(&mut dev.kernel, &mut done, &rw16(false, lba, 1), &[], SECTOR as u32);
        let left = 3 - done.len();
        done.extend(collect(&mut dev.kernel, left));
        assert_eq!(done[&w].status, 0);
        assert_eq!(done[&c].status, 0, "round {round}: COMPARE AND WRITE miscompared: {:02x?}", done[&c].sense);
        assert_eq!(done[&r].data_in, replacement, "the read after COMPARE AND WRITE sees its write");
    }
    dev.stop().unwrap();
}

#[test]
fn a_failed_write_fails_only_its_command_with_the_lba() {
    // Through the queue, and through the RWF_NOWAIT shortcut.
    for settings in [uring(), IoSettings { nowait_first: true, ..uring() }] {
        a_failed_write_fails_only_its_command(settings);
    }
}

fn a_failed_write_fails_only_its_command(settings: IoSettings) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.img");
    let contents = pattern(DISK as usize, 3);
    std::fs::write(&path, &contents).unwrap();
    // Opened read-only but granted writable: every write fails (EBADF).
    let file = OpenOptions::new().read(true).open(&path).unwrap();
    let backing = Arc::new(BackingFile::from_open_file(file, &path, DISK, false));
    let mut dev = start(backing, settings);
    let mut done = HashMap::new();
    let r1 = submit(&mut dev.kernel, &mut done, &rw16(false, 10, 8), &[], 8 * SECTOR as u32);
    let w = submit(&mut dev.kernel, &mut done, &rw16(true, 1234, 8), &pattern(8 * SECTOR, 9), 0);
    let r2 = submit(&mut dev.kernel, &mut done, &rw16(false, 2000, 8), &[], 8 * SECTOR as u32);
    let left = 3 - done.len();
    done.extend(collect(&mut dev.kernel, left));
    assert_eq!(done[&r1].status, 0);
    assert_eq!(done[&r1].data_in, &contents[10 * SECTOR..18 * SECTOR]);
    assert_eq!(done[&r2].status, 0);
    assert_eq!(done[&r2].data_in, &contents[2000 * SECTOR..2008 * SECTOR]);
    let failed = &done[&w];
    assert_eq!(failed.status, 2);
    let sense = &failed.sense;
    assert_eq!((sense[2] & 0x0f, sense[12], sense[13]), (0x03, 0x0c, 0x00), "MEDIUM ERROR, WRITE ERROR");
    assert_ne!(sense[0] & 0x80, 0, "VALID: the INFORMATION field names the LBA");
    assert_eq!(u32::from_be_bytes(sense[3..7].try_into().unwrap()), 1234);
    // The device keeps serving.
    assert_eq!(dev.execute(&[0; 6], &[], 0).unwrap().status, 0);
    dev.stop().unwrap();
}

#[test]
fn a_failed_read_reports_unrecovered_read_error_at_its_lba() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wo.img");
    std::fs::write(&path, vec![0u8; DISK as usize]).unwrap();
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    let backing = Arc::new(BackingFile::from_open_file(file, &path, DISK, false));
    let mut dev = start(backing, uring());
    let c = dev.execute(&rw16(false, 77, 4), &[], 4 * SECTOR as u32).unwrap();
    assert_eq!(c.status, 2);
    assert_eq!((c.sense[2] & 0x0f, c.sense[12], c.sense[13]), (0x03, 0x11, 0x00));
    assert_eq!(u32::from_be_bytes(c.sense[3..7].try_into().unwrap()), 77);
    dev.stop().unwrap();
}

#[test]
fn a_stop_answers_every_command_in_flight_and_keeps_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.img");
    let backing = Arc::new(BackingFile::open(&path, DISK, false).unwrap());
    let mut dev = start(backing, uring());
    let mut ids = Vec::new();
    let mut done = HashMap::new();
    for i in 0..48u64 {
        ids.push(submit(&mut dev.kernel, &mut done, &rw16(true, i * 16, 16), &pattern(16 * SECTOR, i as u8), 0));
    }
    // Stop while the device is busy with them.
    while done.is_empty() {
        for c in dev.kernel.wait(Duration::from_millis(100)).unwrap() {
            done.insert(c.cmd_id, c);
        }
    }
    let (kernel, handle) = dev.split();
    handle.stop(Duration::from_secs(30)).unwrap();
    for c in kernel.reap().unwrap() {
        assert!(done.insert(c.cmd_id, c).is_none());
    }
    // Every command the device took is answered: what is left in the ring
    // is untouched, exactly the unanswered commands in their own entries,
    // as the next daemon will find them.
    let mut ring = tcmu_wasm::ring::Ring::attach(kernel.region()).unwrap();
    let mut untaken = Vec::new();
    while let Some(tcmu_wasm::ring::Entry::Command(cmd)) = ring.next_entry().unwrap() {
        untaken.push(cmd.cmd_id);
    }
    assert_eq!(untaken.len(), kernel.outstanding(), "the ring holds an answered or half-answered entry");
    let on_disk = std::fs::read(&path).unwrap();
    for (i, id) in ids.iter().enumerate() {
        match done.get(id) {
            Some(c) => {
                assert_eq!(c.status, 0, "write {i} failed");
                let at = i * 16 * SECTOR;
                assert_eq!(
                    &on_disk[at..at + 16 * SECTOR],
                    &pattern(16 * SECTOR, i as u8)[..],
                    "acknowledged write {i} lost"
                );
            }
            None => assert!(untaken.contains(id), "command {id} neither answered nor left in the ring"),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Write {
        lba: u64,
        blocks: u32,
        seed: u8,
    },
    Read {
        lba: u64,
        blocks: u32,
    },
    Sync,
    /// UNMAP of one extent (a discard).
    Unmap {
        lba: u64,
        blocks: u32,
    },
    /// WRITE SAME(16) of a zero block: write-zeroes, or a discard with
    /// the UNMAP bit.
    WriteSameZero {
        lba: u64,
        blocks: u32,
        unmap: bool,
    },
    /// Let everything queued so far complete.
    Settle,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    // A small disk region, so commands overlap often.
    prop_oneof![
        5 => (0u64..96, 1u32..32, any::<u8>()).prop_map(|(lba, blocks, seed)| Op::Write { lba, blocks, seed }),
        5 => (0u64..96, 1u32..32).prop_map(|(lba, blocks)| Op::Read { lba, blocks }),
        1 => Just(Op::Sync),
        1 => (0u64..96, 1u32..32).prop_map(|(lba, blocks)| Op::Unmap { lba, blocks }),
        1 => (0u64..96, 1u32..32, any::<bool>()).prop_map(|(lba, blocks, unmap)| Op::WriteSameZero { lba, blocks, unmap }),
        1 => Just(Op::Settle),
    ]
}

fn run_stream(ops: Vec<Op>, settings: IoSettings) -> Result<(), TestCaseError> {
    run_stream_on(ops, settings, OpenFlags::default())
}

fn run_stream_on(ops: Vec<Op>, settings: IoSettings, flags: OpenFlags) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.img");
    let backing = match BackingFile::open_with(&path, DISK, flags) {
        Ok(b) => Arc::new(b),
        Err(e) if flags.direct && e.kind() == std::io::ErrorKind::Unsupported => {
            // The temp directory's filesystem has no O_DIRECT (tmpfs before 6.6).
            eprintln!("skipped: {e}");
            return Ok(());
        }
        Err(e) => panic!("opening {}: {e}", path.display()),
    };
    let mut dev = start(backing, settings);
    let mut model = vec![0u8; DISK as usize];
    // id -> expected data-in (reads) or None (writes, syncs).
    let mut expected: HashMap<u16, Option<Vec<u8>>> = HashMap::new();
    let mut done: HashMap<u16, SimCompletion> = HashMap::new();
    for op in ops {
        let (id, want) = match op {
            Op::Write { lba, blocks, seed } => {
                let data = pattern(blocks as usize * SECTOR, seed);
                let at = lba as usize * SECTOR;
                model[at..at + data.len()].copy_from_slice(&data);
                (submit(&mut dev.kernel, &mut done, &rw16(true, lba, blocks), &data, 0), None)
            }
            Op::Read { lba, blocks } => {
                let at = lba as usize * SECTOR;
                let want = model[at..at + blocks as usize * SECTOR].to_vec();
                let id = submit(&mut dev.kernel, &mut done, &rw16(false, lba, blocks), &[], want.len() as u32);
                (id, Some(want))
            }
            Op::Sync => (submit(&mut dev.kernel, &mut done, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 0), None),
            Op::Unmap { lba, blocks } => {
                let at = lba as usize * SECTOR;
                model[at..at + blocks as usize * SECTOR].fill(0);
                let (cdb, list) = unmap(lba, blocks);
                (submit(&mut dev.kernel, &mut done, &cdb, &list, 0), None)
            }
            Op::WriteSameZero { lba, blocks, unmap } => {
                let at = lba as usize * SECTOR;
                model[at..at + blocks as usize * SECTOR].fill(0);
                let mut cdb = [0u8; 16];
                cdb[0] = 0x93;
                cdb[1] = if unmap { 0x08 } else { 0 };
                cdb[2..10].copy_from_slice(&lba.to_be_bytes());
                cdb[10..14].copy_from_slice(&blocks.to_be_bytes());
                (submit(&mut dev.kernel, &mut done, &cdb, &[0; SECTOR], 0), None)
            }
            Op::Settle => {
                let left = expected.len() - expected.keys().filter(|id| done.contains_key(id)).count();
                done.extend(collect(&mut dev.kernel, left));
                continue;
            }
        };
        // The simulator reuses an id only once its command completed.
        if let Some(old) = done.remove(&id) {
            let want = expected.remove(&id).expect("a completed id was issued");
            check(id, &old, want)?;
        }
        prop_assert!(expected.insert(id, want).is_none(), "id {} reused while outstanding", id);
    }
    let left = expected.len() - expected.keys().filter(|id| done.contains_key(id)).count();
    done.extend(collect(&mut dev.kernel, left));
    for (id, want) in expected {
        let got = done.remove(&id).ok_or_else(|| TestCaseError::fail(format!("{id} never completed")))?;
        check(id, &got, want)?;
    }
    prop_assert!(done.is_empty(), "completions for commands never issued: {:?}", done.keys());
    prop_assert_eq!(dev.kernel.outstanding(), 0);
    dev.stop().map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(std::fs::read(&path).unwrap() == model, "the disk differs from the sequential model");
    Ok(())
}

/// An UNMAP CDB and its parameter list with one block descriptor.
fn unmap(lba: u64, blocks: u32) -> ([u8; 10], Vec<u8>) {
    let mut list = vec![0u8; 24];
    list[0..2].copy_from_slice(&22u16.to_be_bytes());
    list[2..4].copy_from_slice(&16u16.to_be_bytes());
    list[8..16].copy_from_slice(&lba.to_be_bytes());
    list[16..20].copy_from_slice(&blocks.to_be_bytes());
    let mut cdb = [0u8; 10];
    cdb[0] = 0x42;
    cdb[7..9].copy_from_slice(&(list.len() as u16).to_be_bytes());
    (cdb, list)
}

fn check(id: u16, got: &SimCompletion, want: Option<Vec<u8>>) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.status, 0, "command {} failed: {:02x?}", id, got.sense);
    if let Some(data) = want {
        prop_assert!(got.data_in == data, "read {} returned other data than the sequential model", id);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Bursts of overlapping reads, writes, UNMAPs, WRITE SAMEs of zeroes
    /// and SYNCHRONIZE CACHEs with many in flight: each completes exactly once, in whatever order, and
    /// every read and the final disk match a model that runs them one at
    /// a time in arrival order.
    #[test]
    fn bursts_in_flight_match_the_sequential_model(ops in proptest::collection::vec(op_strategy(), 1..200)) {
        run_stream(ops, uring())?;
    }

    /// The same with a small in-flight limit (the device stops taking
    /// entries at the limit and resumes as I/O finishes).
    #[test]
    fn a_small_in_flight_limit_changes_nothing_but_speed(ops in proptest::collection::vec(op_strategy(), 1..120)) {
        run_stream(ops, IoSettings { max_in_flight: 2, ..uring() })?;
    }

    /// And with blocking I/O (no io_uring).
    #[test]
    fn blocking_io_matches_the_model_too(ops in proptest::collection::vec(op_strategy(), 1..120)) {
        run_stream(ops, IoSettings { mode: IoMode::Blocking, ..uring() })?;
    }

    /// And as the daemon runs by default: each transfer tried at once
    /// with RWF_NOWAIT where nothing conflicts, queued otherwise.
    #[test]
    fn the_nowait_shortcut_matches_the_model_too(ops in proptest::collection::vec(op_strategy(), 1..200)) {
        run_stream(ops, IoSettings { nowait_first: true, ..uring() })?;
    }

    /// And over O_DIRECT (`direct = true`), as configured: aligned
    /// transfers go straight between the device and the data area, the
    /// rest (COMPARE AND WRITE's read, a handler's odd offsets) through a
    /// bounce buffer, in the same order.
    #[test]
    fn direct_io_matches_the_model_too(ops in proptest::collection::vec(op_strategy(), 1..120)) {
        run_stream_on(ops, IoSettings { nowait_first: true, ..uring() }, OpenFlags { read_only: false, direct: true })?;
    }

    /// And with the device thread busy-polling (`busy_poll_us`): it takes
    /// entries and completions found while spinning, not only on a wake-up.
    #[test]
    fn busy_polling_matches_the_model_too(ops in proptest::collection::vec(op_strategy(), 1..120)) {
        run_stream(ops, IoSettings { nowait_first: true, busy_poll: Duration::from_micros(500), ..uring() })?;
    }
}

/// CPU time thread `dev-<name>` of this process has run (schedstat), or
/// `None` where /proc does not say.
fn device_thread_cpu(name: &str) -> Option<Duration> {
    let comm = format!("dev-{name}");
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        if std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim_end() == comm) {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            return stat.split_whitespace().next()?.parse().ok().map(Duration::from_nanos);
        }
    }
    None
}

/// A busy-polling device serves as before, spins only for its window once
/// the ring runs dry (then sleeps: an idle device costs no CPU), and a
/// stop reaches it at once.
#[test]
fn a_busy_polling_device_sleeps_once_its_window_passes() {
    let dir = tempfile::tempdir().unwrap();
    let backing = Arc::new(BackingFile::open(&dir.path().join("p.img"), DISK, false).unwrap());
    let settings = IoSettings { busy_poll: Duration::from_millis(2), ..uring() };
    let mut dev = start_named("spin0", backing, settings);
    for i in 0..32u64 {
        let data = pattern(8 * SECTOR, i as u8);
        let w = dev.kernel.execute(&rw16(true, i * 8, 8), &data, 0, Duration::from_secs(10)).unwrap();
        assert_eq!(w.status, 0);
        let r = dev.kernel.execute(&rw16(false, i * 8, 8), &[], 8 * SECTOR as u32, Duration::from_secs(10)).unwrap();
        assert_eq!((r.status, &r.data_in), (0, &data), "block {i} read back wrong");
    }
    std::thread::sleep(Duration::from_millis(50));
    let Some(before) = device_thread_cpu("spin0") else { return };
    std::thread::sleep(Duration::from_millis(400));
    let idle = device_thread_cpu("spin0").unwrap() - before;
    assert!(idle < Duration::from_millis(100), "an idle busy-polling device ran {idle:?} of 400 ms");
    let stopping = Instant::now();
    let (_, handle) = dev.split();
    handle.stop(Duration::from_secs(5)).unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(2), "stop took {:?}", stopping.elapsed());
}

/// A hot reload, an operator reset (the instance rebuilt, as after a
/// handler fault) and TMRs (LUN RESET; ABORT TASK of commands still
/// queued) arriving while writes are in flight: every command is answered
/// exactly once, the only failures are the unit attentions a reset owes
/// the initiator, and the disk holds every acknowledged write in arrival
/// order.
#[test]
fn reloads_resets_and_tmrs_with_writes_in_flight_lose_no_acknowledged_write() {
    use tcmu_wasm::device::{ReloadRequest, StatePolicy};
    use tcmu_wasm::ring::layout::tmr::{TYPE_ABORT_TASK, TYPE_LUN_RESET};
    use tcmu_wasm::sandbox::{DeviceSpec, HandlerCode, Limits, Runtime, SandboxedDevice};

    const DEADLINE: Duration = Duration::from_secs(30);
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(Some(dir.path().join("cache"))).unwrap();
    let a = HandlerCode::load(&runtime, &tcmu_wasm::handlers::built("file")).unwrap();
    let b = HandlerCode::load(&runtime, &tcmu_wasm::handlers::fixture("file-build-b")).unwrap();
    let path = dir.path().join("r.img");
    let backing = Arc::new(BackingFile::open(&path, DISK, false).unwrap());
    let spec = DeviceSpec { io: uring(), ..DeviceSpec::new("fly1", "serial=fly1", Some(backing), Limits::default()) };
    let code = a.clone();
    let mut dev = SimDevice::start(sim(), "fly1", move || -> anyhow::Result<Box<dyn Backend>> {
        Ok(Box::new(SandboxedDevice::open(code, spec)?))
    })
    .expect("device starts");

    // Every write in arrival order; its status once answered; which write
    // holds each command id now (the simulator reuses an id once answered).
    let mut writes: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut status: Vec<Option<SimCompletion>> = Vec::new();
    let mut holder: HashMap<u16, usize> = HashMap::new();
    let absorb =
        |done: Vec<SimCompletion>, holder: &mut HashMap<u16, usize>, status: &mut Vec<Option<SimCompletion>>| {
            for c in done {
                let write = holder.remove(&c.cmd_id).expect("a completion for a command in flight");
                assert!(status[write].replace(c).is_none(), "write {write} answered twice");
            }
        };
    let mut resets = 0;
    for round in 0..12u32 {
        let mut ids = Vec::new();
        for i in 0..24u32 {
            let lba = u64::from((i * 37 + round * 11) % 200);
            let blocks = 1 + (i + round) % 16;
            let data = pattern(blocks as usize * SECTOR, (round * 31 + i) as u8);
            let write = writes.len();
            writes.push((lba as usize * SECTOR, data));
            status.push(None);
            let id = loop {
                match dev.kernel.submit(&rw16(true, lba, blocks), &writes[write].1, 0) {
                    Ok(id) => break id,
                    Err(SimError::RingFull | SimError::DataAreaFull) => {
                        let done = dev.kernel.wait(Duration::from_millis(200)).unwrap();
                        absorb(done, &mut holder, &mut status);
                    }
                    Err(e) => panic!("submit: {e}"),
                }
            };
            assert!(holder.insert(id, write).is_none(), "id {id} reused while in flight");
            ids.push(id);
        }
        // With the burst still queued behind the device thread:
        match round % 4 {
            0 => {
                let code = if round % 8 == 0 { b.clone() } else { a.clone() };
                dev.handle().reload(ReloadRequest { code, state: StatePolicy::Require }, DEADLINE).unwrap();
            }
            1 => {
                dev.handle().reset(DEADLINE).unwrap();
                resets += 1;
            }
            2 => {
                dev.kernel.submit_tmr(TYPE_LUN_RESET, &[]).unwrap();
                resets += 1;
            }
            _ => dev.kernel.submit_tmr(TYPE_ABORT_TASK, &ids[ids.len() - 3..]).unwrap(),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !holder.is_empty() {
        assert!(Instant::now() < deadline, "{} writes never answered", holder.len());
        let done = dev.kernel.wait(Duration::from_millis(200)).unwrap();
        absorb(done, &mut holder, &mut status);
    }
    assert_eq!(dev.kernel.outstanding(), 0);
    let mut model = vec![0u8; DISK as usize];
    let mut failed = 0;
    for ((at, data), answer) in writes.iter().zip(&status) {
        let answer = answer.as_ref().expect("every write answered");
        if answer.status == 0 {
            model[*at..*at + data.len()].copy_from_slice(data);
        } else {
            // A reset owes the initiator one UNIT ATTENTION; nothing else fails.
            assert_eq!(answer.sense.get(2).map(|k| k & 0xf), Some(6), "only unit attentions: {:02x?}", answer.sense);
            failed += 1;
        }
    }
    assert!(failed <= resets, "{failed} writes failed, more than the {resets} resets explain");
    dev.stop().unwrap();
    assert!(std::fs::read(&path).unwrap() == model, "the disk lost or reordered an acknowledged write");
}
