//! The operations a stress thread performs, how they are drawn, and how they print.
//!
//! Every operation stays inside the thread's own regions: layout calls (mmap, munmap,
//! mremap) only inside the window and only with fixed addresses (MAP_FIXED,
//! MREMAP_FIXED, in-place resizes), so no call can place memory in another thread's
//! window. Operations are drawn from a fixed weight table with the thread's seeded RNG
//! and its oracle's state (e.g. a move's source is a mapped page), so with one thread
//! the same seed gives the same sequence. Offsets print relative to the region (`w+`
//! window, `h+` heap), which keeps the printed sequence (and its digest) independent of
//! where the window landed. File calls act on the thread's own memfd (`memfd`), forks
//! on the thread's address space (the child is checked and dropped within the
//! operation, see the `fork` module).

use std::fmt;

use rand::{Rng, RngCore};
use softmm::abi::*;

use super::{
    file::FILE_MAX_PAGES,
    oracle::{HEAP, Oracle, PAGE, Page, WINDOW},
};

/// Longest range (pages) a layout call or write covers.
pub const MAX_PAGES: usize = 16;
/// Longest read, in bytes.
const MAX_READ: u64 = 3 * PAGE;

/// Kinds of operation, for the per-kind counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Guest read through the MMU.
    Read,
    /// Guest write through the MMU.
    Write,
    /// mmap with MAP_FIXED or MAP_FIXED_NOREPLACE.
    Mmap,
    /// munmap.
    Munmap,
    /// mprotect.
    Mprotect,
    /// madvise(MADV_DONTNEED).
    Dontneed,
    /// madvise(MADV_FREE).
    Free,
    /// madvise(MADV_REMOVE).
    Remove,
    /// madvise(MADV_POPULATE_READ).
    PopulateRead,
    /// madvise(MADV_POPULATE_WRITE).
    PopulateWrite,
    /// mremap.
    Mremap,
    /// brk.
    Brk,
    /// mmap of the thread's memfd (MAP_SHARED or MAP_PRIVATE) at a fixed place.
    MmapFile,
    /// pwrite to the memfd.
    Pwrite,
    /// ftruncate of the memfd.
    Ftruncate,
    /// Read the memfd through its page cache (pread).
    Pread,
    /// fork, checking the child and copy-on-write both ways.
    Fork,
    /// Compare the VMA list with the oracle.
    Layout,
    /// The final read-back of every page.
    Verify,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 19] = [
        Kind::Read,
        Kind::Write,
        Kind::Mmap,
        Kind::Munmap,
        Kind::Mprotect,
        Kind::Dontneed,
        Kind::Free,
        Kind::Remove,
        Kind::PopulateRead,
        Kind::PopulateWrite,
        Kind::Mremap,
        Kind::Brk,
        Kind::MmapFile,
        Kind::Pwrite,
        Kind::Ftruncate,
        Kind::Pread,
        Kind::Fork,
        Kind::Layout,
        Kind::Verify,
    ];

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::Write => "write",
            Kind::Mmap => "mmap",
            Kind::Munmap => "munmap",
            Kind::Mprotect => "mprotect",
            Kind::Dontneed => "madvise_dontneed",
            Kind::Free => "madvise_free",
            Kind::Remove => "madvise_remove",
            Kind::PopulateRead => "madvise_populate_read",
            Kind::PopulateWrite => "madvise_populate_write",
            Kind::Mremap => "mremap",
            Kind::Brk => "brk",
            Kind::MmapFile => "mmap_file",
            Kind::Pwrite => "pwrite",
            Kind::Ftruncate => "ftruncate",
            Kind::Pread => "pread",
            Kind::Fork => "fork",
            Kind::Layout => "layout",
            Kind::Verify => "verify",
        }
    }

    /// Index into a per-kind count array.
    pub fn index(self) -> usize {
        Kind::ALL.iter().position(|k| *k == self).expect("listed")
    }
}

