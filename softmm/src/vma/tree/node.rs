//! Node layout: leaves of VMAs and internal nodes of children with their gap summaries;
//! allocation, copying and freeing.
//!
//! A node is a `Leaf` or an `Internal`, both `#[repr(C)]` with a [`Header`] first, and
//! is handled through a [`NodePtr`] (a pointer to that header, derived from the `Box` of
//! the whole node so that it may be cast back). Its height (0 for a leaf) never changes.
//!
//! Two states, told apart by the header's generation (see the module docs of `tree`):
//! * **private**: allocated by the pending edit whose generation it carries; reachable
//!   from no published root; the edit reads and writes it through [`NodePtr::get_mut`].
//! * **published** (or retired): immutable until freed; anyone holding an RCU guard
//!   taken before it was retired reads it through a [`NodeRef`].
//!
//! Unused slots keep the search keys (`Leaf::start`, `Internal::first`) at `u64::MAX`,
//! so a rank can scan the whole fixed-size array without looking at the length first.

use std::{marker::PhantomData, ptr::NonNull, sync::Arc};

use super::super::Vma;
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

/// Levels the fixed-size paths and cursors hold: 2^47 VMAs at the least fill.
pub(super) const MAX_HEIGHT: usize = 48;

/// Value of the canary of a freed node (models only).
#[cfg(any(loom, shuttle))]
const POISON: u64 = 0xdead_dead;
/// Value of the canary of a live node (models only).
#[cfg(any(loom, shuttle))]
const ALIVE: u64 = 0xa11e;

/// Number of `keys[..len]` that are `<= key` (unused slots hold `u64::MAX`).
#[inline]
fn rank_le(keys: &[u64; CAP], len: usize, key: u64) -> usize {
    keys.iter()
        .map(|&k| usize::from(k <= key))
        .sum::<usize>()
        .min(len)
}

/// Number of `keys[..len]` that are `< key`.
#[inline]
fn rank_lt(keys: &[u64; CAP], len: usize, key: u64) -> usize {
    keys.iter()
        .map(|&k| usize::from(k < key))
        .sum::<usize>()
        .min(len)
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
    pub(super) fn len(&self) -> usize {
        self.len as usize
    }

    /// 0 for a leaf.
    pub(super) fn height(&self) -> u32 {
        self.height
    }

    /// Generation of the edit that allocated the node.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// VMAs in the tree (valid in a published root).
    pub(super) fn total(&self) -> u64 {
        self.total
    }
}

/// A leaf: up to [`CAP`] VMAs in address order, with their bounds inline so that
/// searches do not touch the VMAs themselves.
#[repr(C)]
#[derive(Debug)]
pub(super) struct Leaf {
    hdr: Header,
    /// `vma[i].start`; `u64::MAX` past `len`.
    start: [u64; CAP],
    /// `vma[i].end`.
    end: [u64; CAP],
    /// The VMAs; `None` past `len`.
    vma: [Option<Arc<Vma>>; CAP],
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
}

impl Leaf {
    /// An empty leaf of generation `generation`.
    pub(super) fn new(generation: u64) -> Self {
        Self {
            hdr: Header::new(0, generation),
            start: [u64::MAX; CAP],
            end: [0; CAP],
            vma: Default::default(),
        }
    }

    /// Entries in use.
    pub(super) fn len(&self) -> usize {
        self.hdr.len()
    }

    /// Bounds of entry `i < len`.
    pub(super) fn range(&self, i: usize) -> (u64, u64) {
        (self.start[i], self.end[i])
    }

    /// VMA of entry `i < len`.
    pub(super) fn vma(&self, i: usize) -> &Arc<Vma> {
        self.vma[i].as_ref().expect("leaf slot in use")
    }

    /// Number of entries starting at or below `addr`.
    pub(super) fn rank_le(&self, addr: u64) -> usize {
        rank_le(&self.start, self.len(), addr)
    }

