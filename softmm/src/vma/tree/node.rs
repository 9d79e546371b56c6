//! Node layout: leaves of VMAs and internal nodes of children with their gap
//! summaries, and the operations on one node (search, insert, remove, split, copy).
//!
//! A node is a `Leaf` or an `Internal`, both `#[repr(C)]` with a [`Header`] first, and
//! is handled through a `ptr::NodePtr` (a pointer to that header, derived from the
//! allocation of the whole node so that it may be cast back). Its height (0 for a leaf)
//! never changes.
//!
//! Two states, told apart by the header's generation (see the module docs of `tree`):
//! * **private**: allocated by the pending edit whose generation it carries; reachable
//!   from no published root; the edit reads and writes it through `NodePtr::get_mut`.
//! * **published** (or retired): immutable until freed; anyone holding an RCU guard
//!   taken before it was retired reads it through a `ptr::NodeRef`.
//!
//! Unused slots keep the search keys (`Leaf::start`, `Internal::first`) at `u64::MAX`,
//! so a rank can scan the whole fixed-size array without looking at the length first.

use std::{
    mem::{self, ManuallyDrop, MaybeUninit},
    sync::Arc,
};

use super::{
    super::{Vma, flags::VM_GROWSDOWN},
    ptr::NodePtr,
};
#[cfg(any(loom, shuttle))]
use crate::sync::{AtomicU64, Ordering};

/// Entries (VMAs of a leaf, children of an internal node) per node. 16 measured best
/// for lookups and edits (`benches/vma_tree.rs`); unit tests and models use 4, so that
/// five VMAs already split a leaf and a few dozen make a tree four levels deep.
pub(super) const CAP: usize = if cfg!(any(test, loom, shuttle)) {
    4
} else {
    16
};

/// Fewest entries of a node other than the root (a root may hold fewer; an internal
/// root holds at least 2). With `MIN >= 2` the height is at most `log2(VMAs) + 1`.
pub(super) const MIN: usize = if CAP / 4 > 2 { CAP / 4 } else { 2 };

/// Levels the fixed-size paths and cursors hold: a non-root node has at least `MIN`
/// entries, so this many levels hold more than 2^40 VMAs (a root split past it panics).
pub(super) const MAX_HEIGHT: usize = if MIN >= 4 { 24 } else { 44 };

/// Value of the canary of a freed node (models only).
#[cfg(any(loom, shuttle))]
pub(super) const POISON: u64 = 0xdead_dead;
/// Value of the canary of a live node (models only).
#[cfg(any(loom, shuttle))]
const ALIVE: u64 = 0xa11e;

/// Keys per group of a rank: about `sqrt(CAP)` (a power of two).
const GROUP: usize = 1 << (CAP.trailing_zeros() / 2);

/// Number of `keys[..len]` for which `below` holds, where `below` holds of a prefix of
/// the array (`keys` ascend; unused slots hold `u64::MAX`, for which `below` holds only
/// when searching for `u64::MAX` itself, hence the clamp to `len`).
///
/// Two rounds of independent loads instead of a binary search's `log2(CAP)` dependent
/// ones (what a lookup's time goes to, one node per level): the last key of every group
/// but the last says which group the boundary falls in, then the keys of that group say
/// where. Every comparison is turned into a count, so no branch depends on a key.
#[inline(always)]
fn rank(keys: &[u64; CAP], len: usize, below: impl Fn(u64) -> bool) -> usize {
    let mut group = 0;
    for g in 1..CAP / GROUP {
        group += usize::from(below(keys[g * GROUP - 1]));
    }
    let base = group * GROUP;
    let mut r = base;
    for k in &keys[base..base + GROUP] {
        r += usize::from(below(*k));
    }
    r.min(len)
}

/// Number of `keys[..len]` that are `<= key`.
#[inline(always)]
fn rank_le(keys: &[u64; CAP], len: usize, key: u64) -> usize {
    rank(keys, len, |k| k <= key)
}

/// Number of `keys[..len]` that are `< key`.
#[inline(always)]
fn rank_lt(keys: &[u64; CAP], len: usize, key: u64) -> usize {
    rank(keys, len, |k| k < key)
}

const _: () = assert!(CAP.is_power_of_two() && CAP < Mask::BITS as usize);

/// A set of entry indices of one node (bit `i`: entry `i`), for the guard masks.
type Mask = u32;