/// Relative weights (per mille) of the kinds drawn (brk only for the heap's owner;
/// MADV_REMOVE only when asked for, see [`Op::draw`]). A fork copies the whole space's
/// page tables, waits for an RCU grace period and reads back the thread's regions in
/// the child: it costs as much as a few hundred other operations, hence its rarity.
const WEIGHTS: [(Kind, u32); 18] = [
    (Kind::Read, 230),
    (Kind::Write, 190),
    (Kind::Mmap, 100),
    (Kind::Munmap, 40),
    (Kind::Mprotect, 88),
    (Kind::Dontneed, 60),
    (Kind::Free, 30),
    (Kind::Remove, 10),
    (Kind::PopulateRead, 20),
    (Kind::PopulateWrite, 20),
    (Kind::Mremap, 80),
    (Kind::Brk, 40),
    (Kind::MmapFile, 40),
    (Kind::Pwrite, 20),
    (Kind::Ftruncate, 10),
    (Kind::Pread, 10),
    (Kind::Fork, 2),
    (Kind::Layout, 10),
];

/// One operation. Page numbers and offsets are relative to region `r` (0 window, 1
/// heap); layout calls always act on the window.
#[derive(Clone, Debug, PartialEq, Eq)]
#[expect(
    missing_docs,
    reason = "fields are the call's arguments in pages: r region, page first page, n count"
)]
pub enum Op {
    /// Read `len` bytes at byte offset `off`.
    Read { r: usize, off: u64, len: u64 },
    /// Write `n` whole pages from `page`: one fill byte, or patterns stamped
    /// `stamp + k` for page `k`.
    Write {
        r: usize,
        page: usize,
        n: usize,
        fill: Option<u8>,
        stamp: u32,
    },
    /// Anonymous mmap at a fixed place.
    Mmap {
        page: usize,
        n: usize,
        prot: u64,
        shared: bool,
        populate: bool,
        noreplace: bool,
    },
    /// munmap.
    Munmap { page: usize, n: usize },
    /// mprotect.
    Mprotect {
        r: usize,
        page: usize,
        n: usize,
        prot: u64,
    },
    /// madvise.
    Madvise {
        r: usize,
        page: usize,
        n: usize,
        advice: u64,
    },
    /// mremap: `dst` given: MREMAP_MAYMOVE|MREMAP_FIXED (|MREMAP_DONTUNMAP); else in
    /// place (flags 0).
    Mremap {
        src: usize,
        old: usize,
        new: usize,
        dst: Option<usize>,
        dontunmap: bool,
    },
    /// brk to the heap start plus `off` bytes.
    Brk { off: u64 },
    /// mmap of the memfd from page `pgoff` at a fixed place.
    MmapFile {
        page: usize,
        n: usize,
        prot: u64,
        shared: bool,
        populate: bool,
        noreplace: bool,
        pgoff: usize,
    },
    /// pwrite of `n` whole pages at file page `pgoff`, like [`Op::Write`].
    Pwrite {
        pgoff: usize,
        n: usize,
        fill: Option<u8>,
        stamp: u32,
    },
    /// ftruncate of the memfd to `pages` pages.
    Ftruncate { pages: usize },
    /// pread of `len` bytes at byte `off` of the memfd.
    Pread { off: u64, len: u64 },
    /// fork; the child's writes are stamped from `stamp`.
    Fork { stamp: u32 },
    /// Check the VMA list against the oracle.
    Layout,
}

impl Op {
    /// The kind counted for this operation.
    pub fn kind(&self) -> Kind {
        match self {
            Op::Read { .. } => Kind::Read,
            Op::Write { .. } => Kind::Write,
            Op::Mmap { .. } => Kind::Mmap,
            Op::Munmap { .. } => Kind::Munmap,
            Op::Mprotect { .. } => Kind::Mprotect,
            Op::Madvise { advice, .. } => match *advice {
                MADV_DONTNEED => Kind::Dontneed,
                MADV_FREE => Kind::Free,
                MADV_REMOVE => Kind::Remove,
                MADV_POPULATE_READ => Kind::PopulateRead,
                _ => Kind::PopulateWrite,
            },
            Op::Mremap { .. } => Kind::Mremap,
            Op::Brk { .. } => Kind::Brk,
            Op::MmapFile { .. } => Kind::MmapFile,
            Op::Pwrite { .. } => Kind::Pwrite,
            Op::Ftruncate { .. } => Kind::Ftruncate,
            Op::Pread { .. } => Kind::Pread,
            Op::Fork { .. } => Kind::Fork,
            Op::Layout => Kind::Layout,
        }
    }

