//! Host memory regions: reserved up front, committed by the host kernel on first touch.
//!
//! Normal builds `mmap` anonymous memory with `MAP_NORESERVE` (pages that are never
//! touched cost nothing). Under Miri, which has no `mmap`, the region is a zeroed heap
//! allocation (tests shrink sizes under `cfg(miri)`).
//! Either way the region reads as zeros until written, which the metadata array relies on.

use std::ptr::NonNull;

/// An owned, zero-initialised host region whose base is aligned as requested.
#[derive(Debug)]
pub(crate) struct HostRegion {
    /// The whole reservation (what drop releases).
    raw: NonNull<u8>,
    total: usize,
    /// Aligned base inside the reservation, derived from `raw`.
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the region is plain memory owned by this value; all shared access to its
// contents goes through atomics (frame bytes, metadata), as their modules document.
unsafe impl Send for HostRegion {}
// SAFETY: as above; `&HostRegion` only hands out the base pointer.
unsafe impl Sync for HostRegion {}

impl HostRegion {
    /// Reserve `len` bytes (rounded up to a page), aligned to `align` (a power of two).
    pub(crate) fn new(len: usize, align: usize) -> Option<Self> {
        let len = len.max(1).next_multiple_of(4096);
        let align = align.max(4096);
        let total = len.checked_add(align)?;
        let raw = Self::reserve(total)?;
        let offset = raw.as_ptr().align_offset(align);
        let base = NonNull::new(raw.as_ptr().wrapping_add(offset))?;
        Some(Self {
            raw,
            total,
            base,
            len,
        })
    }

    #[cfg(not(miri))]
    fn reserve(total: usize) -> Option<NonNull<u8>> {
        // SAFETY: an anonymous private mapping with no address hint cannot alias any
        // existing Rust object; MAP_FAILED is checked below.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return None;
        }
        NonNull::new(raw.cast::<u8>())
    }

    #[cfg(miri)]
    fn reserve(total: usize) -> Option<NonNull<u8>> {
        let layout = std::alloc::Layout::from_size_align(total, 4096).ok()?;
        // SAFETY: the layout has a non-zero size.
        NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })
    }

    /// The aligned base; every pointer into the region is derived from it.
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// Usable length in bytes from [`base`](Self::base).
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for HostRegion {
    fn drop(&mut self) {
        #[cfg(not(miri))]
        // SAFETY: `raw, total` is exactly the reservation made in `reserve`; no reference
        // into it outlives `self` (users borrow the region through `&self`).
        unsafe {
            libc::munmap(self.raw.as_ptr().cast(), self.total);
        }
        #[cfg(miri)]
        // SAFETY: allocated in `reserve` with this exact layout.
        unsafe {
            std::alloc::dealloc(
                self.raw.as_ptr(),
                std::alloc::Layout::from_size_align_unchecked(self.total, 4096),
            );
        }
    }
}
