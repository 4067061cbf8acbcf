//! The changer under test: the target, the element layout its page 1Dh
//! describes, the element status as it reports it, moves, and putting the
//! library back as it was.

use super::ChangerParams;
use super::status::{Report, kind, read_element_status};
use crate::common::{self, Lun, Settle};
use crate::expect::{be, ensure};
use crate::target::ScsiTarget;

/// Element address assignment mode page.
pub(crate) const ELEMENT_ADDRESS_ASSIGNMENT: u8 = 0x1D;
/// Allocation length mtx uses for page 1Dh.
pub(crate) const MTX_ASSIGNMENT_ALLOC: u8 = 136;
/// Room for a whole report.
pub(crate) const REPORT_ALLOC: u32 = 0xFFFF;

/// Consecutive element addresses of one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) first: u16,
    pub(crate) count: u16,
}

impl Range {
    /// The `index`th address.
    pub(crate) fn at(self, index: u16) -> u16 {
        self.first + index
    }

    pub(crate) fn contains(self, address: u16) -> bool {
        address >= self.first && u32::from(address) < u32::from(self.first) + u32::from(self.count)
    }

    /// One past the last address.
    pub(crate) fn end(self) -> u32 {
        u32::from(self.first) + u32::from(self.count)
    }

    pub(crate) fn addresses(self) -> impl Iterator<Item = u16> {
        (0..self.count).map(move |i| self.first + i)
    }
}

/// What page 1Dh says, per element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) transport: Range,
    pub(crate) storage: Range,
    pub(crate) mail: Range,
    pub(crate) drives: Range,
}

impl Layout {
    /// Parse the parameters of page 1Dh (the page from its code byte on).
    pub(crate) fn parse(page: &[u8]) -> Result<Self, String> {
        ensure!(page.len() >= 20, "page 1Dh is {} bytes, SMC-3 defines 20", page.len());
        ensure!(page[1] == 0x12, "page 1Dh PAGE LENGTH 0x{:02X}, expected 12h", page[1]);
        let range = |at: usize| -> Result<Range, String> {
            Ok(Range { first: be(page, at..at + 2)? as u16, count: be(page, at + 2..at + 4)? as u16 })
        };
        Ok(Self { transport: range(2)?, storage: range(6)?, mail: range(10)?, drives: range(14)? })
    }

    /// The ranges with their type codes.
    pub(crate) fn by_type(&self) -> [(u8, Range); 4] {
        [
            (kind::TRANSPORT, self.transport),
            (kind::STORAGE, self.storage),
            (kind::IMPORT_EXPORT, self.mail),
            (kind::DATA_TRANSFER, self.drives),
        ]
    }

    /// The range of an element type.
    pub(crate) fn of(&self, element_type: u8) -> Range {
        self.by_type().into_iter().find(|(t, _)| *t == element_type).map_or(Range { first: 0, count: 0 }, |(_, r)| r)
    }

    /// How many elements there are.
    pub(crate) fn total(&self) -> usize {
        self.by_type().iter().map(|(_, r)| usize::from(r.count)).sum()
    }

    /// The type of the element at `address`, if any.
    pub(crate) fn type_of(&self, address: u16) -> Option<u8> {
        self.by_type().into_iter().find(|(_, r)| r.contains(address)).map(|(t, _)| t)
    }

    /// An address no element has.
    pub(crate) fn unused_address(&self) -> u16 {
        let highest = self.by_type().iter().filter(|(_, r)| r.count > 0).map(|(_, r)| r.end()).max().unwrap_or(1);
        if highest <= 0xFFFF { highest as u16 } else { (1..).find(|&a| self.type_of(a).is_none()).unwrap_or(0) }
    }
}

/// The changer under test.
pub(crate) struct Robot<'t> {
    target: &'t mut dyn ScsiTarget,
    pub(crate) params: ChangerParams,
    /// From page 1Dh, once read.
    pub(crate) layout: Layout,
}