    /// Draw the next operation for a thread whose state is `oracle`. MADV_REMOVE is
    /// drawn only with `remove`, so that without it a seed draws what it always drew; the
    /// punch zaps every mapping of the page in every process (Linux's
    /// `unmap_mapping_range`), which the oracle checks.
    pub fn draw(rng: &mut impl RngCore, oracle: &Oracle, remove: bool) -> Op {
        let heap = oracle.regions.len() > HEAP;
        let drawn = |k: &Kind| (heap || *k != Kind::Brk) && (remove || *k != Kind::Remove);
        let total: u32 = WEIGHTS
            .iter()
            .filter(|(k, _)| drawn(k))
            .map(|(_, w)| w)
            .sum();
        let mut pick = rng.random_range(0..total);
        let mut kind = Kind::Read;
        for &(k, w) in WEIGHTS.iter().filter(|(k, _)| drawn(k)) {
            if pick < w {
                kind = k;
                break;
            }
            pick -= w;
        }
        // Keep the window mostly mapped (moves and shrinks leave holes): below two
        // thirds, an unmap becomes a map.
        if kind == Kind::Munmap
            && oracle.mapped(WINDOW) * 3 < oracle.regions[WINDOW].pages.len() * 2
        {
            kind = Kind::Mmap;
        }
        // Accesses, mprotect and madvise go to the heap a quarter of the time.
        let r = if heap && rng.random_ratio(1, 4) {
            HEAP
        } else {
            WINDOW
        };
        let len = oracle.regions[r].pages.len();
        let wlen = oracle.regions[WINDOW].pages.len();
        match kind {
            Kind::Read => draw_read(rng, r, len),
            Kind::Write => {
                let (page, n) = range(rng, len);
                let fill = rng.random_ratio(3, 10).then(|| rng.random());
                let stamp = rng.random();
                Op::Write {
                    r,
                    page,
                    n,
                    fill,
                    stamp,
                }
            }
            Kind::Mmap => {
                let (page, n) = range(rng, wlen);
                Op::Mmap {
                    page,
                    n,
                    prot: draw_prot(rng),
                    shared: rng.random_ratio(1, 5),
                    populate: rng.random_ratio(3, 20),
                    noreplace: rng.random_ratio(3, 20),
                }
            }
            Kind::Munmap => {
                let (page, n) = range(rng, wlen);
                Op::Munmap { page, n }
            }
            Kind::Mprotect => {
                let (page, n) = range(rng, len);
                let prot = draw_prot(rng);
                Op::Mprotect { r, page, n, prot }
            }
            Kind::Dontneed
            | Kind::Free
            | Kind::Remove
            | Kind::PopulateRead
            | Kind::PopulateWrite => {
                let (page, n) = range(rng, len);
                let advice = match kind {
                    Kind::Dontneed => MADV_DONTNEED,
                    Kind::Free => MADV_FREE,
                    Kind::Remove => MADV_REMOVE,
                    Kind::PopulateRead => MADV_POPULATE_READ,
                    _ => MADV_POPULATE_WRITE,
                };
                Op::Madvise { r, page, n, advice }
            }
            Kind::Mremap => {
                draw_mremap(rng, oracle).unwrap_or_else(|| draw_read(rng, WINDOW, wlen))
            }
            Kind::Brk => {
                let max = oracle.regions[HEAP].pages.len() as u64 * PAGE;
                let mut off = rng.random_range(0..=max);
                if rng.random_ratio(1, 2) {
                    off &= !(PAGE - 1);
                }
                Op::Brk { off }
            }
            Kind::MmapFile => {
                let (page, n) = range(rng, wlen);
                Op::MmapFile {
                    page,
                    n,
                    prot: draw_prot(rng),
                    shared: rng.random_ratio(1, 2),
                    populate: rng.random_ratio(3, 20),
                    noreplace: rng.random_ratio(1, 10),
                    pgoff: rng.random_range(0..FILE_MAX_PAGES),
                }
            }
            Kind::Pwrite => {
                let pgoff = rng.random_range(0..FILE_MAX_PAGES);
                let n = rng.random_range(1..=4).min(FILE_MAX_PAGES - pgoff);
                let fill = rng.random_ratio(3, 10).then(|| rng.random());
                let stamp = rng.random();
                Op::Pwrite {
                    pgoff,
                    n,
                    fill,
                    stamp,
                }
            }
            Kind::Ftruncate => {
                // Mostly near the full size, so that the file keeps most pages.
                let pages = if rng.random_ratio(3, 4) {
                    rng.random_range(FILE_MAX_PAGES / 2..=FILE_MAX_PAGES)
                } else {
                    rng.random_range(0..=FILE_MAX_PAGES)
                };
                Op::Ftruncate { pages }
            }
            Kind::Pread => {
                let bytes = FILE_MAX_PAGES as u64 * PAGE;
                let off = rng.random_range(0..bytes);
                let len = rng.random_range(1..=MAX_READ);
                Op::Pread { off, len }
            }
            Kind::Fork => Op::Fork {
                stamp: rng.random(),
            },
            Kind::Layout | Kind::Verify => Op::Layout,
        }
    }
}

