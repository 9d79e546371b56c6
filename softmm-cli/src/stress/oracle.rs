//! The content oracle: what Linux says every page of one thread's address window holds.
//!
//! A stress thread owns its regions outright (its window, and for the first thread of a
//! space also the heap), so the oracle of a region is changed only by that thread and is
//! exact even while other threads hammer the same `mmap_lock`, allocator and page tables.
//!
//! Contents are rules, not bytes: a page holds [`Bytes::Zero`], a pattern derived from a
//! 32-bit stamp (distinct per page written, so a page moved to the wrong place is caught),
//! or one fill byte. Writes are whole pages; reads may start and end anywhere.
//!
//! Semantics modelled (Linux x86-64, anonymous memory):
//! * private pages: zero until written; written pages hold a frame; pages only read map
//!   the shared zero frame and hold none; MADV_DONTNEED makes them zero again;
//!   MADV_FREE keeps the bytes until reclaim (softmm never reclaims, but old-or-zero is
//!   accepted);
//! * shared pages belong to an object (the shmem file behind MAP_SHARED|MAP_ANONYMOUS):
//!   any access allocates the object's page, DONTNEED keeps it, MADV_REMOVE punches it;
//!   the object (and its frames) lives while some page still maps it; pages past its
//!   end (a grown mapping) raise SIGBUS;
//! * SIGSEGV (MAPERR) where nothing is mapped, (ACCERR) where the protection forbids.
//!
//! The system calls are modelled page by page in address order, which matches the VMA
//! by VMA walks of Linux's partial application (mprotect, madvise) for these ranges.

use std::collections::HashMap;

use softmm::{Errno, abi::*};

/// Bytes per page.
pub const PAGE: u64 = 4096;

/// The contents of a page, as a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bytes {
    /// All zero.
    Zero,
    /// `pattern(stamp, offset)` at every offset.
    Pattern(u32),
    /// One byte everywhere.
    Fill(u8),
}

impl Bytes {
    /// The byte at `off` in the page.
    pub fn at(self, off: usize) -> u8 {
        match self {
            Bytes::Zero => 0,
            Bytes::Fill(b) => b,
            Bytes::Pattern(stamp) => {
                let mut x = stamp ^ (off as u32).wrapping_mul(0x9e37_79b1);
                x ^= x >> 16;
                x = x.wrapping_mul(0x7feb_352d);
                x ^= x >> 15;
                x as u8
            }
        }
    }

    /// Write the bytes of `[off, off + out.len())` into `out`.
    pub fn expand(self, off: usize, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            *b = self.at(off + i);
        }
    }
}

/// What a private page holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Data {
    /// Never written (or discarded): reads zero, holds no frame.
    Untouched,
    /// Holds a frame with these bytes.
    Frame(Bytes),
    /// MADV_FREE'd: holds a frame with these bytes, or zero once reclaimed.
    Lazy(Bytes),
}

/// One page of a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// No VMA.
    Unmapped,
    /// Private anonymous memory.
    Private {
        /// PROT_* bits.
        prot: u64,
        /// Contents.
        data: Data,
    },
    /// Shared anonymous memory: page `pgoff` of object `obj`.
    Shared {
        /// PROT_* bits.
        prot: u64,
        /// Object id.
        obj: u32,
        /// Page offset in the object.
        pgoff: u32,
    },
}

impl Page {
    fn prot(self) -> Option<u64> {
        match self {
            Page::Unmapped => None,
            Page::Private { prot, .. } | Page::Shared { prot, .. } => Some(prot),
        }
    }

    fn with_prot(self, prot: u64) -> Page {
        match self {
            Page::Unmapped => Page::Unmapped,
            Page::Private { data, .. } => Page::Private { prot, data },
            Page::Shared { obj, pgoff, .. } => Page::Shared { prot, obj, pgoff },
        }
    }
}

/// Why an access stops at a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGSEGV, SEGV_MAPERR.
    MapErr,
    /// SIGSEGV, SEGV_ACCERR.
    AccErr,
    /// SIGBUS (past the end of a shared object).
    Bus,
}

/// What reading one page gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// These bytes; with `lazy`, all-zero is acceptable too.
    Bytes {
        /// The expected bytes.
        bytes: Bytes,
        /// MADV_FREE'd: may read as zero.
        lazy: bool,
    },
    /// The access faults here.
    Fault(Stop),
}

