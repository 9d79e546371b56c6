//! Owned frame references.
//!
//! A [`FrameRef`] holds one reference count of a frame and puts it when dropped, so a
//! frame cannot be freed (and reused by another owner) while a `FrameRef` to it exists.
//! Counts are taken in three ways, and each constructor says which:
//!
//! 1. a fresh allocation comes with its first reference (`PhysMem::alloc*`);
//! 2. a speculative reference on a frame found without a lock is an increment-unless-zero
//!    ([`PhysMem::try_get`]): it fails on a free frame, and the finder re-checks the entry
//!    it came from, since the frame may have been freed and reused in between;
//! 3. a further reference on a frame known to be alive ([`FrameRef::clone`], or
//!    [`PhysMem::get`] under a lock that keeps a mapping of it in place).
//!
//! A count can move into a page-table entry (a mapping owns one) with
//! [`FrameRef::into_raw`] and back out with [`FrameRef::from_raw`]. The shared zero
//! frame is never counted: references to it are free.

use std::{fmt, mem::ManuallyDrop};

use super::{FramePin, Pfn, PhysMem};

/// One owned reference to a frame of a [`PhysMem`]: the frame stays allocated (its bytes
/// are not reused by another owner) until this is dropped.
#[must_use = "dropping a FrameRef releases the frame"]
pub struct FrameRef<'pm> {
    pm: &'pm PhysMem,
    pfn: Pfn,
}

impl<'pm> FrameRef<'pm> {
    /// Take ownership of a count the caller holds on `pfn`.
    ///
    /// # Safety
    ///
    /// 1. The caller owns one reference count of `pfn` in `pm` (from an allocation, a
    ///    mapping it removed, or an earlier `into_raw`), which the returned value takes
    ///    over; the caller must not put that count itself.
    #[inline]
    pub(crate) unsafe fn from_raw(pm: &'pm PhysMem, pfn: Pfn) -> Self {
        Self { pm, pfn }
    }

    /// Give up ownership of the count without putting it (it moves into a mapping, or to
    /// a caller that will put it by other means; otherwise the frame leaks).
    #[inline]
    pub fn into_raw(self) -> Pfn {
        ManuallyDrop::new(self).pfn
    }

    /// The frame number (an identifier: it reaches no bytes by itself).
    #[inline]
    pub fn pfn(&self) -> Pfn {
        self.pfn
    }

    /// Whether this is a frame of `pm`.
    pub(crate) fn belongs_to(&self, pm: &PhysMem) -> bool {
        std::ptr::eq(self.pm, pm)
    }

    /// Whether this is the shared zero frame.
    #[inline]
    pub fn is_zero_frame(&self) -> bool {
        self.pfn == self.pm.zero_pfn()
    }

    /// Copy `dst.len()` bytes of the frame from `offset` (relaxed atomic loads: another
    /// thread may write the frame at the same time).
    ///
    /// # Panics
    ///
    /// When `offset + dst.len()` is past the end of the 4 KiB frame.
    pub fn read(&self, offset: usize, dst: &mut [u8]) {
        self.pin().read(offset, dst);
    }

    /// The frame's bytes, for as long as this reference is borrowed.
    #[inline]
    pub(crate) fn pin(&self) -> FramePin<'_> {
        // SAFETY: (1) we hold a reference to `pfn`, so it stays allocated while `self`
        // is borrowed.
        unsafe { FramePin::new(self.pm, self.pfn) }
    }
}

impl Clone for FrameRef<'_> {
    /// Another reference to the same frame (an increment: the frame is alive, we hold it).
    fn clone(&self) -> Self {
        // SAFETY: (1) we hold a reference to `pfn`, so it stays allocated.
        unsafe { self.pm.get(self.pfn) }
    }
}

impl Drop for FrameRef<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: (1) this value owns one count of `pfn` (every constructor took one).
        unsafe { self.pm.put(self.pfn) }
    }
}

impl fmt::Debug for FrameRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FrameRef").field(&self.pfn.0).finish()
    }
}