/// A page range inside a region of `len` pages, mostly short.
fn range(rng: &mut impl RngCore, len: usize) -> (usize, usize) {
    let n = if rng.random_ratio(3, 4) {
        rng.random_range(1..=4)
    } else {
        rng.random_range(1..=MAX_PAGES)
    };
    let page = rng.random_range(0..len);
    (page, n.min(len - page))
}

fn draw_prot(rng: &mut impl RngCore) -> u64 {
    const PROTS: [u64; 6] = [
        PROT_NONE,
        PROT_READ,
        PROT_READ | PROT_WRITE,
        PROT_READ | PROT_WRITE,
        PROT_READ | PROT_WRITE,
        PROT_WRITE,
    ];
    PROTS[rng.random_range(0..PROTS.len())]
}

fn draw_read(rng: &mut impl RngCore, r: usize, len: usize) -> Op {
    let bytes = len as u64 * PAGE;
    if rng.random_ratio(1, 2) {
        let page = rng.random_range(0..len) as u64;
        let n = rng.random_range(1..=3u64).min(len as u64 - page);
        return Op::Read {
            r,
            off: page * PAGE,
            len: n * PAGE,
        };
    }
    let off = rng.random_range(0..bytes);
    let len = rng.random_range(1..=MAX_READ).min(bytes - off);
    Op::Read { r, off, len }
}

/// A mremap whose source starts at a mapped page and whose ranges fit the window and do
/// not overlap; `None` when a few tries find none.
fn draw_mremap(rng: &mut impl RngCore, oracle: &Oracle) -> Option<Op> {
    let len = oracle.regions[WINDOW].pages.len();
    for _ in 0..8 {
        let src = rng.random_range(0..len);
        if oracle.page(WINDOW, src) == Page::Unmapped {
            continue;
        }
        let old = rng.random_range(1..=8usize).min(len - src);
        let variant = rng.random_range(0..20);
        if variant < 7 {
            // In place: shrink, or grow when there is room up to the window's end.
            let new = rng.random_range(1..=8usize).min(len - src);
            return Some(Op::Mremap {
                src,
                old,
                new,
                dst: None,
                dontunmap: false,
            });
        }
        let dontunmap = variant >= 17;
        let new = match variant {
            7..=12 => old,
            _ if dontunmap => old,
            _ => rng.random_range(1..=8usize),
        };
        if new > len {
            continue;
        }
        let dst = rng.random_range(0..=len - new);
        if dst < src + old && src < dst + new {
            continue;
        }
        return Some(Op::Mremap {
            src,
            old,
            new,
            dst: Some(dst),
            dontunmap,
        });
    }
    None
}

