//! The named workloads: what one thread sets up, what it does per timed operation, and
//! how it tears down. Each thread works in its own regions, disjoint from the others'.
//!
//! Most workloads are [`Kind::PerThread`]: every thread runs the same loop (this file).
//! `fault-churn` pairs a faulting thread with a churning one (`churn.rs`); `vma-lookup`
//! and `mmap-at-scale` run one thread in an address space already holding many VMAs, and
//! `exit-many-vmas` times the teardown of such an address space (`scale.rs`); `shootdown`
//! times one thread's munmaps while other threads read the address space
//! (`shootdown.rs`).

use std::time::Duration;

use super::machine::{OpError, Thread};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
pub(crate) const PAGE: u64 = 4 * KIB;

/// VMA counts of `vma-lookup` and `mmap-at-scale`: 1k, 64k (decimal, so that the host's
/// default `vm.max_map_count` of 65530 holds it too) and 1M.
const SCALE_VMAS: [u64; 3] = [1_000, 64_000, 1_000_000];
/// The same for `--quick`.
const SCALE_VMAS_QUICK: [u64; 3] = [100, 1_000, 10_000];
/// VMA counts of `exit-many-vmas`: the most the host holds (about), and 1M.
const EXIT_VMAS: [u64; 2] = [64_000, 1_000_000];
/// The same for `--quick`.
const EXIT_VMAS_QUICK: [u64; 2] = [1_000, 10_000];
/// Thread counts of `shootdown`: the unmapping thread and 0, 1, 2 or 4 readers.
const SHOOTDOWN_THREADS: [usize; 4] = [1, 2, 3, 5];
/// Pages `zap` populates and then drops with one `MADV_DONTNEED` (2 MiB).
pub(crate) const ZAP_PAGES: u64 = 512;

/// How a workload's threads are organised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Every thread runs [`Workload::setup`], [`Workload::op`], [`Workload::teardown`]
    /// on its own region.
    PerThread,
    /// Two threads: thread 0 runs `fault4k`'s loop; thread 1 idles, keeps busy without
    /// touching the address space, or churns VMAs in a region of its own.
    Churn {
        /// What thread 1 does.
        neighbour: Neighbour,
    },
    /// One thread in an address space holding many VMAs (`scale.rs`).
    Scaled,
    /// One teardown of an address space holding many VMAs per run (`scale.rs`).
    Teardown,
    /// Thread 0 maps, writes and unmaps while the others read the address space
    /// (`shootdown.rs`); the thread count is 1 + the readers.
    Shootdown,
}

/// What thread 1 of `fault-churn` does while thread 0 faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Neighbour {
    /// Waits at the barrier.
    Idle,
    /// Allocates, writes and frees small heap blocks of its own in a loop: as busy as
    /// a churner, sharing nothing with thread 0 (the control: what a busy neighbour
    /// costs the faults on this machine, through shared caches, memory bandwidth or
    /// the hypervisor).
    Busy,
    /// `mmap(MAP_FIXED)` + `mprotect` + `munmap` in a loop in its own region of the
    /// same address space.
    Churn,
}

