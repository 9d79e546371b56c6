//! Internals for the crate's own models, benchmarks and CLI measurements; not part of the
//! API (hidden from the docs, no stability promise).
//!
//! The concurrency models (`tests/models.rs`) run protocols on the production code and
//! need the layers below `mm` (physical memory, page tables, the VMA tree and its locks,
//! the `sync` facade the checkers replace); the micro-benchmarks time them. Nothing here
//! reaches frame bytes by a raw frame number, and what can break an invariant is `unsafe`.

use std::sync::Arc;

pub use crate::{
    frame::{FrameRef, Pfn, PhysMem},
    pgtable::{
        Gather, Geometry, LayoutLock, LayoutWrite, Level, Locked, Lockless, Model, PageTable, Pte,
        PteFlags, Semi, Tiny, Walk, X86_4K,
    },
    tlb::{CpuTlb, FlushRange, Hit, Perm, Shootdown},
    vma::{
        area::{Backing, Vma},
        lock::VmaLock,
        tree::VmaTree,
    },
};

/// The `sync` facade (std, loom or shuttle primitives, as the build selects).
pub mod sync {
    pub use crate::sync::{
        AtomicBool, AtomicI64, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, UnsafeCell,
        fence, rcu, spawn,
    };
}

/// A stand-in for `mmap_lock` held for write, for models and benchmarks that drive a
/// bare [`PageTable`] with no address space around it.
#[derive(Debug)]
pub struct AssumeLayoutHeld(());

impl AssumeLayoutHeld {
    /// # Safety
    ///
    /// While the value lives, at most one thread walks the page tables it is used for in
    /// `Semi` or `Locked` mode, or the walks that run at once never unlink tables
    /// (no `free_tables`): the guarantee [`LayoutWrite`] asks of `mmap_lock`.
    pub unsafe fn new() -> Self {
        Self(())
    }
}

// SAFETY: the constructor's contract is `LayoutWrite`'s.
unsafe impl LayoutLock for AssumeLayoutHeld {}
// SAFETY: as above.
unsafe impl LayoutWrite for AssumeLayoutHeld {}

/// An anonymous frame with unspecified contents.
pub fn alloc(pm: &PhysMem) -> Option<FrameRef<'_>> {
    pm.alloc(crate::frame::PageFlags::ANON)
}

/// A zero-filled anonymous frame (what a fault pays for memory before it maps it).
pub fn alloc_zeroed(pm: &PhysMem) -> Option<FrameRef<'_>> {
    pm.alloc_zeroed(crate::frame::PageFlags::ANON)
}

/// Fill the whole of `frame`, a reference the caller holds, with `byte`, as a new owner
/// writing a reused frame would.
///
/// # Panics
///
/// When `frame` is the zero frame.
pub fn fill_frame(frame: &FrameRef<'_>, byte: u8) {
    frame.pin().fill(0, byte, crate::addr::PAGE_SIZE as usize);
}

/// Frame number `n` (an identifier only: it reaches no bytes).
pub fn pfn(n: u32) -> Pfn {
    Pfn(n)
}

/// Store `value` in every page-table slot of `frame`, as a new owner writing a reused
/// page would (model builds keep a frame's table slots beside it).
///
/// # Panics
///
/// When `frame` belongs to another `PhysMem`.
pub fn scribble_table_slots(pm: &PhysMem, frame: &FrameRef<'_>, value: u64) {
    assert!(frame.belongs_to(pm), "a frame of another PhysMem");
    #[cfg(any(loom, shuttle))]
    let slots = crate::frame::MODEL_TABLE_ENTRIES;
    #[cfg(not(any(loom, shuttle)))]
    let slots = crate::addr::PAGE_SIZE as usize / 8;
    for i in 0..slots {
        // SAFETY: (1) the caller holds `frame`, a reference to a frame it owns alone: no
        // other thread writes its bytes plainly while these atomic stores run.
        let slot = unsafe { pm.table_entry(frame.pfn(), i) };
        slot.store(value, crate::sync::Ordering::SeqCst);
    }
}

/// Frames kept past the borrow of their memory (a benchmark keeps what it allocated until
/// its thread ends); dropped newest first, so the allocator hands the oldest out next.
#[derive(Debug)]
pub struct FrameStash {
    pm: Arc<PhysMem>,
    frames: Vec<Pfn>,
}

impl FrameStash {
    /// An empty stash for frames of `pm`.
    pub fn new(pm: &Arc<PhysMem>) -> Self {
        Self {
            pm: Arc::clone(pm),
            frames: Vec::new(),
        }
    }

    /// Keep `frame` (a reference to a frame of this stash's memory) until the stash drops.
    ///
    /// # Panics
    ///
    /// When `frame` belongs to another `PhysMem`.
    pub fn keep(&mut self, frame: FrameRef<'_>) {
        assert!(frame.belongs_to(&self.pm), "a frame of another PhysMem");
        self.frames.push(frame.into_raw());
    }
}

impl Drop for FrameStash {
    fn drop(&mut self) {
        for pfn in self.frames.drain(..).rev() {
            // SAFETY: (1) `keep` moved a reference's count into the stash.
            unsafe { self.pm.put(pfn) }
        }
    }
}