fn prot_text(prot: u64) -> String {
    let names = [
        (PROT_READ, "PROT_READ"),
        (PROT_WRITE, "PROT_WRITE"),
        (PROT_EXEC, "PROT_EXEC"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(b, _)| prot & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if set.is_empty() {
        "PROT_NONE".to_string()
    } else {
        set.join("|")
    }
}

fn advice_text(advice: u64) -> &'static str {
    match advice {
        MADV_DONTNEED => "MADV_DONTNEED",
        MADV_FREE => "MADV_FREE",
        MADV_REMOVE => "MADV_REMOVE",
        MADV_POPULATE_READ => "MADV_POPULATE_READ",
        _ => "MADV_POPULATE_WRITE",
    }
}

/// `w+0x1000` or `h+0x1000`.
struct At(usize, u64);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let region = if self.0 == HEAP { 'h' } else { 'w' };
        write!(f, "{region}+{:#x}", self.1)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pg = |p: usize| p as u64 * PAGE;
        match *self {
            Op::Read { r, off, len } => write!(f, "read({}, {len:#x})", At(r, off)),
            Op::Write {
                r,
                page,
                n,
                fill: Some(b),
                ..
            } => write!(f, "fill({}, {b:#04x}, {:#x})", At(r, pg(page)), pg(n)),
            Op::Write {
                r, page, n, stamp, ..
            } => write!(
                f,
                "write({}, {:#x}, pattern {stamp:#010x})",
                At(r, pg(page)),
                pg(n)
            ),
            Op::Mmap {
                page,
                n,
                prot,
                shared,
                populate,
                noreplace,
            } => write!(
                f,
                "mmap({}, {:#x}, {}, {}|MAP_ANONYMOUS|{}{}, -1, 0)",
                At(WINDOW, pg(page)),
                pg(n),
                prot_text(prot),
                if shared { "MAP_SHARED" } else { "MAP_PRIVATE" },
                if noreplace {
                    "MAP_FIXED_NOREPLACE"
                } else {
                    "MAP_FIXED"
                },
                if populate { "|MAP_POPULATE" } else { "" }
            ),
            Op::Munmap { page, n } => write!(f, "munmap({}, {:#x})", At(WINDOW, pg(page)), pg(n)),
            Op::Mprotect { r, page, n, prot } => write!(
                f,
                "mprotect({}, {:#x}, {})",
                At(r, pg(page)),
                pg(n),
                prot_text(prot)
            ),
            Op::Madvise { r, page, n, advice } => write!(
                f,
                "madvise({}, {:#x}, {})",
                At(r, pg(page)),
                pg(n),
                advice_text(advice)
            ),
            Op::Mremap {
                src,
                old,
                new,
                dst,
                dontunmap,
            } => {
                write!(
                    f,
                    "mremap({}, {:#x}, {:#x}, ",
                    At(WINDOW, pg(src)),
                    pg(old),
                    pg(new)
                )?;
                match dst {
                    None => write!(f, "0)"),
                    Some(d) => write!(
                        f,
                        "MREMAP_MAYMOVE|MREMAP_FIXED{}, {})",
                        if dontunmap { "|MREMAP_DONTUNMAP" } else { "" },
                        At(WINDOW, pg(d))
                    ),
                }
            }
            Op::Brk { off } => write!(f, "brk({})", At(HEAP, off)),
            Op::MmapFile {
                page,
                n,
                prot,
                shared,
                populate,
                noreplace,
                pgoff,
            } => write!(
                f,
                "mmap({}, {:#x}, {}, {}|{}{}, memfd, {:#x})",
                At(WINDOW, pg(page)),
                pg(n),
                prot_text(prot),
                if shared { "MAP_SHARED" } else { "MAP_PRIVATE" },
                if noreplace {
                    "MAP_FIXED_NOREPLACE"
                } else {
                    "MAP_FIXED"
                },
                if populate { "|MAP_POPULATE" } else { "" },
                pg(pgoff)
            ),
            Op::Pwrite {
                pgoff,
                n,
                fill: Some(b),
                ..
            } => write!(
                f,
                "pwrite(memfd, fill {b:#04x}, {:#x}, {:#x})",
                pg(n),
                pg(pgoff)
            ),
            Op::Pwrite {
                pgoff, n, stamp, ..
            } => write!(
                f,
                "pwrite(memfd, pattern {stamp:#010x}, {:#x}, {:#x})",
                pg(n),
                pg(pgoff)
            ),
            Op::Ftruncate { pages } => write!(f, "ftruncate(memfd, {:#x})", pg(pages)),
            Op::Pread { off, len } => write!(f, "pread(memfd, {len:#x}, {off:#x})"),
            Op::Fork { stamp } => write!(f, "fork() [child writes {stamp:#010x}]"),
            Op::Layout => write!(f, "layout()"),
        }
    }
}
