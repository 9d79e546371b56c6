//! Physical memory: one host region of frames, their metadata, the allocator.
//!
//! A [`PhysMem`] reserves `Config::phys_mem_bytes` of host memory up front (committed by
//! the host on first touch) and hands out 4 KiB frames and 2 MiB-aligned compound frames.
//! A frame number ([`Pfn`]) indexes both the bytes and the [`PageMeta`] array. Pointers
//! into frames are always derived from the region base (strict provenance).
//!
//! Exhaustion is an error value (`None` from the allocation functions), never a panic.
//! Frame bytes shared with other threads are accessed only through `sync::bytes`.

mod alloc;
mod frame_ref;
mod host;
pub(crate) mod meta;
mod pin;

use std::{ptr::NonNull, sync::Arc};

pub use frame_ref::FrameRef;
pub(crate) use meta::{PageFlags, PageMeta};
pub(crate) use pin::FramePin;

use self::{
    alloc::{CHUNK_FRAMES, FrameAllocator},
    host::HostRegion,
};
use crate::{
    addr::{HUGE_SIZE, PAGE_SIZE},
    sync::{AtomicU64, Ordering, bytes},
};

/// A physical frame number inside one [`PhysMem`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Pfn(pub(crate) u32);

impl Pfn {
    /// The index as usize.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Physical memory shared by every address space of a machine.
#[derive(Debug)]
pub struct PhysMem {
    frames: HostRegion,
    /// Normal builds: zero-filled host memory read as `[PageMeta]` (all-zero is valid).
    #[cfg(not(any(loom, shuttle)))]
    metas: HostRegion,
    /// Model builds: the checkers' atomics cannot live in raw memory.
    #[cfg(any(loom, shuttle))]
    metas: Box<[PageMeta]>,
    /// Model builds: page-table entries live beside the frames (see `table_entry`).
    #[cfg(any(loom, shuttle))]
    tables: Box<[Box<[crate::sync::AtomicU64]>]>,
    nframes: u32,
    alloc: FrameAllocator,
    zero: Pfn,
    /// Pages committed by every address space and object over this memory
    /// (`vm_committed_as`, meminfo `Committed_AS`).
    committed: AtomicU64,
}

/// Entries per page-table page in model builds (the model geometry's table size).
#[cfg(any(loom, shuttle))]
pub const MODEL_TABLE_ENTRIES: usize = 4;

/// Frames per compound (PMD-sized) frame.
pub const HUGE_FRAMES: u32 = (HUGE_SIZE / PAGE_SIZE) as u32;

impl PhysMem {
    /// Reserve `bytes` of physical memory (rounded down to 2 MiB, at least 2 MiB).
    ///
    /// Returns `None` when the host refuses the reservation.
    pub fn new(bytes: u64) -> Option<Arc<Self>> {
        let chunk_bytes = CHUNK_FRAMES as u64 * PAGE_SIZE;
        let chunks =
            (bytes / chunk_bytes).clamp(1, u32::MAX as u64 / CHUNK_FRAMES as u64 - 1) as u32;
        let nframes = chunks * CHUNK_FRAMES;
        let frames = HostRegion::new(nframes as usize * PAGE_SIZE as usize, HUGE_SIZE as usize)?;
        #[cfg(not(any(loom, shuttle)))]
        let metas = HostRegion::new(
            nframes as usize * size_of::<PageMeta>(),
            align_of::<PageMeta>(),
        )?;
        #[cfg(any(loom, shuttle))]
        let metas = (0..nframes).map(|_| PageMeta::new()).collect();
        let mut pm = Self {
            frames,
            metas,
            #[cfg(any(loom, shuttle))]
            tables: (0..nframes)
                .map(|_| {
                    (0..MODEL_TABLE_ENTRIES)
                        .map(|_| crate::sync::AtomicU64::new(0))
                        .collect()
                })
                .collect(),
            nframes,
            alloc: FrameAllocator::new(chunks),
            zero: Pfn(0),
            committed: AtomicU64::new(0),
        };
        let zero = pm.alloc.alloc(pm.metas()).map(Pfn)?;
        let m = pm.meta(zero);
        m.init_allocated(PageFlags::ZERO);
        // The zero frame is never freed: its count never reaches 0 whatever maps it.
        m.set_refcount(u32::MAX / 2);
        pm.zero = zero;
        Some(Arc::new(pm))
    }

