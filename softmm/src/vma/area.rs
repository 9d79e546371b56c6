//! The immutable VMA.
//!
//! A VMA's range, flags, page offset and backing never change once it is in the tree
//! (design decision 5): mprotect, split, merge and mremap build new VMAs and replace the
//! old ones, which are marked detached and freed through RCU. The one exception is the
//! anon identity ([`AnonId`]), which a fault sets once, from none to some, under the
//! `mmap_lock` read side, as Linux's `anon_vma_prepare`.

use std::sync::Arc;

use super::{flags::*, lock::VmaLock};
use crate::addr::PageAddr;
use crate::{
    file::OpenFile,
    pagecache::PageCache,
    sync::{AtomicU64, Ordering},
};

/// The identity of the anonymous memory of a VMA (Linux `anon_vma`), a non-zero id.
/// VMAs split from one another share it; two VMAs with different identities never
/// merge. It is set once, by the first write fault, with a compare-exchange (a plain
/// atomic so the model checkers see it: a blocking `OnceLock` would hide a wait).
pub type AnonId = u64;

/// Bit 63 of an [`AnonId`] marks an identity created by fork for a child VMA whose
/// parent had anonymous pages: the VMA "had uncowed parents" (its `anon_vma_chain` is
/// not singular), so it never merges with a VMA without identity, and its identity is
/// not reused by a neighbour's first fault (Linux `vma_had_uncowed_parents`,
/// `reusable_anon_vma`).
pub const ANON_FORKED: AnonId = 1 << 63;

/// What backs a VMA's pages.
#[derive(Debug, Clone)]
pub enum Backing {
    /// Private anonymous memory (zero-filled on demand).
    Anon,
    /// Private anonymous memory that keeps the file it was mapped from, which maps shows
    /// and which merging compares: a private mapping of `/dev/zero` (`vma_set_anonymous`
    /// leaves `vm_file` set).
    AnonFile(Arc<OpenFile>),
    /// An open file (`vm_file`): a file, a memfd, or the shmem object behind shared
    /// anonymous memory (Linux's `shmem_zero_setup` gives those a file too).
    File(Arc<OpenFile>),
}

impl Backing {
    /// Same backing for merging: both anonymous, or the same open file (`vm_file ==
    /// file`: two opens of one path are different files and never merge).
    pub(crate) fn same(&self, other: &Backing) -> bool {
        match (self, other) {
            (Backing::Anon, Backing::Anon) => true,
            (Backing::File(a), Backing::File(b)) | (Backing::AnonFile(a), Backing::AnonFile(b)) => {
                Arc::ptr_eq(a, b)
            }
            _ => false,
        }
    }

    /// The memory object of a file backing.
    pub fn object(&self) -> Option<&Arc<PageCache>> {
        match self {
            Backing::Anon | Backing::AnonFile(_) => None,
            Backing::File(f) => Some(&f.object),
        }
    }
}

/// A virtual memory area `[start, end)`.
#[derive(Debug)]
pub struct Vma {
    /// First address.
    pub start: PageAddr,
    /// One past the last address.
    pub end: PageAddr,
    /// `vm_flags` (see [`super::flags`]).
    pub flags: VmFlags,
    /// Page offset of `start` in the backing object (anon: the page number of `start` at creation).
    pub pgoff: u64,
    /// The backing object.
    pub backing: Backing,
    /// [`AnonId`], 0 while none.
    anon: AtomicU64,
    /// The per-VMA lock (fault fast path).
    pub(crate) lock: VmaLock,
}

impl Vma {
    /// A new VMA with no anon identity yet.
    pub fn new(
        start: PageAddr,
        end: PageAddr,
        flags: VmFlags,
        pgoff: u64,
        backing: Backing,
    ) -> Self {
        debug_assert!(start < end);
        Self {
            start,
            end,
            flags,
            pgoff,
            backing,
            anon: AtomicU64::new(0),
            lock: VmaLock::new(),
        }
    }

    /// A copy of this VMA's attributes over `[start, end)` (a part of it, or an
    /// extension of it) with `flags`, keeping the page offset continuous and the anon
    /// identity shared.
    pub fn derive(&self, start: PageAddr, end: PageAddr, flags: VmFlags) -> Self {
        let pgoff = self.pgoff_at(start);
        let v = Self::new(start, end, flags, pgoff, self.backing.clone());
        v.set_anon(self.anon());
        v
    }

    /// Page offset that page `page` has in this VMA's object (it may lie outside the
    /// VMA: the offset continues the VMA's).
    pub fn pgoff_at(&self, page: PageAddr) -> u64 {
        (self.pgoff as i64 + (page.vpn() as i64 - self.start.vpn() as i64)) as u64
    }