/// `mask` with a bit `bit` inserted at `i`: the bits from `i` up move one higher.
fn mask_insert(mask: Mask, i: usize, bit: bool) -> Mask {
    let low = mask & ((1 << i) - 1);
    ((mask & !low) << 1) | low | (Mask::from(bit) << i)
}

/// `mask` without bit `i`: the bits above it move one lower.
fn mask_remove(mask: Mask, i: usize) -> Mask {
    let low = mask & ((1 << i) - 1);
    ((mask >> 1) & !((1 << i) - 1)) | low
}

/// The lowest bit of `mask` at or above `i` (`i <= CAP`).
fn mask_next(mask: Mask, i: usize) -> Option<usize> {
    let m = mask & !((1 << i) - 1);
    (m != 0).then(|| m.trailing_zeros() as usize)
}

/// The bits `from..len` of `mask`, moved down to start at 0.
fn mask_tail(mask: Mask, from: usize, len: usize) -> Mask {
    (mask >> from) & ((1u64 << (len - from)) - 1) as Mask
}

/// What a parent keeps about each child: enough to search it by address and to find
/// free gaps without entering it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Summary {
    /// Start of the first VMA of the subtree.
    pub(super) first: u64,
    /// End of the last VMA of the subtree.
    pub(super) last_end: u64,
    /// Largest `next.start - prev.end` over consecutive VMAs of the subtree (0 when it
    /// holds one VMA); the gaps at its edges belong to the parent.
    pub(super) gap: u64,
    /// Whether a VMA of the subtree is `VM_GROWSDOWN`: only such a VMA may claim a
    /// guard gap below its start, so a placement search skips subtrees without one.
    pub(super) guarded: bool,
}

/// The first fields of every node.
#[repr(C)]
#[derive(Debug)]
pub(super) struct Header {
    /// 0 for a leaf; an internal node is one higher than its children.
    height: u32,
    /// Entries in use.
    len: u32,
    /// Generation of the edit that allocated the node.
    generation: u64,
    /// VMAs in the whole tree: set in the root by `commit`, meaningless elsewhere.
    total: u64,
    /// [`ALIVE`] until freed, then [`POISON`]: readers assert it on every node they
    /// enter, so a model sees a node freed under a reader (freed nodes are leaked in
    /// model builds, so the check itself reads valid memory).
    #[cfg(any(loom, shuttle))]
    canary: AtomicU64,
}

impl Header {
    fn new(height: u32, generation: u64) -> Self {
        Self {
            height,
            len: 0,
            generation,
            total: 0,
            #[cfg(any(loom, shuttle))]
            canary: AtomicU64::new(ALIVE),
        }
    }

    /// Entries in use.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len as usize
    }

    /// 0 for a leaf.
    #[inline]
    pub(super) fn height(&self) -> u32 {
        self.height
    }

    /// Generation of the edit that allocated the node.
    #[inline]
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Turn the header of a bitwise copy into that of a private copy for the edit of
    /// generation `generation` (what `Leaf::copy` and `Internal::copy` build).
    #[cfg(not(any(loom, shuttle)))]
    pub(super) fn make_copy(&mut self, generation: u64) {
        self.generation = generation;
        self.total = 0;
    }

    /// Set the VMA count (of a private root, about to be published).
    pub(super) fn set_total(&mut self, total: u64) {
        self.total = total;
    }

    /// Assert that the node was not freed (models only: freed nodes are leaked there).
    #[cfg(any(loom, shuttle))]
    #[inline]
    pub(super) fn check_alive(&self) {
        // Acquire: pairs with the Release in `poison`, so that a reader that sees the
        // node alive read it before anything the freeing thread did after.
        assert_ne!(
            self.canary.load(Ordering::Acquire),
            POISON,
            "an RCU reader reached a freed VMA-tree node"
        );
    }

    /// Mark the node freed (models only).
    #[cfg(any(loom, shuttle))]
    pub(super) fn poison(&self) {
        // Release: pairs with the Acquire of `check_alive`.
        self.canary.store(POISON, Ordering::Release);
    }

    /// VMAs in the tree (valid in a published root).
    pub(super) fn total(&self) -> u64 {
        self.total
    }
}