    /// The metadata array.
    #[cfg(any(loom, shuttle))]
    fn metas(&self) -> &[PageMeta] {
        &self.metas
    }

    /// The metadata array.
    #[cfg(not(any(loom, shuttle)))]
    fn metas(&self) -> &[PageMeta] {
        // SAFETY: `metas` holds `nframes` PageMeta-sized, aligned, zero-initialised slots;
        // all-zero is a valid PageMeta (meta.rs); every field is atomic so shared
        // references are fine; the region lives as long as `self`.
        unsafe {
            std::slice::from_raw_parts(
                self.metas.base().as_ptr().cast::<PageMeta>(),
                self.nframes as usize,
            )
        }
    }

    /// Pages committed (`vm_committed_as`): what the address spaces' accounted VMAs and
    /// the shmem objects charged.
    pub fn committed_pages(&self) -> u64 {
        // Relaxed: a statistic, and the overcommit heuristics read it racily in Linux
        // too (`percpu_counter_read_positive`).
        self.committed.load(Ordering::Relaxed)
    }

    /// Add `pages` to the committed total (`vm_acct_memory`).
    pub(crate) fn commit(&self, pages: u64) {
        // Relaxed: a counter (see `committed_pages`).
        self.committed.fetch_add(pages, Ordering::Relaxed);
    }

    /// Take `pages` off the committed total (`vm_unacct_memory`).
    pub(crate) fn uncommit(&self, pages: u64) {
        // Relaxed: a counter (see `committed_pages`).
        self.committed.fetch_sub(pages, Ordering::Relaxed);
    }

    /// Number of 4 KiB frames.
    pub fn nframes(&self) -> u32 {
        self.nframes
    }

    /// Metadata of `pfn`. Panics if `pfn` is out of range (a bug, not bad input).
    #[inline]
    pub(crate) fn meta(&self, pfn: Pfn) -> &PageMeta {
        #[cfg(any(loom, shuttle))]
        {
            &self.metas[pfn.index()]
        }
        #[cfg(not(any(loom, shuttle)))]
        {
            assert!(pfn.0 < self.nframes, "pfn {} out of range", pfn.0);
            let p = self
                .metas
                .base()
                .as_ptr()
                .cast::<PageMeta>()
                .wrapping_add(pfn.index());
            // SAFETY: as for `metas()`: `pfn < nframes` slots of zero-valid, aligned
            // PageMeta live as long as `self`, all fields atomic. One element is borrowed
            // rather than the whole array (which Miri would retag on every access).
            unsafe { &*p }
        }
    }

    /// Whether `pfn` designates a frame of this memory.
    pub fn valid(&self, pfn: Pfn) -> bool {
        pfn.0 < self.nframes
    }

    /// Pointer to the first byte of `pfn`, derived from the region base.
    #[inline]
    pub(crate) fn frame_ptr(&self, pfn: Pfn) -> NonNull<u8> {
        assert!(pfn.0 < self.nframes, "pfn {} out of range", pfn.0);
        debug_assert!(self.frames.len() >= (pfn.index() + 1) * PAGE_SIZE as usize);
        let p = self
            .frames
            .base()
            .as_ptr()
            .wrapping_add(pfn.index() * PAGE_SIZE as usize);
        NonNull::new(p).expect("frame pointer is inside a non-null region")
    }

    /// The frame whose first byte is `ptr` (what [`frame_ptr`](Self::frame_ptr) gave).
    #[inline]
    pub(crate) fn pfn_at(&self, ptr: NonNull<u8>) -> Pfn {
        let off = (ptr.as_ptr() as usize).wrapping_sub(self.frames.base().as_ptr() as usize);
        debug_assert!(
            off.is_multiple_of(PAGE_SIZE as usize)
                && off / (PAGE_SIZE as usize) < self.nframes as usize
        );
        Pfn((off / PAGE_SIZE as usize) as u32)
    }