/// A deliberate oracle bug, to prove the checker catches one (tests only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Breakage {
    /// The oracle forgets that MADV_DONTNEED zeroes private pages.
    Dontneed,
}

/// A contiguous run of pages owned by one thread.
#[derive(Clone, Debug)]
pub struct Region {
    /// Address of page 0.
    pub base: u64,
    /// The pages.
    pub pages: Vec<Page>,
}

impl Region {
    /// Address of page `i`.
    pub fn addr(&self, i: usize) -> u64 {
        self.base + i as u64 * PAGE
    }
}

/// The oracle of one thread.
#[derive(Debug)]
pub struct Oracle {
    /// Region 0 is the window; region 1, when present, the heap.
    pub regions: Vec<Region>,
    /// Shared objects by id: `Some(bytes)` for each page the object holds.
    objects: HashMap<u32, Vec<Option<Bytes>>>,
    next_obj: u32,
    /// Current program break, when this thread owns the heap.
    brk: Option<u64>,
    breakage: Option<Breakage>,
}

/// Index of the window region.
pub const WINDOW: usize = 0;
/// Index of the heap region.
pub const HEAP: usize = 1;

impl Oracle {
    /// A window of `pages` PROT_NONE private pages at `base` and, when `heap` is
    /// `Some((start_brk, pages))`, an empty heap region.
    pub fn new(
        base: u64,
        pages: usize,
        heap: Option<(u64, usize)>,
        breakage: Option<Breakage>,
    ) -> Self {
        let none = Page::Private {
            prot: PROT_NONE,
            data: Data::Untouched,
        };
        let mut regions = vec![Region {
            base,
            pages: vec![none; pages],
        }];
        if let Some((start, n)) = heap {
            regions.push(Region {
                base: start,
                pages: vec![Page::Unmapped; n],
            });
        }
        Self {
            regions,
            objects: HashMap::new(),
            next_obj: 1,
            brk: heap.map(|(start, _)| start),
            breakage,
        }
    }

    /// The state of page `i` of region `r`.
    pub fn page(&self, r: usize, i: usize) -> Page {
        self.regions[r].pages[i]
    }

    /// Number of mapped pages in region `r`.
    pub fn mapped(&self, r: usize) -> usize {
        self.regions[r]
            .pages
            .iter()
            .filter(|p| **p != Page::Unmapped)
            .count()
    }

    /// Read page `i` of region `r` as an access would, with its side effects (a shared
    /// page gets allocated in its object).
    pub fn read_page(&mut self, r: usize, i: usize) -> Seen {
        match self.page(r, i) {
            Page::Unmapped => Seen::Fault(Stop::MapErr),
            Page::Private {
                prot: PROT_NONE, ..
            }
            | Page::Shared {
                prot: PROT_NONE, ..
            } => Seen::Fault(Stop::AccErr),
            Page::Private { data, .. } => match data {
                Data::Untouched => Seen::Bytes {
                    bytes: Bytes::Zero,
                    lazy: false,
                },
                Data::Frame(bytes) => Seen::Bytes { bytes, lazy: false },
                Data::Lazy(bytes) => Seen::Bytes { bytes, lazy: true },
            },
            Page::Shared { obj, pgoff, .. } => match self.object_page(obj, pgoff) {
                None => Seen::Fault(Stop::Bus),
                Some(slot) => Seen::Bytes {
                    bytes: *slot.get_or_insert(Bytes::Zero),
                    lazy: false,
                },
            },
        }
    }

    /// A lazily freed page read back as zero: it was reclaimed.
    pub fn reclaimed(&mut self, r: usize, i: usize) {
        if let Page::Private { prot, .. } = self.page(r, i) {
            self.regions[r].pages[i] = Page::Private {
                prot,
                data: Data::Untouched,
            };
        }
    }

