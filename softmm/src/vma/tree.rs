//! The VMA tree, v1: an immutable ordered map published through RCU.
//!
//! Readers ([`VmaTree::find`] and friends) take an RCU guard, load the current snapshot
//! with Acquire and search it; they take no lock and do no atomic read-modify-write, and
//! everything they return borrows from the guard. Writers hold `mmap_lock` for write,
//! build the next snapshot in a [`TreeEdit`] (a persistent B-tree: cloning is O(1), each
//! change O(log n), untouched nodes shared), and publish it with one Release store. The
//! previous snapshot, and with it every VMA only it still references, is freed by one RCU
//! callback after a grace period: one batch per operation, however many VMAs it removed.
//!
//! A later issue replaces this with an RCU B-tree of our own behind the same interface.

use std::sync::Arc;

use crossbeam_epoch::{Atomic, Owned};
use imbl::OrdMap;

use super::Vma;
use crate::sync::{Ordering, rcu::RcuGuard};

type Map = OrdMap<u64, Arc<Vma>>;

/// The RCU-safe set of VMAs of one address space, keyed by start address.
#[derive(Debug)]
pub struct VmaTree {
    root: Atomic<Map>,
}

/// A pending change to the tree (writers only, under `mmap_lock` write).
#[derive(Debug)]
#[must_use = "an edit does nothing until committed"]
pub struct TreeEdit<'t> {
    tree: &'t VmaTree,
    map: Map,
    removed: Vec<Arc<Vma>>,
}

/// The most a `start_gap` function may lower a VMA's start (Linux's `stack_guard_gap`).
const MAX_START_GAP: u64 = 1 << 20;

/// VMAs of `map` intersecting `[start, end)` in address order (none for an empty range).
fn intersecting_in(map: &Map, start: u64, end: u64) -> Vec<&Arc<Vma>> {
    let mut out = Vec::new();
    if start >= end {
        return out;
    }
    // One descent: walk down from the last VMA starting below `end` until one ends at
    // or below `start` (VMAs do not overlap, so every earlier one does too).
    for (_, v) in map.range(..end).rev() {
        if v.end <= start {
            break;
        }
        out.push(v);
    }
    out.reverse();
    out
}

impl Default for VmaTree {
    fn default() -> Self {
        Self::new()
    }
}

impl VmaTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self {
            root: Atomic::new(Map::new()),
        }
    }

    fn snapshot<'g>(&self, g: &'g RcuGuard) -> &'g Map {
        // Acquire pairs with the Release store in `TreeEdit::commit`: the snapshot and
        // the VMAs in it are fully built.
        let s = self.root.load(Ordering::Acquire, g);
        // SAFETY: `root` always holds a valid map (set in `new`, replaced in `commit`);
        // a replaced map is destroyed only after a grace period, and `g` pins us.
        unsafe { s.deref() }
    }

    /// The VMA containing `addr`.
    pub fn find<'g>(&self, addr: u64, g: &'g RcuGuard) -> Option<&'g Arc<Vma>> {
        let (_, v) = self.snapshot(g).range(..=addr).next_back()?;
        v.contains(addr).then_some(v)
    }

    /// The first VMA that ends above `addr` (Linux `find_vma`).
    pub fn find_from<'g>(&self, addr: u64, g: &'g RcuGuard) -> Option<&'g Arc<Vma>> {
        if let Some(v) = self.find(addr, g) {
            return Some(v);
        }
        self.snapshot(g).range(addr..).next().map(|(_, v)| v)
    }

    /// The last VMA that starts below `addr`.
    pub fn prev<'g>(&self, addr: u64, g: &'g RcuGuard) -> Option<&'g Arc<Vma>> {
        self.snapshot(g).range(..addr).next_back().map(|(_, v)| v)
    }

    /// VMAs intersecting `[start, end)`, in address order.
    pub fn intersecting<'g>(&self, start: u64, end: u64, g: &'g RcuGuard) -> Vec<&'g Arc<Vma>> {
        intersecting_in(self.snapshot(g), start, end)
    }

    /// All VMAs in address order.
    pub fn iter<'g>(&self, g: &'g RcuGuard) -> impl Iterator<Item = &'g Arc<Vma>> {
        self.snapshot(g).values()
    }

    /// Number of VMAs (`map_count`).
    pub fn len(&self, g: &RcuGuard) -> usize {
        self.snapshot(g).len()
    }

    /// Whether there are no VMAs.
    pub fn is_empty(&self, g: &RcuGuard) -> bool {
        self.snapshot(g).is_empty()
    }

    /// Start a change. The caller holds `mmap_lock` for write (one writer at a time).
    pub fn edit(&self) -> TreeEdit<'_> {
        let g = crate::sync::rcu::read_lock();
        TreeEdit {
            tree: self,
            map: self.snapshot(&g).clone(),
            removed: Vec::new(),
        }
    }
}