    /// Entry `idx` of page-table page `pfn` (see [`TableMem::entry`]).
    ///
    /// # Safety
    ///
    /// As [`TableMem::entry`].
    #[inline]
    pub(crate) unsafe fn table_entry(&self, pfn: Pfn, idx: usize) -> &crate::sync::AtomicU64 {
        // SAFETY: the caller's contract is the callee's.
        unsafe { self.table_mem().entry(pfn, idx) }
    }

    /// Where page-table entries live, read once: a walk keeps it in registers across
    /// its loads (which the compiler may not move plain loads of `self` across).
    #[inline]
    pub(crate) fn table_mem(&self) -> TableMem<'_> {
        TableMem {
            #[cfg(not(any(loom, shuttle)))]
            base: self.frames.base(),
            #[cfg(not(any(loom, shuttle)))]
            nframes: self.nframes,
            #[cfg(any(loom, shuttle))]
            pm: self,
            _pm: std::marker::PhantomData,
        }
    }

    /// What model builds store in the entries of a freed table page, so that a walker
    /// that reads one (a protocol step removed) fails loudly instead of reading stale
    /// entries that look valid.
    #[cfg(any(loom, shuttle))]
    pub(crate) const TABLE_POISON: u64 = 0xdead_0000_0000_dead;

    /// Model builds: fill the entries of a table page about to be freed with
    /// [`TABLE_POISON`](Self::TABLE_POISON) (normal builds: nothing; the frame's next
    /// owner overwrites them).
    pub(crate) fn poison_table_entries(&self, _pfn: Pfn) {
        #[cfg(any(loom, shuttle))]
        for e in self.tables[_pfn.index()].iter() {
            // Relaxed: a walker that reads this is already wrong; ordering cannot help.
            e.store(Self::TABLE_POISON, Ordering::Relaxed);
        }
    }

    /// Zero the entries of a page about to become a page table (model builds only: in
    /// normal builds `alloc_zeroed` already zeroed the bytes that hold them).
    pub(crate) fn clear_table_entries(&self, _pfn: Pfn) {
        #[cfg(any(loom, shuttle))]
        for e in self.tables[_pfn.index()].iter() {
            // Relaxed: the page is not published yet; its Release install orders this.
            e.store(0, Ordering::Relaxed);
        }
    }

    /// The shared read-only zero frame.
    pub fn zero_pfn(&self) -> Pfn {
        self.zero
    }

