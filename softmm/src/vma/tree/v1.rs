//! The first VMA tree, kept as the reference model of the differential test: an
//! immutable ordered map (imbl) published through RCU, cloned by each edit (O(1)) and
//! changed by path copying; linear gap walks. Test builds only.

use std::sync::Arc;

use crossbeam_epoch::{Atomic, Owned};
use imbl::OrdMap;

use crate::addr::PageAddr;
use crate::sync::{Ordering, rcu::RcuGuard};
use crate::vma::Vma;

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

use super::MAX_START_GAP;

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
    pub fn ending_at(&self, addr: PageAddr) -> Option<Arc<Vma>> {
        let (_, v) = self.map.range(..addr.get()).next_back()?;
        (v.end == addr).then(|| Arc::clone(v))
    }

    /// The pending VMA starting exactly at `addr`.
    pub fn starting_at(&self, addr: PageAddr) -> Option<Arc<Vma>> {
        self.map.get(&addr.get()).cloned()
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
            if v.end < limit && limit - v.end.get() >= len {
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
            start = start.max(p.end.get());
        }
        for (_, v) in self.map.range(start..) {
            if start.saturating_add(len) <= start_gap(v) {
                break;
            }
            start = start.max(v.end.get());
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
            .remove(&vma.start.get())
            .expect("removing a VMA that is not in the tree");
        debug_assert!(Arc::ptr_eq(&old, vma));
        self.removed.push(old);
    }

    /// Insert `vma`, which must not overlap anything pending.
    pub fn insert(&mut self, vma: Arc<Vma>) {
        debug_assert!(
            self.intersecting(vma.start.get(), vma.end.get()).is_empty(),
            "overlapping insert"
        );
        self.map.insert(vma.start.get(), vma);
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
                .get(&v.start.get())
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
