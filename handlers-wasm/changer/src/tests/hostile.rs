//! No CDB makes the changer panic: every opcode, every length up to 16
//! bytes, zeroes, ones and random bytes, with random data-out and buffers,
//! over a library, an empty library and none.

use super::*;

/// xorshift64*: reproducible noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Addresses worth aiming at: real elements, their neighbours, the ends.
const AIMS: [u16; 8] = [0, DRIVE, DRIVE + 1, PICKER, MAIL, SLOT, SLOT + 5, 0xffff];

fn rigs() -> Vec<Rig> {
    let detached = Rig { changer: open(""), library: FakeLibrary::default() };
    let empty = Rig::with_library(FakeLibrary::default());
    vec![Rig::new(), detached, empty]
}

#[test]
fn every_opcode_with_short_and_random_cdbs() {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    for mut rig in rigs() {
        for opcode in 0..=255u8 {
            for len in 0..=16 {
                for fill in [0x00, 0xff, 0x5a] {
                    let mut cdb = vec![fill; len];
                    if let Some(first) = cdb.first_mut() {
                        *first = opcode;
                    }
                    let outcome = rig.run(&cdb, &[], 255);
                    assert!(outcome.completion.sense.len() <= 96);
                }
                for _ in 0..4 {
                    let mut cdb = noise.bytes(len);
                    if let Some(first) = cdb.first_mut() {
                        *first = opcode;
                    }
                    // Element address fields aimed at real elements now and then.
                    if len >= 8 && noise.next().is_multiple_of(2) {
                        for at in [2, 4, 6] {
                            let aim = AIMS[(noise.next() % AIMS.len() as u64) as usize];
                            cdb[at..at + 2].copy_from_slice(&aim.to_be_bytes());
                        }
                    }
                    let data_out = {
                        let len = noise.below(64) as usize;
                        noise.bytes(len)
                    };
                    let data_in_len = [0, 1, 8, 255, 4096][(noise.next() % 5) as usize];
                    let outcome = rig.run(&cdb, &data_out, data_in_len);
                    assert!(outcome.data_in.len() <= data_in_len as usize);
                }
            }
        }
        // Still a working changer afterwards.
        let inquiry = rig.run(&[0x12, 0, 0, 0, 36, 0], &[], 36);
        assert_eq!(inquiry.status(), STATUS_GOOD);
    }
}

#[test]
fn hostile_mode_select_parameter_lists() {
    let mut noise = Noise(42);
    let mut rig = Rig::new();
    for round in 0..2000 {
        let ten = round % 2 == 1;
        let mut list = {
            let len = noise.below(40) as usize;
            noise.bytes(len)
        };
        // Often a plausible header with a control page after it.
        if list.len() >= 12 && noise.next().is_multiple_of(2) {
            let header = if ten { 8 } else { 4 };
            list[..header].fill(0);
            list[header] = 0x0a;
            list[header + 1] = (noise.next() % 16) as u8;
        }
        let len = list.len() as u8;
        let cdb: Vec<u8> =
            if ten { vec![0x55, 0x10, 0, 0, 0, 0, 0, 0, len, 0] } else { vec![0x15, 0x10, 0, 0, len, 0] };
        rig.run(&cdb, &list, 0);
        // A parameter list length longer than the data-out.
        let cdb: Vec<u8> =
            if ten { vec![0x55, 0x10, 0, 0, 0, 0, 0, 0xff, 0xff, 0] } else { vec![0x15, 0x10, 0, 0, 255, 0] };
        rig.run(&cdb, &list, 0);
    }
}

#[test]
fn hostile_element_addresses_and_counts_in_read_element_status() {
    let mut noise = Noise(7);
    let mut rig = Rig::with_library(FakeLibrary::new(3, 2, 50, 30));
    for _ in 0..5000 {
        let mut cdb = noise.bytes(12);
        cdb[0] = 0xb8;
        cdb[1] &= 0x17; // valid element types most of the time
        let data_in_len = (noise.next() % 8192) as u32;
        let outcome = rig.run(&cdb, &[], data_in_len);
        if outcome.status() == STATUS_GOOD && outcome.data_in.len() >= 8 {
            let data = &outcome.data_in;
            let allocation = usize::from(cdb[7]) << 16 | usize::from(cdb[8]) << 8 | usize::from(cdb[9]);
            assert!(data.len() <= allocation.min(data_in_len as usize));
            // The header's counts stay consistent with what a full read would give.
            let full = rig.run(
                &{
                    let mut all = cdb.clone();
                    all[7..10].copy_from_slice(&[0x0f, 0xff, 0xff]);
                    all
                },
                &[],
                0x10_0000,
            );
            assert_eq!(full.data_in[..8], data[..8]);
            assert_eq!(full.data_in.len(), 8 + be24(&data[5..]));
        }
    }
}