impl Drop for VmaTree {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no reader can start; readers that loaded the map hold an
        // Arc-free borrow only while pinned, and we defer the destruction past them.
        let g = crate::sync::rcu::read_lock();
        let old = self
            .root
            .swap(crossbeam_epoch::Shared::null(), Ordering::AcqRel, &g);
        if !old.is_null() {
            crate::sync::rcu::note_callback();
            // SAFETY: unlinked above; destroyed after a grace period.
            unsafe { g.defer_destroy(old) };
        }
    }
}

impl TreeEdit<'_> {
    /// VMAs of the pending state intersecting `[start, end)`.
    pub fn intersecting(&self, start: u64, end: u64) -> Vec<Arc<Vma>> {
        intersecting_in(&self.map, start, end)
            .into_iter()
            .cloned()
            .collect()
    }

    /// The pending VMA containing `addr`.
    pub fn find(&self, addr: u64) -> Option<Arc<Vma>> {
        let (_, v) = self.map.range(..=addr).next_back()?;
        v.contains(addr).then(|| Arc::clone(v))
    }

    /// The pending VMA ending exactly at `addr`.
    pub fn ending_at(&self, addr: u64) -> Option<Arc<Vma>> {
        let (_, v) = self.map.range(..addr).next_back()?;
        (v.end == addr).then(|| Arc::clone(v))
    }

    /// The pending VMA starting exactly at `addr`.
    pub fn starting_at(&self, addr: u64) -> Option<Arc<Vma>> {
        self.map.get(&addr).cloned()
    }

    /// The last pending VMA that starts below `addr`.
    pub fn prev(&self, addr: u64) -> Option<Arc<Vma>> {
        self.map
            .range(..addr)
            .next_back()
            .map(|(_, v)| Arc::clone(v))
    }

    /// The first pending VMA that starts at or above `addr`.
    pub fn next(&self, addr: u64) -> Option<Arc<Vma>> {
        self.map.range(addr..).next().map(|(_, v)| Arc::clone(v))
    }

    /// All pending VMAs in address order.
    pub fn all(&self) -> Vec<Arc<Vma>> {
        self.map.values().cloned().collect()
    }

    /// The highest free `len`-byte range in `[low, high)` (placed at the top of its
    /// gap), where a VMA `v` occupies from `start_gap(v)` (its start, or lower to keep a
    /// guard gap) to its end. Placement policy (`get_unmapped_area` top-down).
    pub fn find_gap_top_down(
        &self,
        len: u64,
        low: u64,
        high: u64,
        start_gap: impl Fn(&Vma) -> u64,
    ) -> Option<u64> {
        // `limit` is the upper end of the gap below the VMAs seen so far. VMAs starting
        // at or above `high` matter only through their guard gap (`start_gap` lowers a
        // start by at most the 1 MiB stack guard gap): the walk starts just above.
        let mut limit = high;
        for v in self
            .map
            .range(..high.saturating_add(MAX_START_GAP))
            .rev()
            .map(|(_, v)| v)
        {
            if v.end < limit && limit - v.end >= len {
                return (limit - len >= low).then(|| limit - len);
            }
            limit = limit.min(start_gap(v));
            if limit < low.saturating_add(len) {
                return None;
            }
        }
        (limit >= low.saturating_add(len)).then(|| limit - len)
    }

    /// The lowest free `len`-byte range in `[low, high)` (bottom-up placement).
    pub fn find_gap_bottom_up(
        &self,
        len: u64,
        low: u64,
        high: u64,
        start_gap: impl Fn(&Vma) -> u64,
    ) -> Option<u64> {
        let mut start = low;
        if let Some((_, p)) = self.map.range(..low).next_back() {
            start = start.max(p.end);
        }
        for (_, v) in self.map.range(start..) {
            if start.saturating_add(len) <= start_gap(v) {
                break;
            }
            start = start.max(v.end);
        }
        start
            .checked_add(len)
            .is_some_and(|e| e <= high)
            .then_some(start)
    }

    /// Pending number of VMAs.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the pending state has no VMA.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Remove `vma` (which must be in the pending state).
    pub fn remove(&mut self, vma: &Arc<Vma>) {
        let old = self
            .map
            .remove(&vma.start)
            .expect("removing a VMA that is not in the tree");
        debug_assert!(Arc::ptr_eq(&old, vma));
        self.removed.push(old);
    }

    /// Insert `vma`, which must not overlap anything pending.
    pub fn insert(&mut self, vma: Arc<Vma>) {
        debug_assert!(
            self.intersecting(vma.start, vma.end).is_empty(),
            "overlapping insert"
        );
        self.map.insert(vma.start, vma);
    }

    /// Publish the pending state; mark removed VMAs detached; free the old snapshot
    /// after a grace period.
    pub fn commit(self) {
        let TreeEdit { tree, map, removed } = self;
        let g = crate::sync::rcu::read_lock();
        // Release: pairs with the readers' Acquire load in `snapshot`.
        let old = tree.root.swap(Owned::new(map), Ordering::AcqRel, &g);
        for v in &removed {
            // A VMA removed and re-inserted (unchanged) by the same edit stays attached.
            if !tree
                .snapshot(&g)
                .get(&v.start)
                .is_some_and(|cur| Arc::ptr_eq(cur, v))
            {
                v.mark_detached();
            }
        }
        crate::sync::rcu::note_callback();
        // SAFETY: `old` was the published map and is now unlinked; readers that loaded
        // it are pinned, and destruction waits for them (one deferred drop, which also
        // drops the last references to the removed VMAs: a batch, not one per VMA).
        unsafe { g.defer_destroy(old) };
        drop(removed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        sync::rcu,
        vma::{Backing, flags::*},
    };

    fn vma(start: u64, end: u64) -> Arc<Vma> {
        Arc::new(Vma::new(
            start,
            end,
            VM_READ | VM_MAYREAD,
            start >> 12,
            Backing::Anon,
        ))
    }

    fn tree_of(ranges: &[(u64, u64)]) -> VmaTree {
        let t = VmaTree::new();
        let mut e = t.edit();
        for &(s, en) in ranges {
            e.insert(vma(s, en));
        }
        e.commit();
        t
    }

    #[test]
    fn find_and_intersecting() {
        let t = tree_of(&[(0x1000, 0x3000), (0x5000, 0x6000), (0x8000, 0xa000)]);
        let g = rcu::read_lock();
        assert_eq!(t.find(0x1000, &g).map(|v| v.start), Some(0x1000));
        assert_eq!(t.find(0x2fff, &g).map(|v| v.start), Some(0x1000));
        assert!(t.find(0x3000, &g).is_none());
        assert!(t.find(0x0, &g).is_none());
        assert_eq!(t.find_from(0x3000, &g).map(|v| v.start), Some(0x5000));
        assert!(t.find_from(0xa000, &g).is_none());
        let hits: Vec<u64> = t
            .intersecting(0x2000, 0x8001, &g)
            .iter()
            .map(|v| v.start)
            .collect();
        assert_eq!(hits, vec![0x1000, 0x5000, 0x8000]);
        assert!(t.intersecting(0x3000, 0x5000, &g).is_empty());
        assert_eq!(t.len(&g), 3);
    }

    #[test]
    fn replace_publishes_at_commit_and_detaches() {
        let t = tree_of(&[(0x1000, 0x4000)]);
        let g = rcu::read_lock();
        let old = Arc::clone(t.find(0x1000, &g).unwrap());
        let mut e = t.edit();
        e.remove(&old);
        e.insert(vma(0x1000, 0x2000));
        e.insert(vma(0x3000, 0x4000));
        // A reader sees the old layout until the commit.
        assert_eq!(t.find(0x2000, &g).map(|v| v.end), Some(0x4000));
        assert!(!old.is_detached());
        e.commit();
        // The old snapshot borrowed by `g` is still valid; new lookups see the new one.
        let g2 = rcu::read_lock();
        assert!(t.find(0x2000, &g2).is_none());
        assert_eq!(t.len(&g2), 2);
        assert!(old.is_detached());
    }

    #[test]
    fn edit_neighbour_queries() {
        let t = tree_of(&[(0x1000, 0x3000), (0x5000, 0x6000)]);
        let e = t.edit();
        assert_eq!(e.ending_at(0x3000).map(|v| v.start), Some(0x1000));
        assert!(e.ending_at(0x4000).is_none());
        assert_eq!(e.starting_at(0x5000).map(|v| v.end), Some(0x6000));
        assert_eq!(e.prev(0x5000).map(|v| v.start), Some(0x1000));
        assert_eq!(e.next(0x3000).map(|v| v.start), Some(0x5000));
        let top = |v: &Vma| v.start;
        assert_eq!(
            e.find_gap_top_down(0x1000, 0x1000, 0x10000, top),
            Some(0xf000)
        );
        assert_eq!(
            e.find_gap_top_down(0x2000, 0x1000, 0x6000, top),
            Some(0x3000)
        );
        assert_eq!(e.find_gap_top_down(0x3000, 0x1000, 0x6000, top), None);
        assert_eq!(
            e.find_gap_bottom_up(0x1000, 0x1000, 0x10000, top),
            Some(0x3000)
        );
        assert_eq!(
            e.find_gap_bottom_up(0x3000, 0x1000, 0x10000, top),
            Some(0x6000)
        );
        // A guard gap below the VMA at 0x5000 makes the 0x3000..0x5000 hole too small.
        let guarded = |v: &Vma| if v.start == 0x5000 { 0x4000 } else { v.start };
        assert_eq!(e.find_gap_top_down(0x2000, 0x1000, 0x6000, guarded), None);
        e.commit();
    }

    #[test]
    fn removed_vmas_are_freed_after_a_grace_period() {
        let t = tree_of(&[(0x1000, 0x2000)]);
        let weak = {
            let g = rcu::read_lock();
            Arc::downgrade(t.find(0x1000, &g).unwrap())
        };
        let reader = rcu::read_lock();
        let mut e = t.edit();
        e.remove(&weak.upgrade().unwrap());
        e.commit();
        rcu::flush();
        assert!(weak.upgrade().is_some(), "a reader is still pinned");
        drop(reader);
        rcu::barrier();
        assert!(weak.upgrade().is_none(), "freed after the grace period");
    }
}
