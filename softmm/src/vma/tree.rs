//! The VMA tree: an RCU-safe B-tree of VMAs keyed by start address, with per-child gap
//! summaries for placement (Linux's maple tree in RCU mode plays this part).
//!
//! # Shape
//!
//! Leaves hold up to `CAP` VMAs (16; 4 in unit tests and models) with their bounds
//! inline; internal nodes hold up to `CAP` children and, for each, the start of its
//! first VMA (the search key), the end of its last VMA and the largest free gap between
//! two consecutive VMAs inside it (module `gap`). Every node but the root holds at
//! least `MIN` entries, so the height is logarithmic. Nodes carry no reference counts:
//! the latest version owns them; older versions are only read by RCU readers.
//!
//! # Rules
//!
//! * **Readers** ([`VmaTree::find`] and the other `&RcuGuard` methods) take no lock and
//!   do no atomic read-modify-write: under their RCU guard they load the root with
//!   Acquire and walk plain node memory. A published node is never written again, and
//!   everything a reader returns borrows from its guard.
//! * **Writers** hold `mmap_lock` for write (the callers' duty; a commit that finds
//!   another edit's root panics) and build the next version in a [`TreeEdit`]: the
//!   edit copies each node it changes, and every node on the path to it, into a
//!   *private* node tagged with its generation, and changes private nodes in place. The
//!   published version is untouched until the commit.
//! * **One publication point**: [`TreeEdit::commit`] publishes the private root with
//!   one Release compare-exchange of [`VmaTree`]'s root. A reader that loaded the old
//!   root walks only old nodes, one that loaded the new root only nodes of the new
//!   version, all written before the store: never a mix.
//! * **Freeing**: the published nodes an edit replaced are unlinked by that store and
//!   freed by **one** RCU callback per commit, after a grace period. The removed VMAs
//!   are marked detached at commit, and the counts the tree held of them are dropped
//!   in that same batch. An edit dropped without commit frees only its
//!   private nodes (nobody else ever saw them). Dropping the tree frees every node
//!   through one callback (exit: one batch however many VMAs).
//! * **VMA references**: the tree owns one strong count of each VMA of the published
//!   version, held by no slot in particular: leaf slots are bitwise copies that own
//!   nothing, so copying a leaf or freeing one touches no VMA. An edit logs the count
//!   passed to each `insert` (the tree's at commit, dropped on abort) and, for each
//!   `remove`, one count owed (dropped with the commit's batch; nothing on abort).
//!   Per VMA the counts then add up: published + inserted − removed = in the new
//!   version. Readers get `&Arc<Vma>` into a slot; the VMA outlives their guard.
//! * **Iteration** is over one version (one root load), hence consistent; a point
//!   lookup returns a VMA that was in the tree at some instant during the call, maybe
//!   one being replaced (the per-VMA lock and a range re-check tell the fault path).
//!
//! Atomics come from `crate::sync` (loom and shuttle replace them). The facade has no
//! atomic pointer, so the root is an `AtomicUsize` holding the node's address with its
//! provenance exposed (`NodePtr::expose`); everything below the root is reached
//! through ordinary pointers.

mod edit;
mod gap;
mod node;
mod ptr;
#[cfg(not(any(loom, shuttle)))]
mod spare;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod v1;
mod view;

use std::{marker::PhantomData, mem::ManuallyDrop, sync::Arc};

pub use edit::TreeEdit;
use node::Leaf;
use ptr::{NodePtr, NodeRef};
pub use view::Shape;
use view::View;

use super::{Vma, flags::VM_ACCOUNT};
use crate::{
    addr::PAGE_SHIFT,
    sync::{AtomicU64, AtomicUsize, Ordering, rcu, rcu::RcuGuard},
};

/// The most a `start_gap` function may lower a VMA's start (Linux's `stack_guard_gap`).
const MAX_START_GAP: u64 = 1 << 20;

/// The RCU-safe set of VMAs of one address space, keyed by start address.
pub struct VmaTree {
    /// Address (provenance exposed) of the published root node; never null.
    root: AtomicUsize,
    /// The tree owns its nodes (and through the leaves, references to VMAs).
    _owns: PhantomData<Leaf>,
    /// Pages of the published VMAs that carry `VM_ACCOUNT` (this address space's share
    /// of `vm_committed_as`); changed only by commits.
    accounted: AtomicU64,
}