impl Lun for Robot<'_> {
    fn target(&mut self) -> &mut dyn ScsiTarget {
        self.target
    }
}

impl<'t> Robot<'t> {
    pub(crate) fn new(target: &'t mut dyn ScsiTarget, params: ChangerParams) -> Self {
        let empty = Range { first: 0, count: 0 };
        Self { target, params, layout: Layout { transport: empty, storage: empty, mail: empty, drives: empty } }
    }

    /// Page 1Dh as mtx reads it: MODE SENSE(6), DBD, 136 bytes.
    pub(crate) fn assignment_page(&mut self) -> Result<Vec<u8>, String> {
        let cdb = common::mode_sense6(0x08, ELEMENT_ADDRESS_ASSIGNMENT, MTX_ASSIGNMENT_ALLOC);
        let data = self.execute_good(&cdb, &[], MTX_ASSIGNMENT_ALLOC.into())?;
        let pages = common::mode_pages(&data, false)?;
        let (_, page) = pages
            .into_iter()
            .find(|(code, _)| *code == ELEMENT_ADDRESS_ASSIGNMENT)
            .ok_or("MODE SENSE of page 1Dh returned no page 1Dh")?;
        Ok(page)
    }

    /// Read the layout from page 1Dh; it must have the counts the
    /// operator configured and ranges that do not overlap.
    pub(crate) fn learn_layout(&mut self) -> Result<(), String> {
        let layout = Layout::parse(&self.assignment_page()?)?;
        let p = &self.params;
        for (what, range, want) in [
            ("storage", layout.storage, p.slots),
            ("import/export", layout.mail, p.mail_slots),
            ("data transfer", layout.drives, p.drives),
        ] {
            ensure!(range.count == want, "page 1Dh: {} {what} elements, the library has {want}", range.count);
        }
        ensure!(layout.transport.count >= 1, "page 1Dh: no medium transport element");
        let ranges = layout.by_type();
        for (i, (a_type, a)) in ranges.iter().enumerate() {
            ensure!(a.end() <= 0x1_0000, "page 1Dh: {} elements run past address FFFFh", kind::name(*a_type));
            for (b_type, b) in &ranges[i + 1..] {
                let overlap =
                    a.count > 0 && b.count > 0 && u32::from(a.first) < b.end() && u32::from(b.first) < a.end();
                ensure!(!overlap, "page 1Dh: {} and {} addresses overlap", kind::name(*a_type), kind::name(*b_type));
            }
        }
        self.layout = layout;
        Ok(())
    }

    /// The whole report, every type, with volume tags (and DVCID if asked).
    pub(crate) fn status(&mut self, dvcid: bool) -> Result<Report, String> {
        let cdb = read_element_status(kind::ALL, true, 0, 0xFFFF, dvcid, REPORT_ALLOC);
        let data = self.execute_good(&cdb, &[], REPORT_ALLOC)?;
        Report::parse(&data)
    }

    /// MOVE MEDIUM with the default transport, which must end GOOD.
    pub(crate) fn move_medium(&mut self, source: u16, destination: u16) -> Result<(), String> {
        self.execute_good(&move_medium(0, source, destination), &[], 0)
            .map(drop)
            .map_err(|e| format!("moving {source:04X}h to {destination:04X}h: {e}"))
    }

    /// The storage address of the `index`th configured cartridge, and its barcode.
    pub(crate) fn cartridge(&self, index: usize) -> (u16, String) {
        let (barcode, slot) = &self.params.cartridges[index];
        (self.layout.storage.at(*slot), barcode.clone())
    }

    /// Storage slots that start empty.
    pub(crate) fn empty_slots(&self) -> Vec<u16> {
        let homes: Vec<u16> = self.params.cartridges.iter().map(|(_, s)| self.layout.storage.at(*s)).collect();
        self.layout.storage.addresses().filter(|a| !homes.contains(a)).collect()
    }