    /// Allocate a 4 KiB frame with `flags`; contents unspecified.
    pub(crate) fn alloc(&self, flags: PageFlags) -> Option<FrameRef<'_>> {
        let pfn = Pfn(self.alloc.alloc(self.metas())?);
        self.meta(pfn).init_allocated(flags);
        // SAFETY: (1) `init_allocated` gave the frame its first reference, which we own.
        Some(unsafe { FrameRef::from_raw(self, pfn) })
    }

    /// Allocate a zero-filled 4 KiB frame with `flags`.
    pub(crate) fn alloc_zeroed(&self, flags: PageFlags) -> Option<FrameRef<'_>> {
        let frame = self.alloc(flags)?;
        // SAFETY: (1) the frame is PAGE_SIZE bytes inside the region; (2) we hold its only
        // reference and have not published it.
        unsafe { bytes::zero_exclusive(self.frame_ptr(frame.pfn()).as_ptr(), PAGE_SIZE as usize) };
        Some(frame)
    }

    /// Allocate a 2 MiB compound frame (head has `HEAD | flags`, tails `TAIL`), zeroed;
    /// the reference is the head's.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "compound frames back huge pages")
    )]
    pub(crate) fn alloc_huge_zeroed(&self, flags: PageFlags) -> Option<FrameRef<'_>> {
        let head = Pfn(self.alloc.alloc_huge(self.metas())?);
        for i in 1..HUGE_FRAMES {
            self.meta(Pfn(head.0 + i)).init_allocated(PageFlags::TAIL);
        }
        self.meta(head).init_allocated(PageFlags::HEAD | flags);
        // SAFETY: (1) 2 MiB inside the region from an aligned chunk start; (2) exclusive.
        unsafe { bytes::zero_exclusive(self.frame_ptr(head).as_ptr(), HUGE_SIZE as usize) };
        // SAFETY: (1) `init_allocated` gave the head its first reference, which we own.
        Some(unsafe { FrameRef::from_raw(self, head) })
    }

    /// A speculative reference to a frame found without a lock (increment unless zero).
    /// `None` when the frame is free; the caller re-checks where it found `pfn`, since the
    /// frame may have been freed and reallocated since. The zero frame always succeeds.
    #[inline]
    pub(crate) fn try_get(&self, pfn: Pfn) -> Option<FrameRef<'_>> {
        let m = self.meta(pfn);
        // SAFETY: (1) the increment succeeded (or the frame is the uncounted zero frame),
        // so we own the count it took.
        (m.has(PageFlags::ZERO) || m.try_get()).then(|| unsafe { FrameRef::from_raw(self, pfn) })
    }

    /// A further reference to a frame the caller knows to be alive.
    ///
    /// # Safety
    ///
    /// 1. `pfn` is allocated and stays so during the call: the caller holds a reference
    ///    to it, or a lock that keeps a counted mapping of it in place (the PTL of an
    ///    entry mapping it, the page map lock of a cache holding it).
    #[inline]
    pub(crate) unsafe fn get(&self, pfn: Pfn) -> FrameRef<'_> {
        let m = self.meta(pfn);
        if !m.has(PageFlags::ZERO) {
            m.get();
        }
        // SAFETY: (1) we just took the count (none for the zero frame, which puts ignore).
        unsafe { FrameRef::from_raw(self, pfn) }
    }

    /// Drop a reference to `pfn`; frees the frame (or compound frame) at zero.
    ///
    /// # Safety
    ///
    /// 1. The caller owns one reference count of `pfn` (an entry it cleared, a cache slot
    ///    it removed) and gives it up here.
    pub(crate) unsafe fn put(&self, pfn: Pfn) {
        let m = self.meta(pfn);
        if m.has(PageFlags::ZERO) {
            return;
        }
        if m.put_ref() {
            self.free_now(pfn);
        }
    }

    /// Return a frame whose reference count is zero to the allocator.
    fn free_now(&self, pfn: Pfn) {
        if self.meta(pfn).has(PageFlags::HEAD) {
            self.alloc.free_huge(self.metas(), pfn.0);
        } else {
            self.alloc.free(self.metas(), pfn.0);
        }
    }

    /// 4 KiB frames in use, including the zero frame (exact at quiescent points).
    pub fn frames_in_use(&self) -> u64 {
        self.alloc.in_use()
    }

    /// Copy bytes out of a frame (shared memory rules).
    ///
    /// # Safety
    ///
    /// 1. `pfn` stays allocated during the call: the caller holds a reference to it, or a
    ///    lock that keeps a counted mapping or cache slot of it in place. (A free frame
    ///    may be handed to an owner that zeroes it with plain stores.)
    pub(crate) unsafe fn read(&self, pfn: Pfn, offset: usize, dst: &mut [u8]) {
        assert!(offset + dst.len() <= PAGE_SIZE as usize);
        // SAFETY: (1) inside the frame, checked above; (2) frames are only accessed
        // through sync::bytes.
        unsafe { bytes::read(self.frame_ptr(pfn).as_ptr().wrapping_add(offset), dst) };
    }

    /// Copy bytes into a frame (shared memory rules).
    ///
    /// # Safety
    ///
    /// 1. As [`read`](Self::read).
    pub(crate) unsafe fn write(&self, pfn: Pfn, offset: usize, src: &[u8]) {
        assert!(offset + src.len() <= PAGE_SIZE as usize);
        assert!(
            !self.meta(pfn).has(PageFlags::ZERO),
            "write to the zero frame"
        );
        // SAFETY: (1) inside the frame, checked above; (2) atomic accesses only.
        unsafe { bytes::write(self.frame_ptr(pfn).as_ptr().wrapping_add(offset), src) };
    }

    /// Fill part of a frame with one byte value.
    ///
    /// # Safety
    ///
    /// 1. As [`read`](Self::read).
    pub(crate) unsafe fn fill(&self, pfn: Pfn, offset: usize, byte: u8, len: usize) {
        assert!(offset + len <= PAGE_SIZE as usize);
        assert!(
            !self.meta(pfn).has(PageFlags::ZERO),
            "write to the zero frame"
        );
        // SAFETY: (1) inside the frame, checked above; (2) atomic accesses only.
        unsafe { bytes::fill(self.frame_ptr(pfn).as_ptr().wrapping_add(offset), byte, len) };
    }

    /// Allocate a frame holding a copy of `src` (copy-on-write).
    ///
    /// `src` is a reference the caller holds: a free frame may be reallocated and written
    /// (non-atomically, `alloc_zeroed`) by its next owner while we copy. Model builds
    /// check it: the source is allocated before and after the copy.
    pub(crate) fn alloc_copy(&self, src: &FrameRef<'_>, flags: PageFlags) -> Option<FrameRef<'_>> {
        let copy = self.alloc(flags)?;
        let (src, dst) = (src.pfn(), copy.pfn());
        #[cfg(any(loom, shuttle))]
        assert!(
            dst != src && self.meta(src).refcount() > 0,
            "copying from a free frame"
        );
        // SAFETY: (1) two distinct frames of PAGE_SIZE bytes, page aligned (`dst` was
        // just allocated, `src` is held); (2) `src` is only accessed atomically
        // elsewhere; `dst` is exclusively ours (unpublished).
        unsafe {
            bytes::copy_to_exclusive(
                self.frame_ptr(dst).as_ptr(),
                self.frame_ptr(src).as_ptr(),
                PAGE_SIZE as usize,
            )
        };
        #[cfg(any(loom, shuttle))]
        assert!(
            self.meta(src).refcount() > 0,
            "the source frame was freed during the copy"
        );
        Some(copy)
    }
}

