//! The writer's side: a pending version of the tree built by path copying, published
//! by one store at commit.

use std::{mem::ManuallyDrop, sync::Arc};

use super::{
    super::Vma,
    Entry, Garbage, VmaTree,
    gap::GapSearch,
    new_log,
    node::{CAP, Internal, Leaf, MAX_HEIGHT, MIN, Summary},
    ptr::{Node, NodeMut, NodePtr, NodeRef},
    recycle_log,
    view::View,
};
use crate::addr::PageAddr;
use crate::sync::{Ordering, rcu, rcu::RcuGuard};

/// A pending change to the tree (writers only, under `mmap_lock` write; an edit that is
/// only read and dropped, such as a placement probe, may run under `mmap_lock` read).
///
/// The edit copies every node it changes (and each node on the path to it) into a
/// private node of its own generation, changes private nodes in place, and leaves the
/// published version untouched until [`TreeEdit::commit`].
#[must_use = "an edit does nothing until committed"]
pub struct TreeEdit<'t> {
    tree: &'t VmaTree,
    /// Pinned before `base` was loaded: every published node the edit can reach stays
    /// allocated while it lives, even if (against the rules) another edit commits.
    _guard: RcuGuard,
    /// The published root the edit started from.
    base: NodePtr,
    /// The pending root (`base` until the first change).
    root: NodePtr,
    /// Generation of this edit's private nodes: one more than `base`'s, which is the
    /// highest in the published tree (every commit publishes a new root).
    generation: u64,
    /// Pending number of VMAs.
    len: usize,
    /// What commit or abort must settle: published nodes replaced by private copies
    /// (or merged away), the counts owed for removed VMAs, the counts of inserted ones.
    log: Vec<Entry>,
    /// Set once published: then the private nodes belong to the tree.
    committed: bool,
}

/// The path of a descent: `node[d]` is the (private) internal node at depth `d` and
/// `child[d]` the child taken in it.
struct Path {
    node: [NodePtr; MAX_HEIGHT],
    child: [u8; MAX_HEIGHT],
    depth: usize,
}

impl Path {
    fn push(&mut self, n: NodePtr, i: usize) {
        self.node[self.depth] = n;
        self.child[self.depth] = i as u8;
        self.depth += 1;
    }

    fn pop(&mut self) -> Option<(NodePtr, usize)> {
        self.depth = self.depth.checked_sub(1)?;
        Some((self.node[self.depth], usize::from(self.child[self.depth])))
    }
}

/// Where to split a full node that is receiving an entry at `pos`: in the middle, but
/// toward the end that grows when the insertion is at an end or next to it (sequential
/// runs then leave nodes nearly full: fork copying VMAs in order appends, mmap going
/// down prepends, and carving a large VMA page by page from its low end, as
/// `mprotect` of every second page does, inserts just before the leaf's last entry).
/// Both halves keep at least [`MIN`] entries once the new one is in.
fn split_point(pos: usize) -> usize {
    if pos >= CAP - 1 {
        // The new entry goes right (`pos >= at` as `MIN >= 2`): right `MIN`, left more.
        CAP - (MIN - 1)
    } else if pos <= 1 {
        // The new entry goes left (`pos < at`): left `at + 1 >= MIN`, right more.
        (MIN - 1).max(pos + 1)
    } else {
        CAP / 2
    }
}

/// What inserting, splitting and rebalancing need of both node kinds.
trait Body: Sized {
    type Entry;
    fn len(&self) -> usize;
    fn insert(&mut self, i: usize, e: Self::Entry);
    fn split_off(&mut self, at: usize) -> Self;
    fn append_from(&mut self, other: &mut Self, from: usize);
    fn alloc(self) -> NodePtr;
}

impl Body for Leaf {
    type Entry = Arc<Vma>;
    fn len(&self) -> usize {
        Leaf::len(self)
    }
    fn insert(&mut self, i: usize, e: Arc<Vma>) {
        Leaf::insert(self, i, e);
    }
    fn split_off(&mut self, at: usize) -> Self {
        Leaf::split_off(self, at)
    }
    fn append_from(&mut self, other: &mut Self, from: usize) {
        Leaf::append_from(self, other, from);
    }
    fn alloc(self) -> NodePtr {
        NodePtr::new_leaf(self)
    }
}