/// A leaf: up to [`CAP`] VMAs in address order, with their bounds inline so that
/// searches do not touch the VMAs themselves.
///
/// The slots hold `Arc`s that own no count of their own (see "VMA references" in the
/// module docs of `tree`): copying a leaf copies them bitwise, freeing a leaf drops
/// nothing, so neither touches the VMAs.
#[repr(C)]
#[derive(Debug)]
pub(super) struct Leaf {
    hdr: Header,
    /// `vma[i].start`; `u64::MAX` past `len`.
    start: [u64; CAP],
    /// `vma[i].end`.
    end: [u64; CAP],
    /// The VMAs; initialized below `len`.
    vma: [MaybeUninit<Arc<Vma>>; CAP],
    /// Entries whose VMA is `VM_GROWSDOWN` (none at or above `len`).
    guarded: Mask,
}

/// An internal node: up to [`CAP`] children in address order with their summaries.
#[repr(C)]
#[derive(Debug)]
pub(super) struct Internal {
    hdr: Header,
    /// `Summary::first` of each child (the search key); `u64::MAX` past `len`.
    first: [u64; CAP],
    /// `Summary::last_end` of each child.
    last_end: [u64; CAP],
    /// `Summary::gap` of each child.
    gap: [u64; CAP],
    /// The children (dangling past `len`).
    child: [NodePtr; CAP],
    /// Children whose `Summary::guarded` holds (none at or above `len`).
    guarded: Mask,
}

impl Leaf {
    /// An empty leaf of generation `generation`.
    pub(super) fn new(generation: u64) -> Self {
        Self {
            hdr: Header::new(0, generation),
            start: [u64::MAX; CAP],
            end: [0; CAP],
            vma: [const { MaybeUninit::uninit() }; CAP],
            guarded: 0,
        }
    }

    /// Entries in use.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.hdr.len()
    }

    /// Bounds of entry `i < len`.
    #[inline]
    pub(super) fn range(&self, i: usize) -> (u64, u64) {
        (self.start[i], self.end[i])
    }

    /// VMA of entry `i < len`.
    #[inline]
    pub(super) fn vma(&self, i: usize) -> &Arc<Vma> {
        assert!(i < self.len());
        // SAFETY: slots below `len` are initialized (`insert` and `append_from` fill
        // them, `remove` and `append_from` move them down), and the VMA they point to
        // lives at least as long as any version holding the slot can be read (the
        // tree's counts are dropped only after a grace period, `tree` module docs).
        unsafe { self.vma[i].assume_init_ref() }
    }

    /// Number of entries starting at or below `addr`.
    #[inline]
    pub(super) fn rank_le(&self, addr: u64) -> usize {
        rank_le(&self.start, self.len(), addr)
    }

    /// The first entry at or after `i` whose VMA is `VM_GROWSDOWN`.
    #[inline]
    pub(super) fn next_guarded(&self, i: usize) -> Option<usize> {
        mask_next(self.guarded, i)
    }

    /// Number of entries starting below `addr`.
    #[inline]
    pub(super) fn rank_lt(&self, addr: u64) -> usize {
        rank_lt(&self.start, self.len(), addr)
    }

    /// The summary (`len >= 1`).
    pub(super) fn summary(&self) -> Summary {
        let n = self.len();
        debug_assert!(n > 0, "summary of an empty leaf");
        let gap = (1..n)
            .map(|i| self.start[i] - self.end[i - 1])
            .max()
            .unwrap_or(0);
        Summary {
            first: self.start[0],
            last_end: self.end[n - 1],
            gap,
            guarded: self.guarded != 0,
        }
    }

    /// A private copy for the edit of generation `generation` (the VMAs are shared).
    /// Model builds only: elsewhere `NodePtr::copy` copies in place.
    #[cfg(any(loom, shuttle))]
    pub(super) fn copy(&self, generation: u64) -> Self {
        let mut hdr = Header::new(0, generation);
        hdr.len = self.hdr.len;
        Self {
            hdr,
            start: self.start,
            end: self.end,
            // SAFETY: a bitwise copy of `MaybeUninit`s (no drop runs twice: slots never
            // drop); the copy's slots point to the same VMAs, which outlive both.
            vma: unsafe { std::ptr::read(&self.vma) },
            guarded: self.guarded,
        }
    }

    /// Insert `vma` as entry `i` (`len < CAP`).
    pub(super) fn insert(&mut self, i: usize, vma: Arc<Vma>) {
        let n = self.len();
        assert!(n < CAP && i <= n);
        self.start.copy_within(i..n, i + 1);
        self.end.copy_within(i..n, i + 1);
        self.vma[i..=n].rotate_right(1);
        self.start[i] = vma.start.get();
        self.end[i] = vma.end.get();
        self.guarded = mask_insert(self.guarded, i, vma.flags.intersects(VM_GROWSDOWN));
        self.vma[i] = MaybeUninit::new(vma);
        self.hdr.len += 1;
    }

    /// Remove entry `i < len`; the returned copy owns no count until the caller says
    /// so (see "VMA references" in the module docs of `tree`).
    pub(super) fn remove(&mut self, i: usize) -> ManuallyDrop<Arc<Vma>> {
        let n = self.len();
        assert!(i < n);
        let v = mem::replace(&mut self.vma[i], MaybeUninit::uninit());
        self.vma[i..n].rotate_left(1);
        self.start.copy_within(i + 1..n, i);
        self.end.copy_within(i + 1..n, i);
        self.start[n - 1] = u64::MAX;
        self.guarded = mask_remove(self.guarded, i);
        self.hdr.len -= 1;
        // SAFETY: `i < len` was initialized.
        ManuallyDrop::new(unsafe { v.assume_init() })
    }

    /// Drop the count each slot stands for (a whole tree going away).
    ///
    /// # Safety
    /// 1. The slots of this leaf hold counts the caller owns (the leaf belongs to the
    ///    current version of a tree that is being freed) and nothing uses them after.
    pub(super) unsafe fn drop_vmas(&mut self) {
        for i in 0..self.len() {
            let v = mem::replace(&mut self.vma[i], MaybeUninit::uninit());
            // SAFETY: initialized below `len`; (1) the count is the caller's to drop.
            drop(unsafe { v.assume_init() });
        }
        self.hdr.len = 0;
    }

    /// Move entries `at..` into a new leaf of the same generation.
    pub(super) fn split_off(&mut self, at: usize) -> Self {
        let mut right = Self::new(self.hdr.generation);
        right.append_from(self, at);
        right
    }

    /// Move entries `from..` of `other` to the end of `self`.
    pub(super) fn append_from(&mut self, other: &mut Self, from: usize) {
        let (n, m) = (self.len(), other.len());
        assert!(from <= m && n + m - from <= CAP);
        for k in from..m {
            let d = n + k - from;
            self.start[d] = other.start[k];
            self.end[d] = other.end[k];
            self.vma[d] = mem::replace(&mut other.vma[k], MaybeUninit::uninit());
            other.start[k] = u64::MAX;
        }
        self.guarded |= mask_tail(other.guarded, from, m) << n;
        other.guarded &= (1 << from) - 1;
        self.hdr.len += (m - from) as u32;
        other.hdr.len = from as u32;
    }
}