#[cfg(test)]
mod tests;

/// The page-table entries of a [`PhysMem`], as [`PhysMem::table_mem`] read them.
///
/// Normal builds keep entries in the frame's own bytes (x86-64 layout: 512 × u64), read
/// as `AtomicU64`s: page aligned, alive as long as the `PhysMem`, and only ever accessed
/// atomically. Model builds keep them in a side array of the checker's atomics (not
/// layout-compatible with u64) with a shrunken geometry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TableMem<'a> {
    #[cfg(not(any(loom, shuttle)))]
    base: NonNull<u8>,
    #[cfg(not(any(loom, shuttle)))]
    nframes: u32,
    #[cfg(any(loom, shuttle))]
    pm: &'a PhysMem,
    _pm: std::marker::PhantomData<&'a PhysMem>,
}

impl<'a> TableMem<'a> {
    /// Entry `idx` of page-table page `pfn`.
    ///
    /// # Safety
    ///
    /// 1. `pfn` is a page-table page, or was one when the caller reached it inside an RCU
    ///    read section (or a TLB access window) that is still open (a table is freed
    ///    only after those, so its bytes are not handed to an owner who writes them
    ///    plainly meanwhile).
    #[inline]
    pub(crate) unsafe fn entry(self, pfn: Pfn, idx: usize) -> &'a crate::sync::AtomicU64 {
        #[cfg(any(loom, shuttle))]
        {
            &self.pm.tables[pfn.index()][idx]
        }
        #[cfg(not(any(loom, shuttle)))]
        {
            assert!(idx < PAGE_SIZE as usize / 8 && pfn.0 < self.nframes);
            let p = self
                .base
                .as_ptr()
                .wrapping_add(pfn.index() * PAGE_SIZE as usize + idx * 8)
                .cast::<crate::sync::AtomicU64>();
            // SAFETY: `p` is 8-byte aligned (frames are page aligned) and inside the frame
            // region (bounds checked above), which lives for 'a; table memory is only
            // accessed through atomics; the std AtomicU64 has the layout of u64. A table
            // page freed and reused is still valid memory: (1) keeps it a table while
            // walkers that reached it run, and they re-validate what they read.
            unsafe { &*p }
        }
    }
}