    /// Write `bytes` over page `i` of region `r`; `Some(stop)` when the write faults.
    pub fn write_page(&mut self, r: usize, i: usize, bytes: Bytes) -> Option<Stop> {
        let page = self.page(r, i);
        match page.prot() {
            None => return Some(Stop::MapErr),
            Some(p) if p & PROT_WRITE == 0 => return Some(Stop::AccErr),
            Some(_) => {}
        }
        match page {
            Page::Private { prot, .. } => {
                self.regions[r].pages[i] = Page::Private {
                    prot,
                    data: Data::Frame(bytes),
                };
            }
            Page::Shared { obj, pgoff, .. } => match self.object_page(obj, pgoff) {
                None => return Some(Stop::Bus),
                Some(slot) => *slot = Some(bytes),
            },
            Page::Unmapped => unreachable!("checked above"),
        }
        None
    }

    fn object_page(&mut self, obj: u32, pgoff: u32) -> Option<&mut Option<Bytes>> {
        self.objects
            .get_mut(&obj)
            .and_then(|o| o.get_mut(pgoff as usize))
    }

    fn set(&mut self, r: usize, from: usize, n: usize, page: impl Fn(usize) -> Page) {
        for i in 0..n {
            self.regions[r].pages[from + i] = page(i);
        }
    }

    /// `mmap(addr of page i, n pages, prot, MAP_FIXED[_NOREPLACE] | ...)`.
    #[expect(clippy::too_many_arguments, reason = "the mmap argument list")]
    pub fn mmap(
        &mut self,
        r: usize,
        i: usize,
        n: usize,
        prot: u64,
        shared: bool,
        populate: bool,
        noreplace: bool,
    ) -> Result<u64, Errno> {
        let range = &self.regions[r].pages[i..i + n];
        if noreplace && range.iter().any(|p| *p != Page::Unmapped) {
            return Err(Errno::EEXIST);
        }
        if shared {
            let obj = self.next_obj;
            self.next_obj += 1;
            let fill = if populate && prot != PROT_NONE {
                Some(Bytes::Zero)
            } else {
                None
            };
            self.objects.insert(obj, vec![fill; n]);
            self.set(r, i, n, |k| Page::Shared {
                prot,
                obj,
                pgoff: k as u32,
            });
        } else {
            // MAP_POPULATE write-faults private writable memory (fresh zeroed frames)
            // and read-faults the rest (the zero frame).
            let data = if populate && prot & PROT_WRITE != 0 {
                Data::Frame(Bytes::Zero)
            } else {
                Data::Untouched
            };
            self.set(r, i, n, |_| Page::Private { prot, data });
        }
        Ok(self.regions[r].addr(i))
    }

    /// `munmap` of `n` pages from page `i`.
    pub fn munmap(&mut self, r: usize, i: usize, n: usize) -> Result<u64, Errno> {
        self.set(r, i, n, |_| Page::Unmapped);
        Ok(0)
    }

    /// `mprotect`: ENOMEM at the first hole, the pages before it changed.
    pub fn mprotect(&mut self, r: usize, i: usize, n: usize, prot: u64) -> Result<u64, Errno> {
        for k in i..i + n {
            let page = self.page(r, k);
            if page == Page::Unmapped {
                return Err(Errno::ENOMEM);
            }
            self.regions[r].pages[k] = page.with_prot(prot);
        }
        Ok(0)
    }

    /// `madvise` with DONTNEED, FREE, REMOVE, POPULATE_READ or POPULATE_WRITE.
    pub fn madvise(&mut self, r: usize, i: usize, n: usize, advice: u64) -> Result<u64, Errno> {
        let mut hole = false;
        for k in i..i + n {
            let page = self.page(r, k);
            if page == Page::Unmapped {
                // Populate stops at a hole; the others go on and report it at the end.
                if matches!(advice, MADV_POPULATE_READ | MADV_POPULATE_WRITE) {
                    return Err(Errno::ENOMEM);
                }
                hole = true;
                continue;
            }
            self.advise_page(r, k, page, advice)?;
        }
        if hole { Err(Errno::ENOMEM) } else { Ok(0) }
    }