    /// Number of entries starting below `addr`.
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
        }
    }

    /// A private copy for the edit of generation `generation` (the VMAs are shared).
    fn copy(&self, generation: u64) -> Self {
        let mut hdr = Header::new(0, generation);
        hdr.len = self.hdr.len;
        Self {
            hdr,
            start: self.start,
            end: self.end,
            vma: self.vma.clone(),
        }
    }

    /// Insert `vma` as entry `i` (`len < CAP`).
    pub(super) fn insert(&mut self, i: usize, vma: Arc<Vma>) {
        let n = self.len();
        assert!(n < CAP && i <= n);
        self.start.copy_within(i..n, i + 1);
        self.end.copy_within(i..n, i + 1);
        self.vma[i..=n].rotate_right(1);
        self.start[i] = vma.start;
        self.end[i] = vma.end;
        self.vma[i] = Some(vma);
        self.hdr.len += 1;
    }

    /// Remove entry `i < len`.
    pub(super) fn remove(&mut self, i: usize) -> Arc<Vma> {
        let n = self.len();
        assert!(i < n);
        let v = self.vma[i].take().expect("leaf slot in use");
        self.vma[i..n].rotate_left(1);
        self.start.copy_within(i + 1..n, i);
        self.end.copy_within(i + 1..n, i);
        self.start[n - 1] = u64::MAX;
        self.hdr.len -= 1;
        v
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
            self.vma[d] = other.vma[k].take();
            other.start[k] = u64::MAX;
        }
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
        }
    }

    /// Children in use.
    pub(super) fn len(&self) -> usize {
        self.hdr.len()
    }

    /// Summary kept for child `i < len`.
    pub(super) fn child_summary(&self, i: usize) -> Summary {
        Summary {
            first: self.first[i],
            last_end: self.last_end[i],
            gap: self.gap[i],
        }
    }

    /// The child whose subtree holds the VMAs starting at `addr`, and those below if
    /// `addr` is below the first child (0 then).
    pub(super) fn child_for(&self, addr: u64) -> usize {
        rank_le(&self.first, self.len(), addr).saturating_sub(1)
    }

    /// Number of children whose first VMA starts below `addr`.
    pub(super) fn rank_lt(&self, addr: u64) -> usize {
        rank_lt(&self.first, self.len(), addr)
    }

    /// Pointer to child `i < len`.
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
        }
    }

    /// A private copy for the edit of generation `generation` (children shared).
    fn copy(&self, generation: u64) -> Self {
        let mut hdr = Header::new(self.hdr.height, generation);
        hdr.len = self.hdr.len;
        Self {
            hdr,
            first: self.first,
            last_end: self.last_end,
            gap: self.gap,
            child: self.child,
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
        self.hdr.len += (m - from) as u32;
        other.hdr.len = from as u32;
    }
}

/// A pointer to a node (to its header, with the provenance of the whole node).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct NodePtr(NonNull<Header>);

