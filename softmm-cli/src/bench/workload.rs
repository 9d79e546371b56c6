//! The named workloads: what one thread sets up, what it does per timed operation, and
//! how it tears down. Each thread works in its own regions, disjoint from the others'.

use super::machine::{OpError, Thread};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const PAGE: u64 = 4 * KIB;

/// A benchmark row kind. `translate` is two rows, [`Workload::TranslateHit`] and
/// [`Workload::TranslateWalk`], told apart by [`Workload::case`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// First-touch write fault of each 4 KiB page of a 64 MiB region (then munmap,
    /// untimed).
    Fault4k,
    /// Produce a zeroed 4 KiB page (the physical floor of a fault).
    Zero4k,
    /// `mmap` + `munmap` of 16 KiB of anonymous memory, untouched.
    MmapMunmap,
    /// The same with one store to the first page in between.
    MmapTouchMunmap,
    /// `mprotect` the middle page of a faulted 64 KiB region read-only and back
    /// (split into three VMAs, merge back into one).
    MprotectSplitMerge,
    /// Store to a page, then `MADV_DONTNEED` it.
    Dontneed,
    /// Translate one mapped, faulted page again and again.
    TranslateHit,
    /// Translate a random page among the 16384 faulted pages of a 64 MiB region.
    TranslateWalk,
}

/// Every workload, in table order.
pub const ALL: [Workload; 8] = [
    Workload::Fault4k,
    Workload::Zero4k,
    Workload::MmapMunmap,
    Workload::MmapTouchMunmap,
    Workload::MprotectSplitMerge,
    Workload::Dontneed,
    Workload::TranslateHit,
    Workload::TranslateWalk,
];

/// The names accepted on the command line, in order.
pub const NAMES: [&str; 7] = [
    "fault4k",
    "zero4k",
    "mmap-munmap",
    "mmap-touch-munmap",
    "mprotect-split-merge",
    "dontneed",
    "translate",
];