    fn advise_page(&mut self, r: usize, k: usize, page: Page, advice: u64) -> Result<(), Errno> {
        let slot = &mut self.regions[r].pages[k];
        match (advice, page) {
            (MADV_DONTNEED, Page::Private { prot, data }) => {
                let data = match (self.breakage, data) {
                    (Some(Breakage::Dontneed), Data::Frame(b) | Data::Lazy(b)) => Data::Frame(b),
                    _ => Data::Untouched,
                };
                *slot = Page::Private { prot, data };
            }
            (
                MADV_FREE,
                Page::Private {
                    prot,
                    data: Data::Frame(b),
                },
            ) => {
                *slot = Page::Private {
                    prot,
                    data: Data::Lazy(b),
                };
            }
            (MADV_FREE, Page::Shared { .. }) => return Err(Errno::EINVAL),
            (MADV_REMOVE, Page::Private { .. }) => return Err(Errno::EINVAL),
            (MADV_REMOVE, Page::Shared { obj, pgoff, .. }) => {
                // Allowed on any shared mapping that may be written (VM_MAYWRITE), even
                // a read-only one: checked with linux-run (tests/scripts/078).
                if let Some(s) = self.object_page(obj, pgoff) {
                    *s = None;
                }
            }
            (MADV_POPULATE_READ | MADV_POPULATE_WRITE, _) => {
                return self.populate_page(r, k, page, advice == MADV_POPULATE_WRITE);
            }
            // DONTNEED on shared memory zaps the entries; the object keeps the page.
            _ => {}
        }
        Ok(())
    }

    fn populate_page(&mut self, r: usize, k: usize, page: Page, write: bool) -> Result<(), Errno> {
        let prot = page.prot().unwrap_or(PROT_NONE);
        // GUP without FOLL_FORCE: reading needs VM_READ, writing VM_WRITE (Linux 6.18,
        // checked with linux-run).
        if (!write && prot & PROT_READ == 0) || (write && prot & PROT_WRITE == 0) {
            return Err(Errno::EINVAL);
        }
        match page {
            Page::Private {
                prot,
                data: Data::Untouched,
            } if write => {
                self.regions[r].pages[k] = Page::Private {
                    prot,
                    data: Data::Frame(Bytes::Zero),
                };
            }
            Page::Shared { obj, pgoff, .. } => match self.object_page(obj, pgoff) {
                None => return Err(Errno::EFAULT),
                Some(s) => {
                    s.get_or_insert(Bytes::Zero);
                }
            },
            _ => {}
        }
        Ok(())
    }

    /// `mremap` of the window. `dst` set: MREMAP_MAYMOVE|MREMAP_FIXED (and DONTUNMAP);
    /// else an in-place resize. `vma` is the page range of the VMA holding page `src`,
    /// clipped to the region (from a snapshot; only internal edges matter and only this
    /// thread changes them). The caller guarantees page `src` is mapped, the ranges lie
    /// in the region and do not overlap, and that a grow or DONTUNMAP move has its
    /// source inside one VMA.
    #[expect(clippy::too_many_arguments, reason = "the mremap argument list")]
    pub fn mremap(
        &mut self,
        r: usize,
        src: usize,
        old: usize,
        new: usize,
        dst: Option<usize>,
        dontunmap: bool,
        vma: (usize, usize),
    ) -> Result<u64, Errno> {
        let len = self.regions[r].pages.len();
        let Some(d) = dst else {
            if new <= old {
                self.munmap(r, src + new, old - new)?;
                return Ok(self.regions[r].addr(src));
            }
            if vma.1 < src + old {
                return Err(Errno::EFAULT);
            }
            let room = src + new <= len
                && self.regions[r].pages[src + old..src + new]
                    .iter()
                    .all(|p| *p == Page::Unmapped);
            if vma.1 != src + old || vma.1 == len || !room {
                return Err(Errno::ENOMEM);
            }
            self.extend(r, src, old, src + old, new - old);
            return Ok(self.regions[r].addr(src));
        };
        if old == new {
            // A pure move (Linux 6.17+): each VMA part moves; only each part's
            // destination is unmapped, so the destination opposite a hole in the
            // source keeps what it had.
            let moved: Vec<Page> = self.regions[r].pages[src..src + old].to_vec();
            for (k, page) in moved.into_iter().enumerate() {
                if page == Page::Unmapped {
                    continue;
                }
                self.munmap(r, d + k, 1)?;
                self.regions[r].pages[d + k] = page;
                self.regions[r].pages[src + k] = match page {
                    Page::Private { prot, .. } if dontunmap => Page::Private {
                        prot,
                        data: Data::Untouched,
                    },
                    Page::Shared { .. } if dontunmap => page,
                    _ => Page::Unmapped,
                };
            }
            return Ok(self.regions[r].addr(d));
        }
        // A resizing move: the part that moves must lie in the source VMA, checked
        // before anything changes (`check_prep_vma`).
        if vma.1 < src + old.min(new) {
            return Err(Errno::EFAULT);
        }
        self.munmap(r, d, new)?;
        let mut old = old;
        if old > new {
            self.munmap(r, src + new, old - new)?;
            old = new;
        }
        let moved: Vec<Page> = self.regions[r].pages[src..src + old].to_vec();
        self.extend(r, src, old, d + old, new - old);
        for (k, page) in moved.into_iter().enumerate() {
            self.regions[r].pages[d + k] = page;
            let left = match page {
                Page::Private { prot, .. } if dontunmap => Page::Private {
                    prot,
                    data: Data::Untouched,
                },
                Page::Shared { .. } if dontunmap => page,
                _ => Page::Unmapped,
            };
            self.regions[r].pages[src + k] = left;
        }
        Ok(self.regions[r].addr(d))
    }