/// What an edit did that its commit or its abort settles (see "VMA references").
enum Entry {
    /// A published node replaced by a private copy, or merged away: freed after the
    /// grace period of the commit that unlinked it; still published after an abort.
    Replaced(NodePtr),
    /// A VMA taken out: one count owed, dropped after the commit's grace period;
    /// nothing is owed after an abort (the published version still holds it).
    Removed(ManuallyDrop<Arc<Vma>>),
    /// The count passed to `insert`: the tree's once committed, dropped on abort.
    Inserted(ManuallyDrop<Arc<Vma>>),
}

/// What to free after a grace period.
enum Garbage {
    /// A commit's log: its replaced nodes (each alone: their children live on) and the
    /// counts owed for removed VMAs.
    Log(Vec<Entry>),
    /// A whole tree, with the counts of its VMAs.
    Tree(NodePtr),
}

// SAFETY: a `Garbage` is the only handle left to its nodes (they are unlinked, and only
// the callback that owns it frees them), so moving it to the thread that runs the
// callback moves ownership; freeing it drops `Arc<Vma>`s, which are Send + Sync
// (checked below).
unsafe impl Send for Garbage {}

const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Arc<Vma>>();
};

impl Garbage {
    /// Free it.
    ///
    /// # Safety
    /// 1. Nobody can reach the nodes any more: a grace period has passed since they were
    ///    unlinked from the published tree (and so since the removed VMAs were).
    /// 2. The counts are owed: the log is that of a committed edit, or the tree is the
    ///    current version of a dropped `VmaTree`.
    unsafe fn free(self) {
        match self {
            Garbage::Log(mut log) => {
                for e in log.drain(..) {
                    match e {
                        // SAFETY: (1); each node is logged once.
                        Entry::Replaced(n) => unsafe { n.free() },
                        // (2): this count is owed.
                        Entry::Removed(v) => drop(ManuallyDrop::into_inner(v)),
                        // The tree holds this count now.
                        Entry::Inserted(_) => {}
                    }
                }
                recycle_log(log);
            }
            // SAFETY: (1), (2), for every node of the tree.
            Garbage::Tree(root) => unsafe { root.free_tree() },
        }
    }
}

/// An empty edit log (a kept one where there is one: module `spare`).
fn new_log() -> Vec<Entry> {
    #[cfg(not(any(loom, shuttle)))]
    return spare::log();
    #[cfg(any(loom, shuttle))]
    Vec::with_capacity(16)
}

/// Give back an emptied edit log.
fn recycle_log(log: Vec<Entry>) {
    #[cfg(not(any(loom, shuttle)))]
    spare::keep_log(log);
    #[cfg(any(loom, shuttle))]
    drop(log);
}

impl Default for VmaTree {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for VmaTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = rcu::read_lock();
        f.debug_struct("VmaTree")
            .field("len", &self.len(&g))
            .finish_non_exhaustive()
    }
}