/// A benchmark row kind. `translate` is two rows, [`Workload::TranslateHit`] and
/// [`Workload::TranslateWalk`], told apart by [`Workload::case`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// First-touch write fault of each 4 KiB page of a 64 MiB region (then munmap,
    /// untimed).
    Fault4k,
    /// Produce a zeroed 4 KiB page (the physical floor of a fault), the same page
    /// again and again: it stays in cache.
    Zero4k,
    /// The same, a different page each time, as a fault gets: each op zeroes memory
    /// last written a whole 64 MiB region ago, which no cache holds.
    Zero4kCold,
    /// `mmap` + `munmap` of 16 KiB of anonymous memory, untouched.
    MmapMunmap,
    /// The same with one store to the first page in between.
    MmapTouchMunmap,
    /// `mprotect` the middle page of a faulted 64 KiB region read-only and back
    /// (split into three VMAs, merge back into one).
    MprotectSplitMerge,
    /// Store to a page, then `MADV_DONTNEED` it.
    Dontneed,
    /// `MADV_DONTNEED` of 2 MiB whose 512 pages were all written first (untimed); the
    /// row counts pages.
    Zap,
    /// Translate one mapped, faulted page again and again.
    TranslateHit,
    /// Translate a random page among the 16384 faulted pages of a 64 MiB region.
    TranslateWalk,
    /// Load an aligned 8-byte word of a faulted page (a TLB hit).
    AccessRead,
    /// Store an aligned 8-byte word of a faulted page (a TLB hit).
    AccessWrite,
    /// `munmap` of one written 4 KiB page that the other threads have read, while they
    /// keep reading a page of their own: a one-page TLB flush.
    ShootdownTargeted,
    /// The same with 34 written pages, one past the TLB flush ceiling (33 pages): the
    /// flush drops every translation of the other threads.
    ShootdownFull,
    /// `fault4k`'s loop in thread 0 while thread 1 idles (the baseline of
    /// [`Workload::FaultChurn`]).
    FaultChurnQuiet,
    /// `fault4k`'s loop in thread 0 while thread 1 keeps busy on private heap memory
    /// (the control of [`Workload::FaultChurn`]).
    FaultChurnBusy,
    /// `fault4k`'s loop in thread 0 while thread 1 maps, protects and unmaps 16 KiB
    /// again and again in a region of its own, in the same address space.
    FaultChurn,
    /// Find the VMA containing a random page among many VMAs.
    VmaLookup,
    /// Find the VMA containing one of 64 pages spread over the VMAs (a working set that
    /// stays in cache: the tree's logarithmic cost without the memory misses).
    VmaLookupHot,
    /// `mmap` + `munmap` of 4 KiB anonymous memory (not fixed) among many VMAs.
    MmapAtScale,
    /// Tear down an address space that holds many VMAs.
    ExitManyVmas,
}

/// Every workload, in table order.
pub const ALL: [Workload; 21] = [
    Workload::Fault4k,
    Workload::Zero4k,
    Workload::Zero4kCold,
    Workload::MmapMunmap,
    Workload::MmapTouchMunmap,
    Workload::MprotectSplitMerge,
    Workload::Dontneed,
    Workload::Zap,
    Workload::TranslateHit,
    Workload::TranslateWalk,
    Workload::AccessRead,
    Workload::AccessWrite,
    Workload::ShootdownTargeted,
    Workload::ShootdownFull,
    Workload::FaultChurnQuiet,
    Workload::FaultChurnBusy,
    Workload::FaultChurn,
    Workload::VmaLookup,
    Workload::VmaLookupHot,
    Workload::MmapAtScale,
    Workload::ExitManyVmas,
];