impl Internal {
    /// An internal node of height `height` with no children yet.
    pub(super) fn new(height: u32, generation: u64) -> Self {
        Self {
            hdr: Header::new(height, generation),
            first: [u64::MAX; CAP],
            last_end: [0; CAP],
            gap: [0; CAP],
            child: [NodePtr::DANGLING; CAP],
            guarded: 0,
        }
    }

    /// Children in use.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.hdr.len()
    }

    /// Summary kept for child `i < len`.
    #[inline]
    pub(super) fn child_summary(&self, i: usize) -> Summary {
        Summary {
            first: self.first[i],
            last_end: self.last_end[i],
            gap: self.gap[i],
            guarded: self.guarded & (1 << i) != 0,
        }
    }

    /// The child whose subtree holds the VMAs starting at `addr`, and those below if
    /// `addr` is below the first child (0 then).
    #[inline]
    pub(super) fn child_for(&self, addr: u64) -> usize {
        rank_le(&self.first, self.len(), addr).saturating_sub(1)
    }

    /// The first child at or after `i` whose subtree holds a `VM_GROWSDOWN` VMA.
    #[inline]
    pub(super) fn next_guarded(&self, i: usize) -> Option<usize> {
        mask_next(self.guarded, i)
    }

    /// Number of children whose first VMA starts below `addr`.
    #[inline]
    pub(super) fn rank_lt(&self, addr: u64) -> usize {
        rank_lt(&self.first, self.len(), addr)
    }

    /// Pointer to child `i < len`.
    #[inline]
    pub(super) fn child_ptr(&self, i: usize) -> NodePtr {
        assert!(i < self.len());
        self.child[i]
    }

    /// Replace child `i` (a private copy of it, or a rebuilt one).
    pub(super) fn set_child(&mut self, i: usize, c: NodePtr) {
        assert!(i < self.len());
        self.child[i] = c;
    }

    /// Record the current summary of child `i`.
    pub(super) fn set_summary(&mut self, i: usize, s: Summary) {
        assert!(i < self.len());
        self.first[i] = s.first;
        self.last_end[i] = s.last_end;
        self.gap[i] = s.gap;
        self.guarded = (self.guarded & !(1 << i)) | (Mask::from(s.guarded) << i);
    }

    /// The summary of the whole node (`len >= 1`).
    pub(super) fn summary(&self) -> Summary {
        let n = self.len();
        debug_assert!(n > 0, "summary of an empty internal node");
        let mut gap = self.gap[0];
        for i in 1..n {
            gap = gap
                .max(self.gap[i])
                .max(self.first[i] - self.last_end[i - 1]);
        }
        Summary {
            first: self.first[0],
            last_end: self.last_end[n - 1],
            gap,
            guarded: self.guarded != 0,
        }
    }

    /// A private copy for the edit of generation `generation` (children shared).
    /// Model builds only: elsewhere `NodePtr::copy` copies in place.
    #[cfg(any(loom, shuttle))]
    pub(super) fn copy(&self, generation: u64) -> Self {
        let mut hdr = Header::new(self.hdr.height, generation);
        hdr.len = self.hdr.len;
        Self {
            hdr,
            first: self.first,
            last_end: self.last_end,
            gap: self.gap,
            child: self.child,
            guarded: self.guarded,
        }
    }

    /// Insert child `c` with summary `s` at `i` (`len < CAP`).
    pub(super) fn insert(&mut self, i: usize, c: NodePtr, s: Summary) {
        let n = self.len();
        assert!(n < CAP && i <= n);
        self.first.copy_within(i..n, i + 1);
        self.last_end.copy_within(i..n, i + 1);
        self.gap.copy_within(i..n, i + 1);
        self.child.copy_within(i..n, i + 1);
        self.child[i] = c;
        self.guarded = mask_insert(self.guarded, i, false);
        self.hdr.len += 1;
        self.set_summary(i, s);
    }

    /// Remove child `i < len` from this node (the child itself is not freed).
    pub(super) fn remove(&mut self, i: usize) -> NodePtr {
        let n = self.len();
        assert!(i < n);
        let c = self.child[i];
        self.first.copy_within(i + 1..n, i);
        self.last_end.copy_within(i + 1..n, i);
        self.gap.copy_within(i + 1..n, i);
        self.child.copy_within(i + 1..n, i);
        self.first[n - 1] = u64::MAX;
        self.child[n - 1] = NodePtr::DANGLING;
        self.guarded = mask_remove(self.guarded, i);
        self.hdr.len -= 1;
        c
    }

    /// Move children `at..` into a new node of the same height and generation.
    pub(super) fn split_off(&mut self, at: usize) -> Self {
        let mut right = Self::new(self.hdr.height, self.hdr.generation);
        right.append_from(self, at);
        right
    }

    /// Move children `from..` of `other` to the end of `self`.
    pub(super) fn append_from(&mut self, other: &mut Self, from: usize) {
        let (n, m) = (self.len(), other.len());
        assert!(from <= m && n + m - from <= CAP);
        for k in from..m {
            let d = n + k - from;
            self.first[d] = other.first[k];
            self.last_end[d] = other.last_end[k];
            self.gap[d] = other.gap[k];
            self.child[d] = other.child[k];
            other.first[k] = u64::MAX;
            other.child[k] = NodePtr::DANGLING;
        }
        self.guarded |= mask_tail(other.guarded, from, m) << n;
        other.guarded &= (1 << from) - 1;
        self.hdr.len += (m - from) as u32;
        other.hdr.len = from as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_counts_the_prefix_for_every_boundary_and_length() {
        for len in 0..=CAP {
            let mut keys = [u64::MAX; CAP];
            for (i, k) in keys.iter_mut().take(len).enumerate() {
                *k = 10 * (i as u64 + 1);
            }
            for probe in 0..=10 * (CAP as u64 + 1) {
                let le = keys[..len].iter().filter(|&&k| k <= probe).count();
                let lt = keys[..len].iter().filter(|&&k| k < probe).count();
                assert_eq!(rank_le(&keys, len, probe), le, "len {len}, <= {probe}");
                assert_eq!(rank_lt(&keys, len, probe), lt, "len {len}, < {probe}");
            }
            assert_eq!(rank_le(&keys, len, u64::MAX), len, "clamped to len");
        }
    }
}
