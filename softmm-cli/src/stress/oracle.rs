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
//! * file pages (the thread's memfd, a shmem object like the above but with a size of
//!   its own, changed by `ftruncate` and `pwrite`): MAP_SHARED pages are the object's
//!   pages; MAP_PRIVATE pages show the object's current page (allocating it in the
//!   cache, as shmem does on a read fault of a hole) until the mapping writes them,
//!   then a private copy (a frame); MADV_DONTNEED drops the copy (the file's page shows
//!   again); a shrinking `ftruncate` frees the object's pages past the end and discards
//!   private copies there (`even_cows`); pages past the end raise SIGBUS. Truncation is
//!   page-aligned, so no partial page is zeroed. The file page rules are in
//!   [`super::file`];
//! * fork: a child's oracle is a copy of the parent's pages sharing its objects
//!   ([`Oracle::fork`]): private pages are frozen in each as of the fork, shared and
//!   file pages stay common (see the `fork` module);
//! * SIGSEGV (MAPERR) where nothing is mapped, (ACCERR) where the protection forbids.
//!
//! The system calls are modelled page by page in address order, which matches the VMA
//! by VMA walks of Linux's partial application (mprotect, madvise) for these ranges.

use std::collections::{HashMap, HashSet};

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
    /// Private file memory: page `pgoff` of object `obj`, copy-on-write: the object's
    /// page until written (`copy` is `None`), then a private copy holding a frame.
    PrivateFile {
        /// PROT_* bits.
        prot: u64,
        /// Object id.
        obj: u32,
        /// Page offset in the object.
        pgoff: u32,
        /// The private copy's bytes, once written.
        copy: Option<Bytes>,
    },
    /// Shared memory (anonymous, or a MAP_SHARED file): page `pgoff` of object `obj`.
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
    /// The PROT_* bits, `None` if unmapped.
    pub fn prot(self) -> Option<u64> {
        match self {
            Page::Unmapped => None,
            Page::Private { prot, .. }
            | Page::PrivateFile { prot, .. }
            | Page::Shared { prot, .. } => Some(prot),
        }
    }

    fn with_prot(self, prot: u64) -> Page {
        match self {
            Page::Unmapped => Page::Unmapped,
            Page::Private { data, .. } => Page::Private { prot, data },
            Page::PrivateFile {
                obj, pgoff, copy, ..
            } => Page::PrivateFile {
                prot,
                obj,
                pgoff,
                copy,
            },
            Page::Shared { obj, pgoff, .. } => Page::Shared { prot, obj, pgoff },
        }
    }

    /// What a page leaves at its old place when MREMAP_DONTUNMAP moves it away: the VMA
    /// stays with no entries (private pages read their backing again: zero, or the
    /// file's page).
    pub(super) fn left_by_dontunmap(self) -> Page {
        match self {
            Page::Private { prot, .. } => Page::Private {
                prot,
                data: Data::Untouched,
            },
            Page::PrivateFile {
                prot, obj, pgoff, ..
            } => Page::PrivateFile {
                prot,
                obj,
                pgoff,
                copy: None,
            },
            page => page,
        }
    }

    /// The object a page belongs to, if any.
    fn object(self) -> Option<u32> {
        match self {
            Page::PrivateFile { obj, .. } | Page::Shared { obj, .. } => Some(obj),
            _ => None,
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
    /// The oracle forgets copy-on-write after fork: it expects a private page the child
    /// writes to change in the parent too.
    ForkShares,
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
    /// Objects by id, one slot per page of their size: `Some(bytes)` for each page the
    /// object holds (a frame in its cache), `None` for a hole.
    pub(super) objects: HashMap<u32, Vec<Option<Bytes>>>,
    next_obj: u32,
    /// The thread's memfd (object id), once created.
    pub(super) file: Option<u32>,
    /// Current program break, when this thread owns the heap.
    brk: Option<u64>,
    pub(super) breakage: Option<Breakage>,
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
            file: None,
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
            | Page::PrivateFile {
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
            Page::PrivateFile {
                copy: Some(bytes), ..
            } => Seen::Bytes { bytes, lazy: false },
            Page::PrivateFile { obj, pgoff, .. } | Page::Shared { obj, pgoff, .. } => {
                match self.object_page(obj, pgoff) {
                    None => Seen::Fault(Stop::Bus),
                    Some(slot) => Seen::Bytes {
                        bytes: *slot.get_or_insert(Bytes::Zero),
                        lazy: false,
                    },
                }
            }
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
            Page::PrivateFile {
                prot,
                obj,
                pgoff,
                copy,
            } => {
                // The first write copies the object's page (allocating it in a hole);
                // a copy is written in place.
                if copy.is_none() {
                    match self.object_page(obj, pgoff) {
                        None => return Some(Stop::Bus),
                        Some(slot) => {
                            slot.get_or_insert(Bytes::Zero);
                        }
                    }
                }
                self.regions[r].pages[i] = Page::PrivateFile {
                    prot,
                    obj,
                    pgoff,
                    copy: Some(bytes),
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

    /// Whether page `pgoff` lies inside object `obj` (not past its end).
    pub fn in_object(&self, obj: u32, pgoff: u32) -> bool {
        self.objects
            .get(&obj)
            .is_some_and(|o| (pgoff as usize) < o.len())
    }

    /// A new object of `pages` holes.
    pub(super) fn new_object(&mut self, pages: usize) -> u32 {
        let obj = self.next_obj;
        self.next_obj += 1;
        self.objects.insert(obj, vec![None; pages]);
        obj
    }

    pub(super) fn object_page(&mut self, obj: u32, pgoff: u32) -> Option<&mut Option<Bytes>> {
        self.objects
            .get_mut(&obj)
            .and_then(|o| o.get_mut(pgoff as usize))
    }

    pub(super) fn set(&mut self, r: usize, from: usize, n: usize, page: impl Fn(usize) -> Page) {
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
            let obj = self.new_object(n);
            if populate && prot != PROT_NONE {
                self.objects.insert(obj, vec![Some(Bytes::Zero); n]);
            }
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
    /// objects). An object is live while a page still maps it (the thread's file
    /// counts only once the thread closed it: at the end).
    pub fn resident(&self) -> (u64, u64) {
        let private = self
            .regions
            .iter()
            .flat_map(|r| &r.pages)
            .filter(|page| {
                matches!(
                    page,
                    Page::Private {
                        data: Data::Frame(_) | Data::Lazy(_),
                        ..
                    } | Page::PrivateFile { copy: Some(_), .. }
                )
            })
            .count() as u64;
        let live = self.live_objects();
        let shared = live
            .iter()
            .map(|o| self.objects[o].iter().filter(|p| p.is_some()).count() as u64)
            .sum();
        (private, shared)
    }

    fn live_objects(&self) -> HashSet<u32> {
        self.regions
            .iter()
            .flat_map(|r| &r.pages)
            .filter_map(|page| page.object())
            .collect()
    }

    /// Drop objects no page maps any more, but for the thread's file while it is open:
    /// they are gone in softmm too, and no operation can map them again.
    pub fn collect_objects(&mut self) {
        let mut live = self.live_objects();
        live.extend(self.file);
        self.objects.retain(|o, _| live.contains(o));
    }

    /// The thread closed its file: its object lives on only while mapped.
    pub fn close_file(&mut self) {
        self.file = None;
    }

    /// The oracle of a child forked now: the same pages, and no objects of its own;
    /// the objects are common, and lent to the child while it runs (see
    /// the `fork` module).
    pub fn fork(&self) -> Oracle {
        Oracle {
            regions: self.regions.clone(),
            objects: HashMap::new(),
            next_obj: self.next_obj,
            file: self.file,
            brk: self.brk,
            breakage: self.breakage,
        }
    }

    /// Whether page `i + 1` of region `r` may lie in the VMA of page `i`: same kind
    /// and protection, and for object pages the same object at the next offset (VMAs
    /// merge only then; whether they do also depends on things the oracle does not
    /// model, such as anon identities, so only this direction is checked).
    pub fn continues(&self, r: usize, i: usize) -> bool {
        match (self.page(r, i), self.page(r, i + 1)) {
            (Page::Private { prot: a, .. }, Page::Private { prot: b, .. }) => a == b,
            (
                Page::PrivateFile {
                    prot: a,
                    obj: o,
                    pgoff: p,
                    ..
                },
                Page::PrivateFile {
                    prot: b,
                    obj: q,
                    pgoff: n,
                    ..
                },
            )
            | (
                Page::Shared {
                    prot: a,
                    obj: o,
                    pgoff: p,
                },
                Page::Shared {
                    prot: b,
                    obj: q,
                    pgoff: n,
                },
            ) => a == b && o == q && n == p + 1,
            _ => false,
        }
    }

    /// The permission string maps shows for page `i` of region `r`, `None` if unmapped.
    pub fn perms(&self, r: usize, i: usize) -> Option<String> {
        let (prot, shared) = match self.page(r, i) {
            Page::Unmapped => return None,
            Page::Private { prot, .. } | Page::PrivateFile { prot, .. } => (prot, false),
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
