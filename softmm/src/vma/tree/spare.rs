//! Spare node memory. A writer's RCU callbacks free the nodes its commits replaced in
//! bursts of hundreds, more than malloc's per-thread cache holds, and node allocation
//! then cost a fifth of an edit. So a thread that allocates nodes keeps the nodes it
//! frees (up to [`KEEP`] of each kind) for its next allocations; a thread that only
//! frees them (a reader running callbacks while it pins) keeps none. Not used in model
//! builds, which leak freed nodes.

use std::{cell::RefCell, ptr::NonNull};

use super::node::{Internal, Leaf};

/// Nodes of each kind a thread keeps.
const KEEP: usize = 512;

/// A thread's spare nodes.
pub(super) struct Spares {
    leaves: Vec<NonNull<Leaf>>,
    internals: Vec<NonNull<Internal>>,
    /// Whether this thread has allocated nodes (only such a thread keeps spares).
    allocates: bool,
}

impl Drop for Spares {
    fn drop(&mut self) {
        for p in self.leaves.drain(..) {
            // SAFETY: a spare is unreachable memory from `Box<Leaf>` that only this list
            // holds; its contents need no drop (checked below).
            drop(unsafe { Box::from_raw(p.as_ptr()) });
        }
        for p in self.internals.drain(..) {
            // SAFETY: as above, for `Internal`.
            drop(unsafe { Box::from_raw(p.as_ptr()) });
        }
    }
}

// Spares are overwritten without dropping their old contents.
const _: () = assert!(!std::mem::needs_drop::<Leaf>() && !std::mem::needs_drop::<Internal>());

std::thread_local! {
    static SPARES: RefCell<Spares> = const {
        RefCell::new(Spares { leaves: Vec::new(), internals: Vec::new(), allocates: false })
    };
}

/// A node kind with its own spare list.
pub(super) trait Spare: Sized {
    /// The list of spares of this kind.
    fn list(s: &mut Spares) -> &mut Vec<NonNull<Self>>;
}

impl Spare for Leaf {
    fn list(s: &mut Spares) -> &mut Vec<NonNull<Self>> {
        &mut s.leaves
    }
}

impl Spare for Internal {
    fn list(s: &mut Spares) -> &mut Vec<NonNull<Self>> {
        &mut s.internals
    }
}

/// Memory holding `node`: a spare, or a new allocation (as from `Box`).
pub(super) fn alloc<T: Spare>(node: T) -> NonNull<T> {
    let spare = SPARES
        .try_with(|s| {
            let mut s = s.borrow_mut();
            s.allocates = true;
            T::list(&mut s).pop()
        })
        .ok()
        .flatten();
    match spare {
        Some(p) => {
            // SAFETY: a spare is valid, aligned memory for a `T` from `Box<T>` that no
            // one else holds; the old contents need no drop.
            unsafe { p.as_ptr().write(node) };
            p
        }
        None => NonNull::from(Box::leak(Box::new(node))),
    }
}

/// Give back the memory of a node.
///
/// # Safety
/// 1. `p` came from [`alloc`] and nobody can reach it or refers to it any more.
pub(super) unsafe fn free<T: Spare>(p: NonNull<T>) {
    let kept = SPARES
        .try_with(|s| {
            let mut s = s.borrow_mut();
            let keep = s.allocates && T::list(&mut s).len() < KEEP;
            if keep {
                let list = T::list(&mut s);
                if list.capacity() == 0 {
                    list.reserve_exact(KEEP);
                }
                list.push(p);
            }
            keep
        })
        // The thread is exiting: no more spares.
        .unwrap_or(false);
    if !kept {
        // SAFETY: (1): from `Box<T>` (or a spare, itself from one), and unreachable.
        drop(unsafe { Box::from_raw(p.as_ptr()) });
    }
}