/// A node seen through a shared reference.
#[derive(Clone, Copy, Debug)]
pub(super) enum Node<'a> {
    /// A leaf.
    Leaf(&'a Leaf),
    /// An internal node; its children are reachable for as long (see [`NodeRef`]).
    Internal(InternalRef<'a>),
}

/// A node of a private copy, seen through an exclusive reference.
#[derive(Debug)]
pub(super) enum NodeMut<'a> {
    /// A leaf.
    Leaf(&'a mut Leaf),
    /// An internal node.
    Internal(&'a mut Internal),
}

impl NodePtr {
    /// Placeholder in unused child slots; never dereferenced.
    const DANGLING: Self = Self(NonNull::dangling());

    /// Allocate `leaf`.
    pub(super) fn new_leaf(leaf: Leaf) -> Self {
        Self(NonNull::from(Box::leak(Box::new(leaf))).cast())
    }

    /// Allocate `node`.
    pub(super) fn new_internal(node: Internal) -> Self {
        Self(NonNull::from(Box::leak(Box::new(node))).cast())
    }

    /// The address, with its provenance exposed, to publish through an atomic integer
    /// (the `sync` facade has no atomic pointer).
    pub(super) fn expose(self) -> usize {
        self.0.as_ptr().expose_provenance()
    }

    /// The pointer [`NodePtr::expose`] returned `addr` for.
    pub(super) fn from_exposed(addr: usize) -> Self {
        Self(NonNull::new(std::ptr::with_exposed_provenance_mut(addr)).expect("null node address"))
    }

    /// The header.
    ///
    /// # Safety
    /// 1. The node is allocated for `'a`.
    /// 2. Nobody writes its header during `'a` (it is published, or the caller's edit
    ///    does not change it meanwhile).
    pub(super) unsafe fn hdr<'a>(self) -> &'a Header {
        // SAFETY: (1) allocated, (2) not written during 'a; `Header` is the first field
        // of both node types (repr(C)), so the pointer is aligned and points to one.
        unsafe { self.0.as_ref() }
    }

    /// The node, shared.
    ///
    /// # Safety
    /// 1. The node is allocated for `'a`.
    /// 2. Nobody writes it during `'a`.
    pub(super) unsafe fn get<'a>(self) -> Node<'a> {
        // SAFETY: (1), (2) are the caller's.
        let h = unsafe { self.hdr() };
        if h.height == 0 {
            // SAFETY: a height-0 header heads a `Leaf` (only `new_leaf` allocates one),
            // and the pointer comes from that `Box`, so it may be cast back; (1), (2).
            Node::Leaf(unsafe { self.0.cast::<Leaf>().as_ref() })
        } else {
            // SAFETY: as above, for `Internal` (only `new_internal` makes height > 0).
            Node::Internal(InternalRef(unsafe { self.0.cast::<Internal>().as_ref() }))
        }
    }

    /// The node, exclusive.
    ///
    /// # Safety
    /// 1. The node is private to the caller's edit (so no reader can reach it).
    /// 2. No other reference to it is live during `'a`.
    pub(super) unsafe fn get_mut<'a>(self) -> NodeMut<'a> {
        // SAFETY: (1) allocated and unpublished, (2) exclusive.
        let h = unsafe { self.hdr() };
        if h.height == 0 {
            // SAFETY: a leaf (see `get`); (1), (2) make the reference exclusive.
            NodeMut::Leaf(unsafe { self.0.cast::<Leaf>().as_mut() })
        } else {
            // SAFETY: an internal node (see `get`); (1), (2).
            NodeMut::Internal(unsafe { self.0.cast::<Internal>().as_mut() })
        }
    }

    /// The summary of a non-empty node.
    ///
    /// # Safety
    /// As [`NodePtr::get`], for the duration of the call.
    pub(super) unsafe fn summary(self) -> Summary {
        // SAFETY: the caller's.
        match unsafe { self.get() } {
            Node::Leaf(l) => l.summary(),
            Node::Internal(x) => x.summary(),
        }
    }

    /// A private copy of the node for the edit of generation `generation`.
    ///
    /// # Safety
    /// As [`NodePtr::get`], for the duration of the call.
    pub(super) unsafe fn copy(self, generation: u64) -> Self {
        // SAFETY: the caller's.
        match unsafe { self.get() } {
            Node::Leaf(l) => Self::new_leaf(l.copy(generation)),
            Node::Internal(x) => Self::new_internal(x.0.copy(generation)),
        }
    }

    /// Set the VMA count of a (private) root.
    ///
    /// # Safety
    /// As [`NodePtr::get_mut`], for the duration of the call.
    pub(super) unsafe fn set_total(self, total: u64) {
        // SAFETY: the caller's: private and exclusive.
        let h = unsafe { &mut *self.0.as_ptr() };
        h.total = total;
    }

    /// Free the node alone (not its children); a leaf drops its references to its VMAs.
    /// In model builds the node is poisoned and leaked instead, so that a reader that
    /// still reaches it reads the poison rather than freed memory.
    ///
    /// # Safety
    /// 1. Nobody can reach the node any more: it is private to the caller's edit and
    ///    unlinked, or a grace period has passed since it was unlinked from the
    ///    published tree.
    /// 2. No reference to it is live.
    pub(super) unsafe fn free(self) {
        #[cfg(any(loom, shuttle))]
        {
            // SAFETY: (1), (2): still allocated (leaked below), nobody else writes it.
            let h = unsafe { self.hdr() };
            h.canary.store(POISON, Ordering::Release);
        }
        #[cfg(not(any(loom, shuttle)))]
        {
            // SAFETY: (1), (2): unreachable and unreferenced; the pointer came from the
            // `Box` of the node type its height names.
            unsafe {
                if self.hdr().height == 0 {
                    drop(Box::from_raw(self.0.cast::<Leaf>().as_ptr()));
                } else {
                    drop(Box::from_raw(self.0.cast::<Internal>().as_ptr()));
                }
            }
        }
    }

    /// Free the node and every node below it.
    ///
    /// # Safety
    /// As [`NodePtr::free`], for every node of the subtree.
    pub(super) unsafe fn free_tree(self) {
        // SAFETY: the caller's (1), (2); the children are read before the node is freed.
        unsafe {
            if let Node::Internal(x) = self.get() {
                for i in 0..x.len() {
                    x.child_ptr(i).free_tree();
                }
            }
            self.free();
        }
    }
}

/// A shared view of a node, valid for `'a` together with every node reachable from it.
#[derive(Clone, Copy, Debug)]
pub(super) struct NodeRef<'a> {
    ptr: NodePtr,
    _life: PhantomData<&'a Leaf>,
}

impl<'a> NodeRef<'a> {
    /// # Safety
    /// 1. For all of `'a`, `ptr` and every node reachable from it through child pointers
    ///    stay allocated and nobody writes them: they are published and an RCU guard
    ///    taken before any of them could be retired outlives `'a`, or they belong to a
    ///    pending edit that is borrowed shared for `'a`.
    pub(super) unsafe fn new(ptr: NodePtr) -> Self {
        Self {
            ptr,
            _life: PhantomData,
        }
    }

    /// The node.
    #[inline]
    pub(super) fn get(self) -> Node<'a> {
        #[cfg(any(loom, shuttle))]
        {
            // SAFETY: (1) of `new`; the canary is atomic and read only.
            let h = unsafe { self.ptr.hdr() };
            // Acquire: pairs with the Release poisoning in `free`, so that a reader that
            // sees the node alive read it before anything the freeing thread did after.
            assert_ne!(
                h.canary.load(Ordering::Acquire),
                POISON,
                "an RCU reader reached a freed VMA-tree node"
            );
        }
        // SAFETY: (1) of `new`: allocated and unwritten for 'a.
        unsafe { self.ptr.get() }
    }

    /// The header.
    pub(super) fn hdr(self) -> &'a Header {
        // SAFETY: (1) of `new`.
        unsafe { self.ptr.hdr() }
    }

    /// The summary of the subtree (`None` for an empty root leaf).
    pub(super) fn summary(self) -> Option<Summary> {
        match self.get() {
            Node::Leaf(l) if l.len() == 0 => None,
            Node::Leaf(l) => Some(l.summary()),
            Node::Internal(x) => Some(x.summary()),
        }
    }
}

/// An internal node reached through a [`NodeRef`]: its children are valid for `'a` too.
#[derive(Clone, Copy, Debug)]
pub(super) struct InternalRef<'a>(&'a Internal);

impl<'a> InternalRef<'a> {
    /// Child `i < len`.
    pub(super) fn child(self, i: usize) -> NodeRef<'a> {
        // SAFETY: (1) of `NodeRef::new` covers every node reachable from the one this
        // view came from, children included.
        unsafe { NodeRef::new(self.0.child_ptr(i)) }
    }
}

impl std::ops::Deref for InternalRef<'_> {
    type Target = Internal;
    fn deref(&self) -> &Internal {
        self.0
    }
}