    /// Fill `[at, at + n)` with the continuation of the VMA whose last page is
    /// `src + old - 1` (a grown mapping: zero pages, or the object's next pages).
    fn extend(&mut self, r: usize, src: usize, old: usize, at: usize, n: usize) {
        let last = self.page(r, src + old - 1);
        self.set(r, at, n, |k| match last {
            Page::Private { prot, .. } => Page::Private {
                prot,
                data: Data::Untouched,
            },
            Page::Shared { prot, obj, pgoff } => Page::Shared {
                prot,
                obj,
                pgoff: pgoff + 1 + k as u32,
            },
            Page::Unmapped => Page::Unmapped,
        });
    }

    /// `brk(target)` by the heap's owner: the heap is `[start, page_up(brk))`.
    pub fn brk(&mut self, target: u64) -> Result<u64, Errno> {
        let heap = &self.regions[HEAP];
        let old = self.brk.expect("only the heap's owner calls brk");
        let pages = |b: u64| (b - heap.base).div_ceil(PAGE) as usize;
        let (was, now) = (pages(old), pages(target));
        if now < was {
            self.set(HEAP, now, was - now, |_| Page::Unmapped);
        } else {
            self.set(HEAP, was, now - was, |_| Page::Private {
                prot: PROT_READ | PROT_WRITE,
                data: Data::Untouched,
            });
        }
        self.brk = Some(target);
        Ok(target)
    }

    /// Frames the oracle says are held: (private pages with a frame, pages of live
    /// shared objects). An object is live while a page still maps it.
    pub fn resident(&self) -> (u64, u64) {
        let mut private = 0;
        let mut live = std::collections::HashSet::new();
        for page in self.regions.iter().flat_map(|r| &r.pages) {
            match page {
                Page::Private {
                    data: Data::Frame(_) | Data::Lazy(_),
                    ..
                } => private += 1,
                Page::Shared { obj, .. } => {
                    live.insert(*obj);
                }
                _ => {}
            }
        }
        let shared = live
            .iter()
            .map(|o| self.objects[o].iter().filter(|p| p.is_some()).count() as u64)
            .sum();
        (private, shared)
    }

    /// Drop objects no page maps any more (they are gone in softmm too).
    pub fn collect_objects(&mut self) {
        let mut live = std::collections::HashSet::new();
        for page in self.regions.iter().flat_map(|r| &r.pages) {
            if let Page::Shared { obj, .. } = page {
                live.insert(*obj);
            }
        }
        self.objects.retain(|o, _| live.contains(o));
    }

    /// The permission string maps shows for page `i` of region `r`, `None` if unmapped.
    pub fn perms(&self, r: usize, i: usize) -> Option<String> {
        let (prot, shared) = match self.page(r, i) {
            Page::Unmapped => return None,
            Page::Private { prot, .. } => (prot, false),
            Page::Shared { prot, .. } => (prot, true),
        };
        let bit = |b: u64, c: char| if prot & b != 0 { c } else { '-' };
        Some(format!(
            "{}{}{}{}",
            bit(PROT_READ, 'r'),
            bit(PROT_WRITE, 'w'),
            bit(PROT_EXEC, 'x'),
            if shared { 's' } else { 'p' }
        ))
    }
}