/// Parse workload names (all when `names` is empty), keeping table order and dropping
/// duplicates. Errors name the first unknown workload.
pub fn parse_workloads(names: &[String]) -> Result<Vec<Workload>, String> {
    if names.is_empty() {
        return Ok(ALL.to_vec());
    }
    let mut out = Vec::new();
    for n in names {
        let matched: Vec<Workload> = ALL.iter().copied().filter(|w| w.name() == n).collect();
        if matched.is_empty() {
            return Err(format!(
                "unknown workload `{n}` (known: {})",
                NAMES.join(", ")
            ));
        }
        out.extend(matched);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// What one thread keeps between setup and teardown.
#[derive(Debug, Default)]
pub(crate) struct Region {
    addr: u64,
    len: u64,
    /// Addresses to visit, in order (`translate` walk).
    addrs: Vec<u64>,
}

impl Workload {
    /// The workload's name (the JSON `workload` field).
    pub fn name(self) -> &'static str {
        match self {
            Workload::Fault4k => "fault4k",
            Workload::Zero4k => "zero4k",
            Workload::MmapMunmap => "mmap-munmap",
            Workload::MmapTouchMunmap => "mmap-touch-munmap",
            Workload::MprotectSplitMerge => "mprotect-split-merge",
            Workload::Dontneed => "dontneed",
            Workload::TranslateHit | Workload::TranslateWalk => "translate",
        }
    }

    /// The case of a workload that has several rows (the JSON `case` field).
    pub fn case(self) -> Option<&'static str> {
        match self {
            Workload::TranslateHit => Some("hit"),
            Workload::TranslateWalk => Some("walk"),
            _ => None,
        }
    }

    /// `name` or `name/case`, for tables.
    pub fn label(self) -> String {
        match self.case() {
            Some(c) => format!("{}/{c}", self.name()),
            None => self.name().to_string(),
        }
    }

    /// Size of the region each thread sets up.
    fn region_len(self, quick: bool) -> u64 {
        let big = if quick { 4 * MIB } else { 64 * MIB };
        match self {
            Workload::Fault4k | Workload::TranslateWalk => big,
            Workload::MprotectSplitMerge | Workload::TranslateHit => 64 * KIB,
            Workload::Zero4k | Workload::Dontneed => PAGE,
            Workload::MmapMunmap | Workload::MmapTouchMunmap => 0,
        }
    }

    /// Timed operations per thread per run.
    pub(crate) fn ops(self, quick: bool) -> u64 {
        let full = match self {
            // One op per page of the region: a run faults the region once.
            Workload::Fault4k => return self.region_len(quick) / PAGE,
            Workload::Zero4k => 1 << 16,
            Workload::MmapMunmap | Workload::MmapTouchMunmap => 1 << 14,
            Workload::MprotectSplitMerge => 1 << 13,
            Workload::Dontneed => 1 << 14,
            Workload::TranslateHit | Workload::TranslateWalk => 1 << 20,
        };
        if quick { full / 64 } else { full }
    }

    /// Operations timed together as one sample (cheap operations are batched so the
    /// clock's own cost, about 20 ns, stays out of the result).
    pub(crate) fn batch(self) -> u64 {
        match self {
            Workload::TranslateHit | Workload::TranslateWalk => 64,
            Workload::Zero4k => 8,
            _ => 1,
        }
    }

    /// Untimed preparation of thread `index`'s region.
    pub(crate) fn setup<T: Thread>(
        self,
        t: &mut T,
        index: usize,
        quick: bool,
    ) -> Result<Region, OpError> {
        let len = self.region_len(quick);
        if len == 0 {
            return Ok(Region::default());
        }
        let addr = t.map(len)?;
        let mut r = Region {
            addr,
            len,
            addrs: Vec::new(),
        };
        match self {
            Workload::Zero4k | Workload::TranslateHit => t.touch(addr)?,
            Workload::MprotectSplitMerge | Workload::TranslateWalk => {
                for p in (addr..addr + len).step_by(PAGE as usize) {
                    t.touch(p)?;
                }
            }
            _ => {}
        }
        if self == Workload::TranslateWalk {
            let pages = len / PAGE;
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (index as u64 + 1);
            r.addrs = (0..pages.min(1 << 16))
                .map(|_| addr + xorshift(&mut x) % pages * PAGE)
                .collect();
        }
        Ok(r)
    }

    /// Timed operation number `i` (0-based, per thread).
    #[inline]
    pub(crate) fn op<T: Thread>(self, t: &mut T, r: &Region, i: u64) -> Result<(), OpError> {
        const SMALL: u64 = 16 * KIB;
        match self {
            Workload::Fault4k => t.touch(r.addr + i * PAGE),
            Workload::Zero4k => t.zero_frame(r.addr),
            Workload::MmapMunmap => {
                let a = t.map(SMALL)?;
                t.unmap(a, SMALL)
            }
            Workload::MmapTouchMunmap => {
                let a = t.map(SMALL)?;
                t.touch(a)?;
                t.unmap(a, SMALL)
            }
            Workload::MprotectSplitMerge => {
                let mid = r.addr + r.len / 2;
                t.protect(mid, PAGE, false)?;
                t.protect(mid, PAGE, true)
            }
            Workload::Dontneed => {
                t.touch(r.addr)?;
                t.dontneed(r.addr, PAGE)
            }
            Workload::TranslateHit => t.translate(r.addr),
            Workload::TranslateWalk => t.translate(r.addrs[(i % r.addrs.len() as u64) as usize]),
        }
    }

    /// Untimed teardown.
    pub(crate) fn teardown<T: Thread>(self, t: &mut T, r: Region) -> Result<(), OpError> {
        if r.len == 0 {
            return Ok(());
        }
        t.unmap(r.addr, r.len)
    }
}

/// Marsaglia's xorshift64: cheap, deterministic page choices.
fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_select_rows() {
        let all = parse_workloads(&[]).unwrap();
        assert_eq!(all, ALL);
        let t = parse_workloads(&["translate".into(), "fault4k".into()]).unwrap();
        assert_eq!(
            t,
            [
                Workload::Fault4k,
                Workload::TranslateHit,
                Workload::TranslateWalk
            ]
        );
        let e = parse_workloads(&["nope".into()]).unwrap_err();
        assert!(e.contains("unknown workload `nope`"), "{e}");
        for n in NAMES {
            assert!(parse_workloads(&[n.to_string()]).is_ok(), "{n}");
        }
    }

    #[test]
    fn sizes_fit_the_machine() {
        for w in ALL {
            for quick in [false, true] {
                assert!(w.ops(quick) > 0 && w.ops(quick) % w.batch() == 0, "{w:?}");
            }
        }
    }
}