impl VmaTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self {
            root: AtomicUsize::new(NodePtr::new_leaf(Leaf::new(0)).expose()),
            _owns: PhantomData,
            accounted: AtomicU64::new(0),
        }
    }

    /// Pages of the VMAs with `VM_ACCOUNT` in the last committed version (exact for the
    /// holder of `mmap_lock` write, a snapshot for anyone else).
    pub fn accounted_pages(&self) -> u64 {
        // Relaxed: written only by commits, which `mmap_lock` write serialises; its
        // holder reads its own writes, others get a statistic.
        self.accounted.load(Ordering::Relaxed)
    }

    /// Add the accounted pages a published edit inserted less those it removed to
    /// the tree's total (a VMA removed and put back counts both ways: nothing).
    fn account(&self, log: &[Entry]) {
        let pages = |v: &Vma| {
            if v.flags.intersects(VM_ACCOUNT) {
                v.len() >> PAGE_SHIFT
            } else {
                0
            }
        };
        let delta = log.iter().fold(0u64, |d, e| match e {
            Entry::Inserted(v) => d.wrapping_add(pages(v)),
            Entry::Removed(v) => d.wrapping_sub(pages(v)),
            Entry::Replaced(_) => d,
        });
        // Relaxed: commits are serialised by `mmap_lock` write (see `accounted_pages`);
        // the sum wraps back into range once every VMA is counted.
        self.accounted.fetch_add(delta, Ordering::Relaxed);
    }

    /// The published root.
    fn load_root(&self) -> NodePtr {
        // Acquire: pairs with the Release compare-exchange in `TreeEdit::commit`: the
        // nodes of the version it published are fully written.
        NodePtr::from_exposed(self.root.load(Ordering::Acquire))
    }

    /// The published version, for as long as `g` is held.
    fn view<'g>(&self, g: &'g RcuGuard) -> View<'g> {
        let _pinned = g;
        // SAFETY: (1) `g` was pinned before this load and is held for 'g. Every node
        // reachable from the root just loaded is published (never written again) and
        // is freed only by a callback queued after a later commit unlinked it, which
        // runs after `g` is dropped. (The guard comes from `crate::sync::rcu`, the
        // collector the callbacks are queued in.)
        View::new(unsafe { NodeRef::new(self.load_root()) })
    }

    /// The VMA containing `addr`.
    #[inline]
    pub fn find<'g>(&self, addr: u64, g: &'g RcuGuard) -> Option<&'g Arc<Vma>> {
        self.view(g).find(addr)
    }

    /// `[start, end)` of the VMA containing `addr`, from the leaf that holds it (a
    /// leaf keeps its VMAs' bounds inline, and a VMA's bounds never change): one
    /// memory access fewer than [`find`](Self::find) and reading the VMA.
    #[inline]
    pub fn find_bounds(&self, addr: u64, g: &RcuGuard) -> Option<(u64, u64)> {
        self.view(g).find_bounds(addr)
    }

    /// The first VMA that ends above `addr` (Linux `find_vma`).
    pub fn find_from<'g>(&self, addr: u64, g: &'g RcuGuard) -> Option<&'g Arc<Vma>> {
        self.view(g).find_from(addr)
    }

    /// The last VMA that starts below `addr`.
    pub fn prev<'g>(&self, addr: u64, g: &'g RcuGuard) -> Option<&'g Arc<Vma>> {
        self.view(g).prev(addr)
    }

    /// VMAs intersecting `[start, end)`, in address order.
    pub fn intersecting<'g>(&self, start: u64, end: u64, g: &'g RcuGuard) -> Vec<&'g Arc<Vma>> {
        self.view(g).intersecting(start, end)
    }

    /// All VMAs in address order (of one version of the tree).
    pub fn iter<'g>(&self, g: &'g RcuGuard) -> impl Iterator<Item = &'g Arc<Vma>> {
        self.view(g).iter()
    }

    /// Number of VMAs (`map_count`).
    pub fn len(&self, g: &RcuGuard) -> usize {
        usize::try_from(self.view(g).root().hdr().total()).expect("VMA count fits usize")
    }

    /// Whether there are no VMAs.
    pub fn is_empty(&self, g: &RcuGuard) -> bool {
        self.len(g) == 0
    }

    /// Nodes a lookup visits in the published version, root and leaf included (reads
    /// the root only).
    pub fn levels(&self, g: &RcuGuard) -> u32 {
        self.view(g).levels()
    }

    /// Height and node counts of the published version (visits every node).
    pub fn shape(&self, g: &RcuGuard) -> Shape {
        self.view(g).shape()
    }
}

impl Drop for VmaTree {
    fn drop(&mut self) {
        // `&mut self`: no edit is pending, so every node is published. Readers may still
        // hold references borrowed from their guards: free the whole tree after a grace
        // period, in one callback.
        let garbage = Garbage::Tree(self.load_root());
        rcu::note_callback();
        rcu::read_lock().defer(move || {
            // SAFETY: the tree is gone (no new reader can load its root) and the
            // callback runs after every reader that loaded it has left.
            unsafe { garbage.free() }
        });
    }
}
