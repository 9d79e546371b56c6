//! Borrowed access to a frame's bytes while something else keeps the frame allocated.
//!
//! A [`FramePin`] takes no count: whoever makes one proves that the frame stays
//! allocated for its lifetime. Two proofs exist: a [`FrameRef`](super::FrameRef) borrowed
//! for that long ([`FrameRef::pin`](super::FrameRef::pin)), or a CPU's open TLB access
//! window holding a translation to the frame cached since the window's last flush (frames
//! are freed only after every CPU that may cache a translation to them has flushed; see
//! `tlb`). Every access goes through `sync::bytes` (relaxed atomics), as all access to
//! frames another thread can reach does.

use std::ptr::NonNull;

use super::{PageFlags, Pfn, PhysMem};
use crate::addr::PAGE_SIZE;

/// A frame's bytes, reachable while `'a` lasts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FramePin<'a> {
    pm: &'a PhysMem,
    /// The frame's first byte (`pm.frame_ptr` of the frame).
    ptr: NonNull<u8>,
}

impl<'a> FramePin<'a> {
    /// # Safety
    ///
    /// 1. `pfn` is a frame of `pm` that stays allocated (is not freed and handed to
    ///    another owner) for all of `'a`.
    #[inline]
    pub(crate) unsafe fn new(pm: &'a PhysMem, pfn: Pfn) -> Self {
        Self {
            pm,
            ptr: pm.frame_ptr(pfn),
        }
    }

    /// As [`new`](Self::new), for the frame whose bytes start at `ptr` (a TLB caches it).
    ///
    /// # Safety
    ///
    /// As [`new`](Self::new), and `ptr` is `pm.frame_ptr` of that frame.
    #[inline]
    pub(crate) unsafe fn at(pm: &'a PhysMem, ptr: NonNull<u8>) -> Self {
        Self { pm, ptr }
    }

    /// The frame number.
    #[inline]
    pub(crate) fn pfn(&self) -> Pfn {
        self.pm.pfn_at(self.ptr)
    }

    /// Copy `dst.len()` bytes from `offset`.
    ///
    /// # Panics
    ///
    /// When `offset + dst.len()` is past the end of the 4 KiB frame.
    #[inline]
    pub(crate) fn read(&self, offset: usize, dst: &mut [u8]) {
        self.check_allocated();
        // SAFETY: (1) allocated for 'a (the constructor's contract).
        unsafe { self.pm.read(self.pfn(), offset, dst) };
        self.check_allocated();
    }

    /// Model builds check the constructor's contract where the models can break it (a
    /// TLB protocol step removed): a pinned frame is allocated before and after each use.
    #[inline]
    fn check_allocated(&self) {
        #[cfg(any(loom, shuttle))]
        assert!(
            self.pm.meta(self.pfn()).refcount() > 0
                || self.pm.meta(self.pfn()).has(PageFlags::ZERO),
            "a pinned frame was freed"
        );
    }

    /// Copy `src` into the frame at `offset`.
    ///
    /// # Panics
    ///
    /// When the range is past the end of the frame, or this is the zero frame.
    #[inline]
    pub(crate) fn write(&self, offset: usize, src: &[u8]) {
        self.check_allocated();
        // SAFETY: (1) as in `read`.
        unsafe { self.pm.write(self.pfn(), offset, src) };
        self.check_allocated();
    }

    /// Store `len` copies of `byte` at `offset`.
    ///
    /// # Panics
    ///
    /// As [`write`](Self::write).
    pub(crate) fn fill(&self, offset: usize, byte: u8, len: usize) {
        // SAFETY: (1) as in `read`.
        unsafe { self.pm.fill(self.pfn(), offset, byte, len) }
    }

    /// Load the aligned little-endian `u64` at `offset` (one relaxed atomic load).
    ///
    /// # Panics
    ///
    /// When `offset` is not a multiple of 8 inside the frame.
    #[inline]
    pub(crate) fn load_u64(&self, offset: usize) -> u64 {
        assert!(offset.is_multiple_of(8) && offset < PAGE_SIZE as usize);
        self.check_allocated();
        let p = self.ptr.as_ptr().wrapping_add(offset);
        // SAFETY: (1) inside this frame and aligned (checked above), allocated for 'a;
        // (2) frames are only accessed through sync::bytes.
        let w = unsafe { crate::sync::bytes::word_u64(p) };
        u64::from_le(w.load(core::sync::atomic::Ordering::Relaxed))
    }

    /// Store `v` as the aligned little-endian `u64` at `offset` (one relaxed atomic
    /// store). The caller holds a write translation, which never maps the zero frame.
    ///
    /// # Panics
    ///
    /// As [`load_u64`](Self::load_u64).
    #[inline]
    pub(crate) fn store_u64(&self, offset: usize, v: u64) {
        assert!(offset.is_multiple_of(8) && offset < PAGE_SIZE as usize);
        debug_assert!(!self.pm.meta(self.pfn()).has(PageFlags::ZERO));
        let p = self.ptr.as_ptr().wrapping_add(offset);
        // SAFETY: as in `load_u64`.
        let w = unsafe { crate::sync::bytes::word_u64(p) };
        w.store(v.to_le(), core::sync::atomic::Ordering::Relaxed);
    }

    /// The aligned 8-byte guest word at `offset`, for a guest atomic operation.
    ///
    /// # Panics
    ///
    /// When `offset` is not a multiple of 8 or this is the zero frame.
    pub(crate) fn word_u64(&self, offset: usize) -> &'a core::sync::atomic::AtomicU64 {
        let p = self.word_ptr(offset, 8);
        // SAFETY: (1) inside this frame and aligned (checked by `word_ptr`), allocated
        // for 'a; (2) frames are only accessed through sync::bytes.
        unsafe { crate::sync::bytes::word_u64(p) }
    }

    /// As [`word_u64`](Self::word_u64), for a 4-byte word.
    pub(crate) fn word_u32(&self, offset: usize) -> &'a core::sync::atomic::AtomicU32 {
        let p = self.word_ptr(offset, 4);
        // SAFETY: as in `word_u64`.
        unsafe { crate::sync::bytes::word_u32(p) }
    }

    fn word_ptr(&self, offset: usize, size: usize) -> *mut u8 {
        assert!(offset.is_multiple_of(size) && offset + size <= PAGE_SIZE as usize);
        assert!(
            !self.pm.meta(self.pfn()).has(PageFlags::ZERO),
            "a guest atomic on the zero frame"
        );
        self.ptr.as_ptr().wrapping_add(offset)
    }
}