    /// Length in bytes.
    #[expect(clippy::len_without_is_empty, reason = "a VMA is never empty")]
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether `addr` lies inside.
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// The anon identity, if a fault created one.
    pub fn anon(&self) -> Option<AnonId> {
        // Acquire pairs with the AcqRel CAS of `anon_prepare` / the store of `set_anon`.
        match self.anon.load(Ordering::Acquire) {
            0 => None,
            id => Some(id),
        }
    }

    /// The anon identity, created with `id` if there is none yet (concurrent faults
    /// agree on one: the first compare-exchange wins).
    pub fn anon_prepare(&self, id: impl FnOnce() -> u64) -> AnonId {
        if let Some(cur) = self.anon() {
            return cur;
        }
        let new = id();
        debug_assert_ne!(new, 0);
        // AcqRel: publishes the identity; on failure Acquire reads the winner's.
        match self
            .anon
            .compare_exchange(0, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => new,
            Err(winner) => winner,
        }
    }

    /// Give this (new, unpublished) VMA the identity `a`.
    pub fn set_anon(&self, a: Option<AnonId>) {
        if let Some(a) = a {
            // Release pairs with `anon`'s Acquire; only unpublished VMAs (or one
            // still without identity) are given one, so losing the race is fine.
            let _ = self
                .anon
                .compare_exchange(0, a, Ordering::Release, Ordering::Relaxed);
        }
    }

    /// Whether this is private anonymous memory (`vma_is_anonymous`).
    pub fn is_anon(&self) -> bool {
        matches!(self.backing, Backing::Anon | Backing::AnonFile(_))
    }

    /// Whether the VMA is shared (`MAP_SHARED`).
    pub fn is_shared(&self) -> bool {
        self.flags.intersects(VM_SHARED)
    }

    /// The maps permission string, e.g. `rw-p`.
    pub fn perms(&self) -> String {
        let f = self.flags;
        let mut s = String::with_capacity(4);
        s.push(if f.intersects(VM_READ) { 'r' } else { '-' });
        s.push(if f.intersects(VM_WRITE) { 'w' } else { '-' });
        s.push(if f.intersects(VM_EXEC) { 'x' } else { '-' });
        s.push(if f.intersects(VM_MAYSHARE) { 's' } else { 'p' });
        s
    }

    /// Mark removed from the tree (it may still be read by RCU readers): once this
    /// returns, no fault can read-lock it any more (see [`VmaLock::detach`]).
    pub fn mark_detached(&self) {
        self.lock.detach();
    }

    /// Whether it was removed from the tree.
    pub fn is_detached(&self) -> bool {
        self.lock.is_detached()
    }

    /// Whether a VMA `[self.end, ...)` with `flags`, `backing`, first page offset
    /// `pgoff` and anon identity `anon` may merge after this one (Linux
    /// `can_vma_merge_after` + `is_mergeable_vma` + `is_mergeable_anon_vma`).
    pub fn can_merge_after(
        &self,
        flags: VmFlags,
        backing: &Backing,
        pgoff: u64,
        anon: Option<AnonId>,
    ) -> bool {
        mergeable(self.flags, flags)
            && self.backing.same(backing)
            && anon_compatible(self.anon(), anon)
            && self.pgoff + self.start.pages_to(self.end) == pgoff
    }

    /// Whether a VMA ending at `self.start`, with `flags`, `backing`, anon identity
    /// `anon` and `npages` pages starting at page offset `pgoff`, may merge before this.
    pub fn can_merge_before(
        &self,
        flags: VmFlags,
        backing: &Backing,
        pgoff: u64,
        npages: u64,
        anon: Option<AnonId>,
    ) -> bool {
        mergeable(self.flags, flags)
            && self.backing.same(backing)
            && anon_compatible(self.anon(), anon)
            && pgoff + npages == self.pgoff
    }
}

/// Flags equal (sticky flags ignored) and not special.
fn mergeable(a: VmFlags, b: VmFlags) -> bool {
    ((a ^ b) - VM_STICKY).is_empty() && !a.intersects(VM_SPECIAL)
}

/// Both none, identical, or exactly one set and that one not inherited through fork
/// (Linux `is_mergeable_anon_vma`).
pub fn anon_compatible(a: Option<AnonId>, b: Option<AnonId>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x == y,
        (Some(x), None) | (None, Some(x)) => x & ANON_FORKED == 0,
        (None, None) => true,
    }
}