/// The names accepted on the command line, in order.
pub const NAMES: [&str; 14] = [
    "fault4k",
    "zero4k",
    "mmap-munmap",
    "mmap-touch-munmap",
    "mprotect-split-merge",
    "dontneed",
    "zap",
    "translate",
    "access",
    "shootdown",
    "fault-churn",
    "vma-lookup",
    "mmap-at-scale",
    "exit-many-vmas",
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
            Workload::Zero4k | Workload::Zero4kCold => "zero4k",
            Workload::MmapMunmap => "mmap-munmap",
            Workload::MmapTouchMunmap => "mmap-touch-munmap",
            Workload::MprotectSplitMerge => "mprotect-split-merge",
            Workload::Dontneed => "dontneed",
            Workload::Zap => "zap",
            Workload::TranslateHit | Workload::TranslateWalk => "translate",
            Workload::AccessRead | Workload::AccessWrite => "access",
            Workload::ShootdownTargeted | Workload::ShootdownFull => "shootdown",
            Workload::FaultChurnQuiet | Workload::FaultChurnBusy | Workload::FaultChurn => {
                "fault-churn"
            }
            Workload::VmaLookup | Workload::VmaLookupHot => "vma-lookup",
            Workload::MmapAtScale => "mmap-at-scale",
            Workload::ExitManyVmas => "exit-many-vmas",
        }
    }

    /// The case of a workload that has several rows (the JSON `case` field).
    pub fn case(self) -> Option<&'static str> {
        match self {
            Workload::TranslateHit => Some("hit"),
            Workload::Zero4k => Some("hot"),
            Workload::Zero4kCold => Some("cold"),
            Workload::TranslateWalk => Some("walk"),
            Workload::AccessRead => Some("read"),
            Workload::AccessWrite => Some("write"),
            Workload::ShootdownTargeted => Some("targeted"),
            Workload::ShootdownFull => Some("full"),
            Workload::FaultChurnQuiet => Some("quiet"),
            Workload::FaultChurnBusy => Some("busy"),
            Workload::FaultChurn => Some("churn"),
            Workload::VmaLookup => Some("random"),
            Workload::VmaLookupHot => Some("hot"),
            _ => None,
        }
    }

    /// How the workload's threads are organised.
    pub(crate) fn kind(self) -> Kind {
        match self {
            Workload::FaultChurnQuiet => Kind::Churn {
                neighbour: Neighbour::Idle,
            },
            Workload::FaultChurnBusy => Kind::Churn {
                neighbour: Neighbour::Busy,
            },
            Workload::FaultChurn => Kind::Churn {
                neighbour: Neighbour::Churn,
            },
            Workload::VmaLookup | Workload::VmaLookupHot | Workload::MmapAtScale => Kind::Scaled,
            Workload::ExitManyVmas => Kind::Teardown,
            Workload::ShootdownTargeted | Workload::ShootdownFull => Kind::Shootdown,
            _ => Kind::PerThread,
        }
    }

    /// The thread counts the workload runs at, given those asked for.
    pub(crate) fn threads(self, asked: &[usize]) -> Vec<usize> {
        match self.kind() {
            Kind::PerThread => asked.to_vec(),
            Kind::Churn { .. } => vec![2],
            Kind::Scaled | Kind::Teardown => vec![1],
            Kind::Shootdown => SHOOTDOWN_THREADS.to_vec(),
        }
    }

    /// The case of a row run with `threads` threads: [`Workload::case`], followed for
    /// `shootdown` by the number of readers (`targeted/2`: two threads besides the one
    /// that unmaps).
    pub fn case_at(self, threads: usize) -> Option<String> {
        let case = self.case()?;
        Some(match self.kind() {
            Kind::Shootdown => format!("{case}/{}", threads.saturating_sub(1)),
            _ => case.to_string(),
        })
    }

    /// The numbers of VMAs the workload runs with (empty: not a many-VMA workload).
    pub(crate) fn vma_counts(self, quick: bool) -> &'static [u64] {
        match (self.kind(), quick) {
            (Kind::Scaled, false) => &SCALE_VMAS,
            (Kind::Scaled, true) => &SCALE_VMAS_QUICK,
            (Kind::Teardown, false) => &EXIT_VMAS,
            (Kind::Teardown, true) => &EXIT_VMAS_QUICK,
            _ => &[],
        }
    }

    /// What the timed operation is, where softmm and the host do different things or
    /// the workload name does not say it all.
    pub(crate) fn op_label(self, host: bool) -> Option<&'static str> {
        Some(match (self, host) {
            (Workload::FaultChurnQuiet, _) => "first write to a 4 KiB page; thread 2 idle",
            (Workload::FaultChurnBusy, _) => {
                "first write to a 4 KiB page; thread 2: malloc, write, read and free 6 x 256 \
                 bytes of its own, in a loop (no memory-management call)"
            }
            (Workload::FaultChurn, _) => {
                "first write to a 4 KiB page; thread 2: mmap(MAP_FIXED) + mprotect + munmap \
                 of 16 KiB in its own region, in a loop"
            }
            (Workload::VmaLookup, false) => {
                "AddressSpace::find_vma (one RCU lookup) of a random page"
            }
            (Workload::VmaLookupHot, false) => {
                "AddressSpace::find_vma (one RCU lookup) of one of 64 pages spread over the VMAs"
            }
            (Workload::VmaLookup | Workload::VmaLookupHot, true) => {
                "msync(addr, 4096, MS_ASYNC): syscall + mmap_lock read + find_vma, nothing else"
            }
            (Workload::MmapAtScale, _) => "mmap 4 KiB (not fixed) + munmap",
            (Workload::AccessRead, false) => "Cpu::read_u64_le of an aligned word (TLB hit)",
            (Workload::AccessWrite, false) => "Cpu::write_u64_le of an aligned word (TLB hit)",
            (Workload::AccessRead, true) => "an 8-byte load of resident memory",
            (Workload::AccessWrite, true) => "an 8-byte store to resident memory",
            (Workload::Zap, _) => {
                "per page: madvise(MADV_DONTNEED) of 2 MiB whose 512 pages were written \
                 first (untimed)"
            }
            (Workload::ShootdownTargeted, _) => {
                "munmap of one written 4 KiB page each reader has read once (re-map, \
                 write and the readers' reads untimed); readers keep reading a page of \
                 their own, yielding every 64 reads"
            }
            (Workload::ShootdownFull, _) => {
                "per munmap: munmap of 34 written pages (past the 33-page flush ceiling), \
                 the first read once by each reader; otherwise as shootdown/targeted"
            }
            (Workload::ExitManyVmas, false) => {
                "per VMA: drop the last Arc<AddressSpace> + rcu::barrier() (deferred frees \
                 included)"
            }
            (Workload::ExitManyVmas, true) => {
                "per VMA: child's _exit to parent's waitpid return, less the same for a \
                 child without the VMAs"
            }
            _ => return None,
        })
    }

    /// A time after which a run stops early (once it has timed 8 batches), for
    /// operations whose cost grows with the VMA count.
    pub(crate) fn budget(self, quick: bool) -> Option<Duration> {
        match self.kind() {
            Kind::Scaled => Some(Duration::from_millis(if quick { 10 } else { 100 })),
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
            Workload::Fault4k | Workload::Zero4kCold | Workload::TranslateWalk => big,
            // Thread 0 of fault-churn runs fault4k; the others set up nothing here.
            Workload::FaultChurnQuiet | Workload::FaultChurnBusy | Workload::FaultChurn => big,
            Workload::VmaLookup
            | Workload::VmaLookupHot
            | Workload::MmapAtScale
            | Workload::ExitManyVmas => 0,
            Workload::MprotectSplitMerge | Workload::TranslateHit => 64 * KIB,
            Workload::AccessRead | Workload::AccessWrite => PAGE,
            Workload::Zero4k | Workload::Dontneed => PAGE,
            Workload::Zap => ZAP_PAGES * PAGE,
            Workload::MmapMunmap | Workload::MmapTouchMunmap => 0,
            // `shootdown.rs` maps its own pages.
            Workload::ShootdownTargeted | Workload::ShootdownFull => 0,
        }
    }

    /// Timed operations per thread per run.
    pub(crate) fn ops(self, quick: bool) -> u64 {
        let full = match self {
            // One op per page of the region: a run faults (zeroes) the region once.
            Workload::Fault4k
            | Workload::Zero4kCold
            | Workload::FaultChurnQuiet
            | Workload::FaultChurnBusy
            | Workload::FaultChurn => {
                return self.region_len(quick) / PAGE;
            }
            // One teardown per run (the row's `ops` counts the VMAs torn down).
            Workload::ExitManyVmas => return 1,
            Workload::VmaLookup | Workload::VmaLookupHot => 1 << 16,
            Workload::MmapAtScale => 1 << 13,
            Workload::Zero4k => 1 << 16,
            Workload::MmapMunmap | Workload::MmapTouchMunmap => 1 << 14,
            Workload::MprotectSplitMerge => 1 << 13,
            Workload::Dontneed => 1 << 14,
            Workload::Zap => 1 << 8,
            Workload::ShootdownTargeted | Workload::ShootdownFull => 1 << 10,
            Workload::TranslateHit | Workload::TranslateWalk => 1 << 20,
            Workload::AccessRead | Workload::AccessWrite => 1 << 20,
        };
        if quick { full / 64 } else { full }
    }

    /// Operations timed together as one sample (cheap operations are batched so the
    /// clock's own cost, about 20 ns, stays out of the result).
    pub(crate) fn batch(self) -> u64 {
        match self {
            Workload::TranslateHit | Workload::TranslateWalk => 64,
            Workload::AccessRead | Workload::AccessWrite => 64,
            Workload::Zero4k | Workload::Zero4kCold => 8,
            Workload::VmaLookup | Workload::VmaLookupHot => 16,
            _ => 1,
        }
    }

    /// What one [`Workload::op`] counts as in the row: `zap` reports per page, the rest
    /// per call.
    pub(crate) fn units_per_op(self) -> u64 {
        match self {
            Workload::Zap => ZAP_PAGES,
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
            Workload::Zero4k
            | Workload::TranslateHit
            | Workload::AccessRead
            | Workload::AccessWrite => t.touch(addr)?,
            Workload::Zero4kCold => t.populate(addr, len)?,
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

    /// Whether operations have untimed work before them ([`Workload::prepare`]).
    pub(crate) fn prepares(self) -> bool {
        self == Workload::Zap
    }

    /// Untimed work before each timed operation: `zap` writes every page of its region
    /// (each a fault: the previous operation dropped the page).
    #[inline]
    pub(crate) fn prepare<T: Thread>(self, t: &mut T, r: &Region) -> Result<(), OpError> {
        match self {
            Workload::Zap => (r.addr..r.addr + r.len)
                .step_by(PAGE as usize)
                .try_for_each(|p| t.touch(p)),
            _ => Ok(()),
        }
    }

    /// Timed operation number `i` (0-based, per thread).
    #[inline]
    pub(crate) fn op<T: Thread>(self, t: &mut T, r: &Region, i: u64) -> Result<(), OpError> {
        const SMALL: u64 = 16 * KIB;
        match self {
            Workload::Fault4k
            | Workload::FaultChurnQuiet
            | Workload::FaultChurnBusy
            | Workload::FaultChurn => t.touch(r.addr + i * PAGE),
            Workload::Zero4k => t.zero_frame(r.addr, false),
            Workload::Zero4kCold => t.zero_frame(r.addr + i * PAGE, true),
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
            Workload::Zap => t.dontneed(r.addr, r.len),
            Workload::TranslateHit => t.translate(r.addr),
            Workload::TranslateWalk => t.translate(r.addrs[(i % r.addrs.len() as u64) as usize]),
            Workload::AccessRead => t.load_u64(r.addr + (i % 512) * 8),
            Workload::AccessWrite => t.store_u64(r.addr + (i % 512) * 8, i),
            // Run by `scale.rs` and `shootdown.rs`.
            Workload::VmaLookup
            | Workload::VmaLookupHot
            | Workload::MmapAtScale
            | Workload::ExitManyVmas
            | Workload::ShootdownTargeted
            | Workload::ShootdownFull => Ok(()),
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
pub(crate) fn xorshift(x: &mut u64) -> u64 {
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
        let c = parse_workloads(&["fault-churn".into()]).unwrap();
        assert_eq!(
            c,
            [
                Workload::FaultChurnQuiet,
                Workload::FaultChurnBusy,
                Workload::FaultChurn
            ]
        );
    }

    #[test]
    fn many_vma_workloads_run_at_one_thread_and_churn_at_two() {
        for w in ALL {
            let t = w.threads(&[1, 2]);
            match w.kind() {
                Kind::PerThread => {
                    assert_eq!(t, [1, 2], "{w:?}");
                    assert!(w.vma_counts(false).is_empty(), "{w:?}");
                }
                Kind::Churn { .. } => assert_eq!(t, [2], "{w:?}"),
                Kind::Shootdown => assert_eq!(t, [1, 2, 3, 5], "{w:?}"),
                Kind::Scaled | Kind::Teardown => {
                    assert_eq!(t, [1], "{w:?}");
                    assert!(w.vma_counts(false).contains(&1_000_000), "{w:?}");
                    // Quick runs use fewer VMAs, every count smaller than the full one.
                    for (q, f) in w.vma_counts(true).iter().zip(w.vma_counts(false)) {
                        assert!(q < f, "{w:?}");
                    }
                }
            }
        }
        assert_eq!(
            Workload::VmaLookup.vma_counts(false),
            [1_000, 64_000, 1_000_000]
        );
    }

    #[test]
    fn shootdown_cases_name_the_readers_and_zap_counts_pages() {
        let s = parse_workloads(&["shootdown".into()]).unwrap();
        assert_eq!(s, [Workload::ShootdownTargeted, Workload::ShootdownFull]);
        let cases: Vec<String> = [1, 2, 3, 5]
            .into_iter()
            .flat_map(|t| s.iter().filter_map(move |w| w.case_at(t)))
            .collect();
        assert_eq!(
            cases,
            [
                "targeted/0",
                "full/0",
                "targeted/1",
                "full/1",
                "targeted/2",
                "full/2",
                "targeted/4",
                "full/4"
            ]
        );
        // Other workloads' cases do not depend on the thread count.
        assert_eq!(Workload::TranslateHit.case_at(2).as_deref(), Some("hit"));
        assert_eq!(Workload::Zap.case_at(2), None);
        assert_eq!(parse_workloads(&["zap".into()]).unwrap(), [Workload::Zap]);
        assert_eq!(Workload::Zap.units_per_op(), 512);
        assert_eq!(Workload::Zap.region_len(false), 2 * MIB);
        assert_eq!(Workload::Zap.region_len(true), 2 * MIB);
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
