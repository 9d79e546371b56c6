//! Spare node memory. A writer's RCU callbacks free the nodes its commits replaced in
//! bursts of hundreds, more than malloc's per-thread cache holds, and node allocation
//! then cost a fifth of an edit. So a thread that allocates nodes keeps the nodes it
//! frees (up to [`KEEP`] of each kind) for its next allocations; a thread that only
//! frees them (a reader running callbacks while it pins) keeps none. Not used in model
//! builds, which leak freed nodes.
//!
//! Edit logs are kept the same way: a commit hands its log to its RCU callback, which
//! empties it after the grace period and gives it back here for a later edit (up to
//! [`KEEP_LOGS`], each of at most [`LOG_CAP`] entries), so that an edit allocates no
//! log of its own.

use std::{cell::RefCell, ptr::NonNull};

use super::{
    Entry,
    node::{Internal, Leaf},
};

/// Nodes of each kind a thread keeps.
const KEEP: usize = 512;

/// Emptied edit logs a thread keeps: those of a batch of callbacks in flight and of
/// those queued behind it until it is ripe (a few hundred commits when one thread
/// churns mappings: its grace period waits for crossbeam's epoch to advance twice).
const KEEP_LOGS: usize = 512;

/// The room of a new log, and the most a kept log may have (a large unmap's log is
/// freed rather than kept).
pub(super) const LOG_CAP: usize = 16;

/// A thread's spare nodes.
pub(super) struct Spares {
    leaves: Vec<NonNull<Leaf>>,
    internals: Vec<NonNull<Internal>>,
    /// Emptied edit logs.
    logs: Vec<Vec<Entry>>,
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
        RefCell::new(Spares {
            leaves: Vec::new(),
            internals: Vec::new(),
            logs: Vec::new(),
            allocates: false,
        })
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
    let p = memory::<T>();
    // SAFETY: valid, aligned memory for a `T` that no one else holds, whose old
    // contents (if any) need no drop (see `memory`).
    unsafe { p.as_ptr().write(node) };
    p
}

/// Memory holding a bitwise copy of `*src` (a spare, or a new allocation), written in
/// place: a node copy without a move of the whole node through the stack.
pub(super) fn alloc_copy<T: Spare>(src: &T) -> NonNull<T> {
    let p = memory::<T>();
    // SAFETY: `p` is valid for a `T` and no one else holds it (see `memory`); `src`
    // is a live `T` and cannot overlap memory that only this call holds. A bitwise
    // copy of a node is a valid node: its fields are plain data, and leaf slots own no
    // counts (module docs of `tree`).
    unsafe { std::ptr::copy_nonoverlapping(src, p.as_ptr(), 1) };
    p
}

/// Memory for a `T` that only the caller holds, from `Box<T>` (a spare, or new and
/// uninitialized); whatever it holds needs no drop.
fn memory<T: Spare>() -> NonNull<T> {
    let spare = SPARES
        .try_with(|s| {
            let mut s = s.borrow_mut();
            s.allocates = true;
            T::list(&mut s).pop()
        })
        .ok()
        .flatten();
    spare.unwrap_or_else(|| NonNull::from(Box::leak(Box::<T>::new_uninit())).cast())
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

/// An empty edit log: a kept one, or a new one with room for [`LOG_CAP`] entries.
pub(super) fn log() -> Vec<Entry> {
    SPARES
        .try_with(|s| s.borrow_mut().logs.pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| Vec::with_capacity(LOG_CAP))
}

/// Give back an emptied edit log, to keep if this thread edits trees.
pub(super) fn keep_log(log: Vec<Entry>) {
    debug_assert!(log.is_empty());
    if log.capacity() == 0 || log.capacity() > LOG_CAP {
        return;
    }
    // A thread that is exiting frees it.
    let _ = SPARES.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.allocates && s.logs.len() < KEEP_LOGS {
            if s.logs.capacity() == 0 {
                s.logs.reserve_exact(KEEP_LOGS);
            }
            s.logs.push(log);
        }
    });
}