    /// Where the cartridges are at the start: (address, barcode), in
    /// address order.
    pub(crate) fn initial_placement(&self) -> Vec<(u16, String)> {
        let mut placed: Vec<(u16, String)> = (0..self.params.cartridges.len()).map(|i| self.cartridge(i)).collect();
        placed.sort();
        placed
    }

    /// Read the element status: every cartridge must be where it started.
    pub(crate) fn expect_unmoved(&mut self) -> Result<(), String> {
        let report = self.status(false)?;
        self.expect_initial(&report)
    }

    /// Compare the report with where the cartridges started.
    pub(crate) fn expect_initial(&self, report: &Report) -> Result<(), String> {
        let mut now = report.placement()?;
        now.sort();
        let want = self.initial_placement();
        ensure!(now == want, "cartridges at {}, expected {}", show(&now), show(&want));
        Ok(())
    }
}

/// A placement for messages: `0400h CHK001, 0401h CHK002`.
pub(crate) fn show(placed: &[(u16, String)]) -> String {
    if placed.is_empty() {
        return "nowhere".into();
    }
    placed.iter().map(|(a, b)| format!("{a:04X}h {b}")).collect::<Vec<_>>().join(", ")
}

impl Settle for Robot<'_> {
    /// Allow removal, then move every cartridge back to its slot.
    fn settle(&mut self) -> Result<(), String> {
        self.execute_good(&prevent_allow(false), &[], 0)?;
        let want = self.initial_placement();
        for _ in 0..=2 * want.len() {
            let now = self.status(false)?.placement()?;
            let Some((home, barcode)) = want.iter().find(|w| !now.contains(w)) else {
                ensure!(now.len() == want.len(), "cartridges at {}, expected {}", show(&now), show(&want));
                return Ok(());
            };
            let at = now.iter().find(|(_, b)| b == barcode).map(|(a, _)| *a);
            let Some(at) = at else { return Err(format!("cartridge {barcode} is nowhere: {}", show(&now))) };
            if let Some((_, squatter)) = now.iter().find(|(a, _)| a == home) {
                let homes: Vec<u16> = want.iter().map(|(a, _)| *a).collect();
                let free = self
                    .layout
                    .storage
                    .addresses()
                    .find(|a| !homes.contains(a) && !now.iter().any(|(b, _)| b == a))
                    .ok_or_else(|| format!("no free slot to move {squatter} out of {home:04X}h"))?;
                self.move_medium(*home, free)?;
                continue;
            }
            self.move_medium(at, *home)?;
        }
        Err("the cartridges did not go back in their slots".into())
    }
}

/// MOVE MEDIUM.
pub(crate) fn move_medium(transport: u16, source: u16, destination: u16) -> Vec<u8> {
    let [t1, t0] = transport.to_be_bytes();
    let [s1, s0] = source.to_be_bytes();
    let [d1, d0] = destination.to_be_bytes();
    vec![0xA5, 0, t1, t0, s1, s0, d1, d0, 0, 0, 0, 0]
}

/// EXCHANGE MEDIUM with the default transport.
pub(crate) fn exchange_medium(source: u16, first: u16, second: u16) -> Vec<u8> {
    let [s1, s0] = source.to_be_bytes();
    let [f1, f0] = first.to_be_bytes();
    let [n1, n0] = second.to_be_bytes();
    vec![0xA6, 0, 0, 0, s1, s0, f1, f0, n1, n0, 0, 0]
}

/// POSITION TO ELEMENT with the default transport.
pub(crate) fn position_to_element(destination: u16) -> Vec<u8> {
    let [d1, d0] = destination.to_be_bytes();
    vec![0x2B, 0, 0, 0, d1, d0, 0, 0, 0, 0]
}

/// PREVENT ALLOW MEDIUM REMOVAL.
pub(crate) fn prevent_allow(prevent: bool) -> Vec<u8> {
    vec![0x1E, 0, 0, 0, u8::from(prevent), 0]
}