impl Body for Internal {
    type Entry = (NodePtr, Summary);
    fn len(&self) -> usize {
        Internal::len(self)
    }
    fn insert(&mut self, i: usize, (c, s): (NodePtr, Summary)) {
        Internal::insert(self, i, c, s);
    }
    fn split_off(&mut self, at: usize) -> Self {
        Internal::split_off(self, at)
    }
    fn append_from(&mut self, other: &mut Self, from: usize) {
        Internal::append_from(self, other, from);
    }
    fn alloc(self) -> NodePtr {
        NodePtr::new_internal(self)
    }
}

/// Insert `e` at `pos` of the full-or-not node `n`; when it was full, split it and
/// return the new right half (allocated, same generation).
fn insert_or_split<B: Body>(n: &mut B, pos: usize, e: B::Entry) -> Option<NodePtr> {
    if n.len() < CAP {
        n.insert(pos, e);
        return None;
    }
    let at = split_point(pos);
    let mut right = n.split_off(at);
    if pos < at {
        n.insert(pos, e);
    } else {
        right.insert(pos - at, e);
    }
    Some(right.alloc())
}

/// Rebalance two adjacent siblings, one of them under [`MIN`]: merge them into `a` if
/// they fit in one node (returns true; `b` is then empty), else share evenly.
fn merge_or_share<B: Body>(a: &mut B, b: &mut B) -> bool {
    let total = a.len() + b.len();
    if total <= CAP {
        a.append_from(b, 0);
        return true;
    }
    let target = total / 2;
    if a.len() > target {
        // Move a's tail to the front of b.
        let mut tail = a.split_off(target);
        tail.append_from(b, 0);
        b.append_from(&mut tail, 0);
    } else {
        // Move b's head to the end of a.
        let mut rest = b.split_off(target - a.len());
        a.append_from(b, 0);
        b.append_from(&mut rest, 0);
    }
    false
}

impl VmaTree {
    /// Start a change. The caller holds `mmap_lock` for write (one writer at a time);
    /// an edit that is only read and dropped may be made under `mmap_lock` read.
    pub fn edit(&self) -> TreeEdit<'_> {
        let guard = rcu::read_lock();
        let base = self.load_root();
        // SAFETY: published root, allocated while `guard` (taken before the load) is
        // held; published nodes are never written.
        let h = unsafe { base.hdr() };
        TreeEdit {
            tree: self,
            base,
            root: base,
            generation: h.generation() + 1,
            len: usize::try_from(h.total()).expect("VMA count fits usize"),
            _guard: guard,
            log: Vec::new(),
            committed: false,
        }
    }
}

