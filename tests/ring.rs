//! The ring engine driven by the kernel simulator: framing, validation,
//! completions, TMRs, and properties over random command streams.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use proptest::prelude::*;
use tcmu_wasm::device::Backend;
use tcmu_wasm::ring::layout::{self, mailbox, op, tmr};
use tcmu_wasm::ring::{Ring, RingError, TmrKind};
use tcmu_wasm::sim::{Malformation, SimConfig, SimDevice, SimError, SimKernel};
use tcmu_wasm_tests::{RamDisk, SECTOR, rw16};

const DISK: usize = 1 << 20;

fn start(cfg: SimConfig, disk: RamDisk) -> SimDevice {
    SimDevice::start(cfg, "ram0", move || Ok(Box::new(disk) as Box<dyn Backend>)).expect("device starts")
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn data_round_trips_over_scattered_blocks() {
    let disk = RamDisk::new(DISK);
    let mut dev = start(SimConfig::default(), disk.clone());
    let data = pattern(64 * 1024, 7);
    let w = dev.execute(&rw16(true, 10, 128), &data, 0).unwrap();
    assert_eq!((w.status, w.read_len), (0, None), "a write reports no residual");
    assert_eq!(&disk.data.lock().unwrap()[10 * 512..10 * 512 + data.len()], &data[..]);
    let r = dev.execute(&rw16(false, 10, 128), &[], data.len() as u32).unwrap();
    assert_eq!(r.status, 0);
    assert_eq!(r.data_in, data);
    dev.stop().unwrap();
}

#[test]
fn short_data_in_is_reported_with_read_len() {
    let mut dev = start(SimConfig::default(), RamDisk::new(DISK));
    let inquiry = [0x12, 0, 0, 0, 255, 0];
    let c = dev.execute(&inquiry, &[], 255).unwrap();
    assert_eq!(c.read_len, Some(36));
    assert_eq!(c.data_in, (0..36u8).collect::<Vec<_>>());
    // A buffer exactly the reply's size is not short: no READ_LEN.
    let c = dev.execute(&inquiry, &[], 36).unwrap();
    assert_eq!(c.read_len, None);
    dev.stop().unwrap();
}

#[test]
fn read_len_is_not_used_without_the_capability() {
    let cfg = SimConfig { flags: layout::FLAG_CAP_TMR, ..SimConfig::default() };
    let mut dev = start(cfg, RamDisk::new(DISK));
    let c = dev.execute(&[0x12, 0, 0, 0, 255, 0], &[], 255).unwrap();
    assert_eq!(c.read_len, None);
    assert_eq!(c.data_in.len(), 255, "the kernel gathers the whole buffer");
    dev.stop().unwrap();
}

#[test]
fn ring_wraps_with_pad_entries() {
    // A ring of 2 KiB holds ~15 small entries: 500 commands wrap it many times.
    let cfg = SimConfig { ring_size: 2048, ..SimConfig::default() };
    let disk = RamDisk::new(DISK);
    let mut dev = start(cfg, disk.clone());
    for i in 0..500u64 {
        let data = pattern(512 * (1 + (i % 3) as usize), i as u8);
        let lba = (i * 7) % 1000;
        let w = dev.execute(&rw16(true, lba, data.len() as u32 / 512), &data, 0).unwrap();
        assert_eq!(w.status, 0);
        let r = dev.execute(&rw16(false, lba, data.len() as u32 / 512), &[], data.len() as u32).unwrap();
        assert_eq!(r.data_in, data, "command {i}");
    }
    dev.stop().unwrap();
}

#[test]
fn malformed_entries_are_failed_and_the_device_keeps_serving() {
    let mut dev = start(SimConfig::default(), RamDisk::new(DISK));
    for kind in [
        Malformation::IovecInRing,
        Malformation::IovecPastEnd,
        Malformation::IovecOverflow,
        Malformation::CdbOutOfRegion,
        Malformation::TooManyIovecs,
    ] {
        let id = dev.kernel.submit_malformed(kind).unwrap();
        let c = wait_for(&mut dev.kernel, id);
        assert_eq!(c.status, 0x02, "{kind:?}");
        assert_eq!((c.sense[2] & 0x0f, c.sense[12], c.sense[13]), (0x04, 0x44, 0x00), "{kind:?}");
        let tur = dev.execute(&[0; 6], &[], 0).unwrap();
        assert_eq!(tur.status, 0, "device still serves after {kind:?}");
    }
    let id = dev.kernel.submit_malformed(Malformation::UnknownOpcode).unwrap();
    let c = wait_for(&mut dev.kernel, id);
    assert!(c.unknown_op, "unknown ring opcode is flagged UNKNOWN_OP");
    assert_eq!(dev.execute(&[0; 6], &[], 0).unwrap().status, 0);
    assert_eq!(dev.handle().metrics().snapshot().invalid_entries, 5);
    dev.stop().unwrap();
}

fn wait_for(kernel: &mut SimKernel, id: u16) -> tcmu_wasm::sim::SimCompletion {
    for _ in 0..200 {
        if let Some(c) = kernel.wait(Duration::from_millis(50)).unwrap().into_iter().find(|c| c.cmd_id == id) {
            return c;
        }
    }
    panic!("command {id} never completed");
}

#[test]
fn tmrs_reach_the_backend_and_are_acknowledged() {
    let disk = RamDisk::new(DISK);
    let mut dev = start(SimConfig::default(), disk.clone());
    dev.kernel.submit_tmr(tmr::TYPE_ABORT_TASK, &[3, 4]).unwrap();
    dev.kernel.submit_tmr(tmr::TYPE_LUN_RESET, &[]).unwrap();
    dev.kernel.submit_tmr(99, &[]).unwrap();
    // The TUR behind them completes only once all three were consumed.
    assert_eq!(dev.execute(&[0; 6], &[], 0).unwrap().status, 0);
    assert_eq!(*disk.tmrs.lock().unwrap(), vec![TmrKind::AbortTask, TmrKind::LunReset, TmrKind::Unknown(99)]);
    assert_eq!(dev.kernel.outstanding(), 0);
    dev.stop().unwrap();
}

#[test]
fn a_corrupt_entry_length_stops_only_that_device_without_panicking() {
    let mut dev = start(SimConfig::default(), RamDisk::new(DISK));
    let mut other = start(SimConfig::default(), RamDisk::new(DISK));
    // An entry claiming length 0: the next entry cannot be found.
    let mut raw = [0u8; 8];
    raw[..4].copy_from_slice(&op::CMD.to_le_bytes());
    dev.kernel.inject_raw(&raw).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(other.execute(&[0; 6], &[], 0).unwrap().status, 0, "the other device keeps serving");
    let err = dev.stop().expect_err("the device stopped on a corrupt ring");
    assert!(format!("{err:#}").contains("corrupt ring"), "{err:#}");
    other.stop().unwrap();
}

#[test]
fn attach_rejects_bad_mailboxes() {
    let cases: [(&str, u64, u32); 4] = [
        ("version", mailbox::VERSION as u64, 1),
        ("cmdr_off overlapping the mailbox", mailbox::CMDR_OFF as u64, 64),
        ("ring past the region", mailbox::CMDR_SIZE as u64, u32::MAX - 7),
        ("tail outside the ring", mailbox::CMD_TAIL as u64, 1 << 30),
    ];
    for (what, offset, value) in cases {
        let kernel = SimKernel::new(SimConfig::default()).unwrap();
        let region = kernel.region();
        if offset == mailbox::VERSION as u64 {
            region.write_u16(offset, value as u16).unwrap();
        } else {
            region.write_u32(offset, value).unwrap();
        }
        assert!(matches!(Ring::attach(region), Err(RingError::BadMailbox(_))), "{what}");
    }
}

#[test]
fn a_restarted_daemon_resumes_at_the_mailbox_tail() {
    let disk = RamDisk::new(DISK);
    let mut kernel = SimKernel::new(SimConfig::default()).unwrap();
    // First daemon serves two commands, then goes away.
    {
        let mut ring = Ring::attach(kernel.region()).unwrap();
        let mut backend = disk.clone();
        kernel.submit(&[0; 6], &[], 0).unwrap();
        kernel.submit(&[0; 6], &[], 0).unwrap();
        for _ in 0..2 {
            let Some(tcmu_wasm::ring::Entry::Command(c)) = ring.next_entry().unwrap() else {
                panic!("expected a command")
            };
            let r = backend.handle(&c);
            ring.complete(c, &r).unwrap();
        }
        assert_eq!(kernel.reap().unwrap().len(), 2);
    }
    // A command queued while no daemon runs is served by the next one.
    let id = kernel.submit(&[0; 6], &[], 0).unwrap();
    let mut ring = Ring::attach(kernel.region()).unwrap();
    let Some(tcmu_wasm::ring::Entry::Command(c)) = ring.next_entry().unwrap() else { panic!("expected a command") };
    assert_eq!(c.cmd_id, id);
    let mut backend = disk;
    let r = backend.handle(&c);
    ring.complete(c, &r).unwrap();
    assert_eq!(kernel.reap().unwrap()[0].cmd_id, id);
}

#[derive(Debug, Clone)]
enum Op {
    Write { lba: u64, blocks: u32, seed: u8 },
    Read { lba: u64, blocks: u32 },
    Inquiry { room: u32 },
    Tmr,
    Malformed(Malformation),
    Reap,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let blocks = DISK as u64 / SECTOR;
    prop_oneof![
        4 => (0..blocks - 64, 1u32..64, any::<u8>()).prop_map(|(lba, blocks, seed)| Op::Write { lba, blocks, seed }),
        4 => (0..blocks - 64, 1u32..64).prop_map(|(lba, blocks)| Op::Read { lba, blocks }),
        1 => (1u32..300).prop_map(|room| Op::Inquiry { room }),
        1 => Just(Op::Tmr),
        1 => prop_oneof![
            Just(Malformation::IovecInRing),
            Just(Malformation::IovecPastEnd),
            Just(Malformation::IovecOverflow),
            Just(Malformation::CdbOutOfRegion),
            Just(Malformation::TooManyIovecs),
        ].prop_map(Op::Malformed),
        2 => Just(Op::Reap),
    ]
}

/// What a queued command must complete with.
#[derive(Debug)]
enum Expect {
    Good(Vec<u8>),
    Failed,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Every command completes exactly once, with the data a sequential
    /// model predicts; the simulator rejects any tail movement that is not
    /// a whole number of produced entries (tail never passes head).
    #[test]
    fn random_command_streams(ops in proptest::collection::vec(op_strategy(), 1..150), ring_kib in 2u32..24, seed in any::<u64>()) {
        let cfg = SimConfig { ring_size: ring_kib * 1024, data_blocks: 96, seed, ..SimConfig::default() };
        let disk = RamDisk::new(DISK);
        let mut dev = start(cfg, disk.clone());
        let mut model = vec![0u8; DISK];
        let mut expected: HashMap<u16, Expect> = HashMap::new();
        let mut order: VecDeque<u16> = VecDeque::new();

        let settle = |dev: &mut SimDevice, expected: &mut HashMap<u16, Expect>, order: &mut VecDeque<u16>, all: bool| -> Result<(), TestCaseError> {
            loop {
                // TMRs are outstanding in the simulator without being in `order`.
                let idle = dev.kernel.outstanding() == 0;
                if (order.is_empty() && (idle || !all)) || (!all && idle) { return Ok(()); }
                let got = dev.kernel.wait(Duration::from_millis(200)).map_err(|e| TestCaseError::fail(e.to_string()))?;
                for c in got {
                    let want = expected.remove(&c.cmd_id).ok_or_else(|| TestCaseError::fail(format!("id {} completed twice or never issued", c.cmd_id)))?;
                    prop_assert_eq!(order.pop_front(), Some(c.cmd_id), "completions come in ring order");
                    match want {
                        Expect::Good(data) => { prop_assert_eq!(c.status, 0); prop_assert_eq!(c.data_in, data); }
                        Expect::Failed => prop_assert_eq!(c.status, 2),
                    }
                }
                if !all { return Ok(()); }
            }
        };

        for op in ops {
            let submitted = loop {
                let r = match &op {
                    Op::Write { lba, blocks, seed } => {
                        let data = pattern(*blocks as usize * 512, *seed);
                        dev.kernel.submit(&rw16(true, *lba, *blocks), &data, 0).map(|id| {
                            let at = *lba as usize * 512;
                            model[at..at + data.len()].copy_from_slice(&data);
                            Some((id, Expect::Good(Vec::new())))
                        })
                    }
                    Op::Read { lba, blocks } => {
                        let len = *blocks as usize * 512;
                        dev.kernel.submit(&rw16(false, *lba, *blocks), &[], len as u32).map(|id| {
                            let at = *lba as usize * 512;
                            Some((id, Expect::Good(model[at..at + len].to_vec())))
                        })
                    }
                    Op::Inquiry { room } => dev.kernel.submit(&[0x12, 0, 0, 0, 255, 0], &[], *room)
                        .map(|id| Some((id, Expect::Good((0..36u8).take(*room as usize).collect())))),
                    Op::Tmr => dev.kernel.submit_tmr(tmr::TYPE_ABORT_TASK_SET, &[]).map(|_| None),
                    Op::Malformed(kind) => dev.kernel.submit_malformed(*kind).map(|id| Some((id, Expect::Failed))),
                    Op::Reap => { settle(&mut dev, &mut expected, &mut order, false)?; Ok(None) }
                };
                match r {
                    Ok(s) => break s,
                    Err(SimError::RingFull | SimError::DataAreaFull) => settle(&mut dev, &mut expected, &mut order, false)?,
                    Err(e) => return Err(TestCaseError::fail(e.to_string())),
                }
            };
            if let Some((id, want)) = submitted {
                prop_assert!(expected.insert(id, want).is_none(), "id {} reused while outstanding", id);
                order.push_back(id);
            }
        }
        settle(&mut dev, &mut expected, &mut order, true)?;
        prop_assert!(expected.is_empty());
        prop_assert_eq!(dev.kernel.outstanding(), 0);
        prop_assert_eq!(&*disk.data.lock().unwrap(), &model);
        dev.stop().map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

/// One step of a stream driven straight against [`Ring`], the way a device
/// with many commands in flight drives it.
#[derive(Debug, Clone)]
enum Step {
    /// The kernel queues a command whose data-in is `room` bytes.
    Submit { room: u32 },
    /// The kernel queues a TMR.
    Tmr,
    /// The kernel queues a PAD-forcing or malformed entry.
    Malformed,
    /// User space takes every entry the kernel produced.
    Take,
    /// User space completes the outstanding command `pick` (modulo their count).
    Complete { pick: usize },
    /// The kernel collects what user space completed.
    Reap,
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1u32..9000).prop_map(|room| Step::Submit { room }),
        1 => Just(Step::Tmr),
        1 => Just(Step::Malformed),
        3 => Just(Step::Take),
        5 => any::<usize>().prop_map(|pick| Step::Complete { pick }),
        2 => Just(Step::Reap),
    ]
}

/// The data-in a command `id` of `room` bytes is answered with.
fn answer_for(id: u16, room: u32) -> Vec<u8> {
    (0..room).map(|i| (i as u8).wrapping_mul(7) ^ id as u8 ^ (id >> 8) as u8).collect()
}

/// Answer a taken command (or fail a malformed entry) and note its id.
fn answer(ring: &mut Ring, entry: tcmu_wasm::ring::Entry, completed: &mut VecDeque<u16>) -> Result<(), TestCaseError> {
    let fail = |e: RingError| TestCaseError::fail(e.to_string());
    match entry {
        tcmu_wasm::ring::Entry::Command(cmd) => {
            let room = cmd.data.len();
            cmd.data.write(0, &answer_for(cmd.cmd_id, room)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            completed.push_back(cmd.cmd_id);
            let response = tcmu_wasm::ring::Response { data_in_len: Some(room), ..tcmu_wasm::ring::Response::good() };
            ring.complete(cmd, &response).map_err(fail)
        }
        tcmu_wasm::ring::Entry::Invalid(bad) => {
            completed.push_back(bad.cmd_id);
            ring.complete_invalid(bad).map_err(fail)
        }
        tcmu_wasm::ring::Entry::Tmr(_) => unreachable!("TMRs are not kept"),
    }
}

/// Complete any outstanding command, in the order `steps` choose, on a
/// ring with or without `CAP_OOOC`; check what the kernel sees.
fn out_of_order_stream(steps: Vec<Step>, ring_kib: u32, oooc: bool) -> Result<(), TestCaseError> {
    let flags = layout::FLAG_CAP_READ_LEN | layout::FLAG_CAP_TMR | if oooc { layout::FLAG_CAP_OOOC } else { 0 };
    let cfg = SimConfig { ring_size: ring_kib * 1024, data_blocks: 64, flags, ..SimConfig::default() };
    let mut kernel = SimKernel::new(cfg).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut ring = Ring::attach(kernel.region()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let fail = |e: &dyn std::fmt::Display| TestCaseError::fail(e.to_string());
    // What the kernel has queued and not collected: id -> expected data-in
    // (None for malformed entries, which must fail).
    let mut expected: HashMap<u16, Option<Vec<u8>>> = HashMap::new();
    let mut submitted: VecDeque<u16> = VecDeque::new();
    let mut taken: Vec<tcmu_wasm::ring::Entry> = Vec::new();
    // The order user space completed commands in.
    let mut completed: VecDeque<u16> = VecDeque::new();

    let reap = |kernel: &mut SimKernel,
                expected: &mut HashMap<u16, Option<Vec<u8>>>,
                submitted: &mut VecDeque<u16>,
                completed: &mut VecDeque<u16>|
     -> Result<(), TestCaseError> {
        for c in kernel.reap().map_err(|e| fail(&e))? {
            let want = expected.remove(&c.cmd_id);
            prop_assert!(want.is_some(), "command {} completed twice or never queued", c.cmd_id);
            match want.unwrap() {
                Some(data) => {
                    prop_assert_eq!(c.status, 0);
                    prop_assert_eq!(&c.data_in, &data, "data-in of {}", c.cmd_id);
                }
                None => prop_assert_eq!(c.status, 2),
            }
            // Out of order the kernel sees completions as they were made;
            // in order, as the commands were queued.
            let order = if oooc { &mut *completed } else { &mut *submitted };
            prop_assert_eq!(order.pop_front(), Some(c.cmd_id));
            if oooc {
                submitted.retain(|&id| id != c.cmd_id);
            } else {
                completed.retain(|&id| id != c.cmd_id);
            }
        }
        Ok(())
    };

    for step in steps {
        match step {
            Step::Submit { room } => match kernel.submit(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[], room) {
                Ok(id) => {
                    expected.insert(id, Some(answer_for(id, room)));
                    submitted.push_back(id);
                }
                Err(SimError::RingFull | SimError::DataAreaFull) => {}
                Err(e) => return Err(fail(&e)),
            },
            Step::Tmr => match kernel.submit_tmr(tmr::TYPE_ABORT_TASK, &[1]) {
                Ok(()) | Err(SimError::RingFull) => {}
                Err(e) => return Err(fail(&e)),
            },
            Step::Malformed => match kernel.submit_malformed(Malformation::IovecPastEnd) {
                Ok(id) => {
                    expected.insert(id, None);
                    submitted.push_back(id);
                }
                Err(SimError::RingFull) => {}
                Err(e) => return Err(fail(&e)),
            },
            Step::Take => {
                while let Some(entry) = ring.next_entry().map_err(|e| fail(&e))? {
                    if !matches!(entry, tcmu_wasm::ring::Entry::Tmr(_)) {
                        taken.push(entry);
                    }
                }
                prop_assert_eq!(ring.outstanding(), taken.len());
            }
            Step::Complete { pick } if !taken.is_empty() => {
                answer(&mut ring, taken.swap_remove(pick % taken.len()), &mut completed)?;
                prop_assert_eq!(ring.outstanding(), taken.len());
            }
            Step::Complete { .. } => {}
            Step::Reap => reap(&mut kernel, &mut expected, &mut submitted, &mut completed)?,
        }
    }
    // Drain: take everything, complete it all, collect.
    while let Some(entry) = ring.next_entry().map_err(|e| fail(&e))? {
        if !matches!(entry, tcmu_wasm::ring::Entry::Tmr(_)) {
            taken.push(entry);
        }
    }
    while let Some(entry) = taken.pop() {
        answer(&mut ring, entry, &mut completed)?;
    }
    reap(&mut kernel, &mut expected, &mut submitted, &mut completed)?;
    prop_assert!(expected.is_empty(), "never completed: {:?}", expected.keys().collect::<Vec<_>>());
    prop_assert_eq!(kernel.outstanding(), 0, "the tail stopped short of the head");
    prop_assert!(!ring.has_outstanding());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// With `CAP_OOOC`, completions in any order reach the kernel at once
    /// and in that order, each exactly once with its own data; the tail
    /// never passes the head (the simulator checks every tail movement
    /// against the entries it produced, and every `cmd_id` against the
    /// commands outstanding).
    #[test]
    fn completions_in_any_order_with_oooc(steps in proptest::collection::vec(step_strategy(), 1..200), ring_kib in 1u32..16) {
        out_of_order_stream(steps, ring_kib, true)?;
    }

    /// Without `CAP_OOOC`, the same streams reach the kernel in ring order.
    #[test]
    fn completions_in_any_order_without_oooc(steps in proptest::collection::vec(step_strategy(), 1..200), ring_kib in 1u32..16) {
        out_of_order_stream(steps, ring_kib, false)?;
    }
}

#[test]
fn a_completion_cannot_be_delivered_twice_or_to_another_ring() {
    let mut kernel = SimKernel::new(SimConfig::default()).unwrap();
    let mut other = SimKernel::new(SimConfig::default()).unwrap();
    let mut ring = Ring::attach(kernel.region()).unwrap();
    let mut other_ring = Ring::attach(other.region()).unwrap();
    kernel.submit(&[0; 6], &[], 0).unwrap();
    other.submit(&[0; 6], &[], 0).unwrap();
    other.submit(&[0; 6], &[], 0).unwrap();
    let Some(tcmu_wasm::ring::Entry::Command(mine)) = ring.next_entry().unwrap() else { panic!("a command") };
    let Some(tcmu_wasm::ring::Entry::Command(_first)) = other_ring.next_entry().unwrap() else { panic!("a command") };
    let Some(tcmu_wasm::ring::Entry::Command(theirs)) = other_ring.next_entry().unwrap() else { panic!("a command") };
    // The other ring's second entry has a sequence number this ring never handed out.
    assert!(matches!(ring.complete(theirs, &tcmu_wasm::ring::Response::good()), Err(RingError::NotOutstanding { .. })));
    ring.complete(mine, &tcmu_wasm::ring::Response::good()).unwrap();
    assert_eq!(kernel.reap().unwrap().len(), 1);
}