impl TreeEdit<'_> {
    /// The pending version, for as long as the edit is borrowed.
    fn view(&self) -> View<'_> {
        // SAFETY: (1) every node reachable from the pending root is private to this edit
        // (not written while `self` is borrowed shared: changes need `&mut self`) or
        // published and reachable from `base`, which `self._guard` (taken before `base`
        // was loaded) keeps allocated; published nodes are never written.
        View::new(unsafe { NodeRef::new(self.root) })
    }

    /// Whether `n` (reachable from the pending root) is private to this edit.
    fn is_private(&self, n: NodePtr) -> bool {
        // SAFETY: reachable from the pending root, hence allocated (see `view`); the
        // header of a node is written only while the node is private and the caller
        // holds no reference to it across this call.
        unsafe { n.hdr() }.generation() == self.generation
    }

    /// `n` itself if private, else a private copy of it (`n` is then logged, to free
    /// after the commit's grace period).
    fn own(&mut self, n: NodePtr) -> NodePtr {
        if self.is_private(n) {
            return n;
        }
        // SAFETY: `n` is published (reachable from `base`, kept allocated by the guard)
        // and never written.
        let copy = unsafe { n.copy(self.generation) };
        if self.log.capacity() == 0 {
            // Room for a typical edit (a path of copies and a few VMAs), from the logs
            // of earlier commits where there is one.
            self.log = new_log();
        }
        self.log.push(Entry::Replaced(n));
        copy
    }

    /// Make the path to the leaf where `key` belongs private and return it.
    fn descend(&mut self, key: u64) -> (Path, NodePtr) {
        self.root = self.own(self.root);
        let mut path = Path {
            node: [self.root; MAX_HEIGHT],
            child: [0; MAX_HEIGHT],
            depth: 0,
        };
        let mut n = self.root;
        loop {
            // SAFETY: `n` is private (owned above or below) and nothing else refers to
            // it; `x` is not used after the loop iteration.
            let x = match unsafe { n.get_mut() } {
                NodeMut::Leaf(_) => return (path, n),
                NodeMut::Internal(x) => x,
            };
            let i = x.child_for(key);
            let c = self.own(x.child_ptr(i));
            x.set_child(i, c);
            path.push(n, i);
            n = c;
        }
    }

    /// The leaf at the end of a descent.
    ///
    /// # Safety
    /// 1. `n` is a private leaf of this edit.
    /// 2. No other reference to it is live while the result is.
    unsafe fn leaf_mut<'a>(n: NodePtr) -> &'a mut Leaf {
        // SAFETY: (1), (2).
        match unsafe { n.get_mut() } {
            NodeMut::Leaf(l) => l,
            NodeMut::Internal(_) => unreachable!("descent ends in a leaf"),
        }
    }

    /// An internal node on a descent's path.
    ///
    /// # Safety
    /// 1. `n` is a private internal node of this edit.
    /// 2. No other reference to it is live while the result is.
    unsafe fn internal_mut<'a>(n: NodePtr) -> &'a mut Internal {
        // SAFETY: (1), (2).
        match unsafe { n.get_mut() } {
            NodeMut::Internal(x) => x,
            NodeMut::Leaf(_) => unreachable!("path nodes are internal"),
        }
    }

    /// Insert `vma`, which must not overlap anything pending.
    pub fn insert(&mut self, vma: Arc<Vma>) {
        debug_assert!(
            self.intersecting_iter(vma.start.get(), vma.end.get())
                .next()
                .is_none(),
            "overlapping insert"
        );
        let (path, leaf) = self.descend(vma.start.get());
        // SAFETY: the descent made `leaf` private; no other reference to it exists.
        let l = unsafe { Self::leaf_mut(leaf) };
        let pos = l.rank_lt(vma.start.get());
        // SAFETY: a bitwise copy of the `Arc` for the slot, which owns no count (module
        // docs of `tree`); the count passed in is logged and dropped only on abort.
        let slot = unsafe { std::ptr::read(&vma) };
        let split = insert_or_split(l, pos, slot);
        self.log.push(Entry::Inserted(ManuallyDrop::new(vma)));
        self.len += 1;
        self.fix_after_insert(path, leaf, split);
    }

    /// Walk up a descent after an insert: refresh each parent's summary of the child
    /// below and add the right halves of split children.
    fn fix_after_insert(&mut self, mut path: Path, mut child: NodePtr, mut split: Option<NodePtr>) {
        while let Some((p, i)) = path.pop() {
            // SAFETY: path nodes are private internal nodes of this edit; `child` and
            // `split` are private nodes other than `p`, read only for the summaries.
            let (x, s) = unsafe { (Self::internal_mut(p), child.summary()) };
            if split.is_none() && x.child_summary(i) == s {
                // Nothing above changes.
                return;
            }
            x.set_summary(i, s);
            if let Some(r) = split {
                // SAFETY: as above.
                let rs = unsafe { r.summary() };
                split = insert_or_split(x, i + 1, (r, rs));
            }
            child = p;
        }
        if let Some(r) = split {
            // The root split: a new root above both halves.
            let old = self.root;
            // SAFETY: both halves are private nodes of this edit, read only here.
            let (h, os, rs) = unsafe { (old.hdr().height(), old.summary(), r.summary()) };
            assert!((h as usize) + 2 < MAX_HEIGHT, "VMA tree too deep");
            let mut top = Internal::new(h + 1, self.generation);
            top.insert(0, old, os);
            top.insert(1, r, rs);
            self.root = NodePtr::new_internal(top);
        }
    }

    /// Remove `vma` (which must be in the pending state).
    pub fn remove(&mut self, vma: &Arc<Vma>) {
        let (path, leaf) = self.descend(vma.start.get());
        // SAFETY: the descent made `leaf` private; no other reference to it exists.
        let l = unsafe { Self::leaf_mut(leaf) };
        let pos = l.rank_lt(vma.start.get());
        assert!(
            pos < l.len() && l.range(pos).0 == vma.start,
            "removing a VMA that is not in the tree"
        );
        let old = l.remove(pos);
        debug_assert!(Arc::ptr_eq(&old, vma));
        // The slot's copy stands for the count the tree (or this edit) held.
        self.log.push(Entry::Removed(old));
        self.len -= 1;
        self.fix_after_remove(path, leaf);
    }

    /// Walk up a descent after a remove: refresh summaries, rebalance children that
    /// fell under [`MIN`], and drop levels while the root has a single child.
    fn fix_after_remove(&mut self, mut path: Path, mut child: NodePtr) {
        while let Some((p, i)) = path.pop() {
            // SAFETY: `child` is private and no reference to it is live.
            let short = unsafe { child.hdr() }.len() < MIN;
            // SAFETY: path nodes are private internal nodes; no other reference to `p`.
            let x = unsafe { Self::internal_mut(p) };
            if short {
                self.rebalance(x, i);
            } else {
                // SAFETY: `child` is private, read only here.
                let s = unsafe { child.summary() };
                if x.child_summary(i) == s {
                    break;
                }
                x.set_summary(i, s);
            }
            child = p;
        }
        while let Some(only) = self.lone_child() {
            let old = self.root;
            self.root = self.own(only);
            // SAFETY: `old` is private (after a descent the root is; a promoted child is
            // made so by `own`), now unlinked, and nothing refers to it.
            unsafe { old.free() };
        }
    }

    /// The child of the root when the root is an internal node with only one.
    fn lone_child(&self) -> Option<NodePtr> {
        // SAFETY: the root is allocated (see `view`) and not written during the call.
        match unsafe { self.root.get() } {
            Node::Internal(x) if x.len() == 1 => Some(x.child_ptr(0)),
            Node::Internal(_) | Node::Leaf(_) => None,
        }
    }

    /// Child `i` of the private node `x` is under [`MIN`]: merge it with a neighbour or
    /// take entries from one.
    fn rebalance(&mut self, x: &mut Internal, i: usize) {
        debug_assert!(
            x.len() >= 2,
            "a parent of a short node has a sibling for it"
        );
        let (l, r) = if i + 1 < x.len() {
            (i, i + 1)
        } else {
            (i - 1, i)
        };
        let lp = self.own(x.child_ptr(l));
        x.set_child(l, lp);
        let rp = self.own(x.child_ptr(r));
        x.set_child(r, rp);
        // SAFETY: `lp` and `rp` are distinct private nodes of this edit with no other
        // reference live; they have the same height, so the same kind.
        let merged = unsafe {
            match (lp.get_mut(), rp.get_mut()) {
                (NodeMut::Leaf(a), NodeMut::Leaf(b)) => merge_or_share(a, b),
                (NodeMut::Internal(a), NodeMut::Internal(b)) => merge_or_share(a, b),
                _ => unreachable!("siblings have the same height"),
            }
        };
        // SAFETY: private, no live reference (the borrows above ended).
        x.set_summary(l, unsafe { lp.summary() });
        if merged {
            x.remove(r);
            // SAFETY: `rp` is private, empty and unlinked from `x`; no reference to it.
            unsafe { rp.free() };
        } else {
            // SAFETY: as for `lp`.
            x.set_summary(r, unsafe { rp.summary() });
        }
    }

    /// VMAs of the pending state intersecting `[start, end)`.
    pub fn intersecting(&self, start: u64, end: u64) -> Vec<Arc<Vma>> {
        self.intersecting_iter(start, end).cloned().collect()
    }

    /// VMAs of the pending state intersecting `[start, end)`, borrowed from the edit
    /// (nothing is collected or cloned).
    pub fn intersecting_iter(&self, start: u64, end: u64) -> impl Iterator<Item = &Arc<Vma>> + '_ {
        self.view().intersecting_iter(start, end)
    }

    /// The pending VMA containing `addr`.
    pub fn find(&self, addr: u64) -> Option<Arc<Vma>> {
        self.view().find(addr).cloned()
    }

    /// The first pending VMA that ends above `addr` (Linux `find_vma`).
    pub fn find_from(&self, addr: u64) -> Option<Arc<Vma>> {
        self.view().find_from(addr).cloned()
    }

    /// The pending VMA ending exactly at `addr`.
    pub fn ending_at(&self, addr: PageAddr) -> Option<Arc<Vma>> {
        self.view()
            .prev(addr.get())
            .filter(|v| v.end == addr)
            .cloned()
    }

    /// The pending VMA starting exactly at `addr`.
    pub fn starting_at(&self, addr: PageAddr) -> Option<Arc<Vma>> {
        self.view().starting_at(addr.get()).cloned()
    }

    /// The last pending VMA that starts below `addr`.
    pub fn prev(&self, addr: u64) -> Option<Arc<Vma>> {
        self.view().prev(addr).cloned()
    }

    /// The first pending VMA that starts at or above `addr`.
    pub fn next(&self, addr: u64) -> Option<Arc<Vma>> {
        self.view().next(addr).cloned()
    }

    /// All pending VMAs in address order.
    pub fn all(&self) -> Vec<Arc<Vma>> {
        self.view().iter().cloned().collect()
    }

    /// The highest free `len`-byte range in `[low, high)` (placed at the top of its
    /// gap), where a VMA `v` occupies from `start_gap(v)` (its start, or lower to keep a
    /// guard gap, by at most 1 MiB) to its end. Placement policy (`get_unmapped_area`
    /// top-down). O(log n) node visits (module `gap`).
    pub fn find_gap_top_down(
        &self,
        len: u64,
        low: u64,
        high: u64,
        start_gap: impl Fn(&Vma) -> u64,
    ) -> Option<u64> {
        GapSearch::new(self.view(), len, low, high, start_gap).top_down()
    }

    /// The lowest free `len`-byte range in `[low, high)` (bottom-up placement).
    pub fn find_gap_bottom_up(
        &self,
        len: u64,
        low: u64,
        high: u64,
        start_gap: impl Fn(&Vma) -> u64,
    ) -> Option<u64> {
        GapSearch::new(self.view(), len, low, high, start_gap).bottom_up()
    }

    /// A top-down search that also returns how many nodes and VMAs it looked at.
    #[cfg(test)]
    pub(super) fn find_gap_top_down_counted(
        &self,
        len: u64,
        low: u64,
        high: u64,
        start_gap: impl Fn(&Vma) -> u64,
    ) -> (Option<u64>, usize) {
        let mut s = GapSearch::new(self.view(), len, low, high, start_gap);
        (s.top_down(), s.visited)
    }

    /// A bottom-up search that also returns how many nodes and VMAs it looked at.
    #[cfg(test)]
    pub(super) fn find_gap_bottom_up_counted(
        &self,
        len: u64,
        low: u64,
        high: u64,
        start_gap: impl Fn(&Vma) -> u64,
    ) -> (Option<u64>, usize) {
        let mut s = GapSearch::new(self.view(), len, low, high, start_gap);
        (s.bottom_up(), s.visited)
    }

    /// The pending version (structure checks).
    #[cfg(test)]
    pub(super) fn root_view(&self) -> View<'_> {
        self.view()
    }

    /// Pending number of VMAs.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the pending state has no VMA.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Publish the pending state with one store of the root; mark removed VMAs
    /// detached; free the replaced nodes and drop the tree's counts of the removed
    /// VMAs after a grace period, in one RCU callback.
    pub fn commit(mut self) {
        if self.root == self.base {
            // Nothing changed: nothing to publish or free.
            debug_assert!(self.log.is_empty());
            return;
        }
        let len = u64::try_from(self.len).expect("VMA count fits u64");
        // SAFETY: the root is private after any change, and nothing refers to it.
        unsafe { self.root.set_total(len) };
        // The one publication point. Release: pairs with the Acquire load of readers
        // (`VmaTree::load_root`) and of the next edit, so whoever sees the new root
        // sees every node of the new version fully written. The compare-exchange only
        // checks the rule that one edit commits at a time (`mmap_lock` write).
        let published = self.tree.root.compare_exchange(
            self.base.expose(),
            self.root.expose(),
            Ordering::Release,
            Ordering::Relaxed,
        );
        assert!(
            published.is_ok(),
            "two edits of one VMA tree overlapped (mmap_lock not held for write)"
        );
        self.committed = true;
        let log = std::mem::take(&mut self.log);
        self.detach_removed(&log);
        self.tree.account(&log);
        // One batch: the replaced nodes, and the counts owed for removed VMAs (for
        // most of them the last ones). Inserted VMAs' counts now belong to the tree.
        let garbage = Garbage::Log(log);
        if cfg!(mutant = "tree_early_free") {
            // MUTANT: free the replaced nodes at once, as if no reader could be in them.
            // SAFETY: none (this is the bug the models must catch).
            unsafe { garbage.free() };
        } else {
            rcu::call_rcu(move || {
                // SAFETY: the nodes were unlinked by the store above, before this
                // callback was queued, so it runs after every reader that could reach
                // them (or the removed VMAs through them) has left; nobody else frees
                // them, and the counts are owed (module docs of `tree`).
                unsafe { garbage.free() }
            });
        }
    }

    /// Mark the VMAs this (published) edit removed detached, except those it put back.
    fn detach_removed(&self, log: &[Entry]) {
        if !log.iter().any(|e| matches!(e, Entry::Removed(_))) {
            return;
        }
        let mut back: Vec<*const Vma> = log
            .iter()
            .filter_map(|e| match e {
                Entry::Inserted(v) => Some(Arc::as_ptr(v)),
                Entry::Replaced(_) | Entry::Removed(_) => None,
            })
            .collect();
        back.sort_unstable();
        let now = self.view();
        for e in log {
            if let Entry::Removed(v) = e {
                // Put back (the same VMA, inserted again) and still there at the end.
                let kept = back.binary_search(&Arc::as_ptr(v)).is_ok()
                    && now
                        .starting_at(v.start.get())
                        .is_some_and(|cur| Arc::ptr_eq(cur, v));
                if !kept {
                    v.mark_detached();
                }
            }
        }
    }

    /// Free the private nodes of the subtree `n` (an abandoned edit).
    fn free_private(&self, n: NodePtr) {
        if !self.is_private(n) {
            return;
        }
        // SAFETY: private nodes are reachable only from this edit, which is being
        // dropped; children are read before their parent is freed.
        unsafe {
            if let NodeMut::Internal(x) = n.get_mut() {
                for i in 0..x.len() {
                    self.free_private(x.child_ptr(i));
                }
            }
            n.free();
        }
    }
}

impl Drop for TreeEdit<'_> {
    /// An edit dropped without commit frees only its private copies (and the VMAs it
    /// inserted); the published version is untouched and still counts what it holds.
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        self.free_private(self.root);
        for e in self.log.drain(..) {
            if let Entry::Inserted(v) = e {
                drop(ManuallyDrop::into_inner(v));
            }
        }
        recycle_log(std::mem::take(&mut self.log));
    }
}

impl std::fmt::Debug for TreeEdit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeEdit")
            .field("len", &self.len)
            .field("generation", &self.generation)
            .field("log", &self.log.len())
            .finish_non_exhaustive()
    }
}
