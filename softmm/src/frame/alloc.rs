//! The frame allocator: lock-free, sharded free lists ("per-CPU caches").
//!
//! * Each shard is a Treiber stack of free 4 KiB frames linked through
//!   [`PageMeta::next`](super::meta::PageMeta). The head word packs a 32-bit ABA tag and
//!   `pfn + 1` (0 = empty); every successful push or pop bumps the tag, so a pop that
//!   read a stale `next` fails its CAS. Links live in the metadata array, which is never
//!   freed, so reading the `next` of a frame another thread just popped is harmless.
//! * A thread allocates from and frees to its home shard; when the home shard is empty
//!   it refills it with a batch of [`STEAL_BATCH`] frames taken from another shard, then
//!   from a fresh 2 MiB chunk (the untouched part of the region, handed out by a bump
//!   pointer), then from a freed chunk. Refilling in batches, as Linux refills a per-CPU
//!   page list from the zone, keeps two CPUs off one stack's head: stealing one frame
//!   per allocation made every allocation of both a cross-CPU CAS, and handed them
//!   alternate frames whose metadata shares cache lines. Model-checking builds have one
//!   shard (`MODEL_SHARDS`).
//! * 2 MiB compound frames come from the chunk stack or the bump pointer. Freed 4 KiB
//!   frames never re-form a chunk (no compaction): a long-running mix of both sizes can
//!   fail huge allocations while small ones still succeed, as Linux without compaction.
//! * No lock anywhere, so RCU callbacks may free frames (sync::rcu rules).
//!
//! Orderings: push = Release CAS on the head (publishes the `next` link and everything
//! the freeing thread did to the frame); pop = Acquire load + AcqRel CAS (sees them).

use crossbeam_utils::CachePadded;

use super::meta::PageMeta;
use crate::sync::{AtomicU32, AtomicU64, Ordering, percpu::home};

/// Frames per chunk: 2 MiB (a PMD-sized compound frame); 64 KiB in model-checking
/// builds, whose physical memory is a few chunks of the checkers' atomics.
pub const CHUNK_FRAMES: u32 = if cfg!(any(loom, shuttle)) { 16 } else { 512 };

/// Frames an empty shard takes from another at once (2 in model-checking builds, which
/// have few frames).
pub const STEAL_BATCH: u32 = if cfg!(any(loom, shuttle)) { 2 } else { 32 };

/// Shards in model-checking builds: one, shared by every modelled thread. The checkers
/// run their threads as coroutines of one OS thread, so `home` already gives them all
/// the same slot; one shard makes that a rule rather than an accident of thread-locals.
/// Models rely on it: a frame one thread frees is the next any thread allocates, so a
/// freed frame is reused within a few steps (a zap that frees a frame while it is still
/// mapped shows a reader another owner's bytes). The checkers also explore one stack
/// head instead of several that stay empty.
const MODEL_SHARDS: usize = 1;

#[derive(Debug, Default)]
struct Stack {
    /// `tag << 32 | (pfn + 1)`.
    head: AtomicU64,
}

const fn pack(tag: u32, pfn1: u32) -> u64 {
    ((tag as u64) << 32) | pfn1 as u64
}

impl Stack {
    /// Push the chain `first ..= last` (already linked through `next`).
    fn push_chain(&self, meta: &[PageMeta], first: u32, last: u32) {
        // Relaxed load: the CAS below validates it.
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // Relaxed: published by the Release CAS.
            meta[last as usize]
                .next
                .store(head as u32, Ordering::Relaxed);
            let new = pack((head >> 32) as u32 + 1, first + 1);
            // Release: publishes the links and the frames' contents to the popper.
            match self
                .head
                .compare_exchange_weak(head, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    fn pop(&self, meta: &[PageMeta]) -> Option<u32> {
        // Acquire pairs with the Release CAS of `push_chain`.
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let pfn1 = head as u32;
            if pfn1 == 0 {
                return None;
            }
            // Relaxed: if another thread popped this frame meanwhile, the tag changed and
            // the CAS fails; the value read is then discarded.
            let next = meta[pfn1 as usize - 1].next.load(Ordering::Relaxed);
            let new = pack((head >> 32) as u32 + 1, next);
            // AcqRel: Acquire to see the pusher's writes; Release to order our tag bump.
            match self
                .head
                .compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(pfn1 - 1),
                Err(h) => head = h,
            }
        }
    }
}

#[derive(Debug, Default)]
struct Shard {
    free: Stack,
    /// 4 KiB frames handed out / taken back through this shard (for accounting).
    allocs: AtomicU64,
    frees: AtomicU64,
}

/// The allocator state of one [`PhysMem`](super::PhysMem).
#[derive(Debug)]
pub(super) struct FrameAllocator {
    shards: Box<[CachePadded<Shard>]>,
    /// Freed whole chunks (linked through the head frame's `next`).
    chunks: Stack,
    /// Next never-used chunk index.
    fresh: AtomicU32,
    nchunks: u32,
    huge_allocs: AtomicU64,
    huge_frees: AtomicU64,
}

impl FrameAllocator {
    pub(super) fn new(nchunks: u32) -> Self {
        let n = if cfg!(any(loom, shuttle)) {
            MODEL_SHARDS
        } else {
            std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(2, 64)
                * 2
        };
        Self {
            shards: (0..n).map(|_| CachePadded::new(Shard::default())).collect(),
            chunks: Stack::default(),
            fresh: AtomicU32::new(0),
            nchunks,
            huge_allocs: AtomicU64::new(0),
            huge_frees: AtomicU64::new(0),
        }
    }

    /// Take a free 4 KiB frame.
    pub(super) fn alloc(&self, meta: &[PageMeta]) -> Option<u32> {
        let n = self.shards.len();
        let h = home(n);
        let pfn = self.shards[h]
            .free
            .pop(meta)
            .or_else(|| self.steal(meta, h))
            .or_else(|| self.carve(meta, h))?;
        // Relaxed: a statistic.
        self.shards[h].allocs.fetch_add(1, Ordering::Relaxed);
        Some(pfn)
    }

    /// Take up to [`STEAL_BATCH`] frames from the first other shard that has any: return
    /// one, push the rest to shard `h` as one chain.
    fn steal(&self, meta: &[PageMeta], h: usize) -> Option<u32> {
        let n = self.shards.len();
        let (victim, first) = (1..n).find_map(|i| {
            let v = &self.shards[(h + i) % n].free;
            Some((v, v.pop(meta)?))
        })?;
        // The frames popped are ours alone (free, off every stack): link them freely.
        let mut chain: Option<(u32, u32)> = None;
        for _ in 1..STEAL_BATCH {
            let Some(p) = victim.pop(meta) else { break };
            chain = Some(match chain {
                None => (p, p),
                Some((head, tail)) => {
                    // Relaxed: published by the Release CAS of push_chain.
                    meta[tail as usize].next.store(p + 1, Ordering::Relaxed);
                    (head, p)
                }
            });
        }
        if let Some((head, tail)) = chain {
            self.shards[h].free.push_chain(meta, head, tail);
        }
        Some(first)
    }

    /// Split a chunk into frames: return its first frame, push the rest to shard `h`.
    fn carve(&self, meta: &[PageMeta], h: usize) -> Option<u32> {
        let first = self.take_chunk(meta)?;
        for i in 1..CHUNK_FRAMES - 1 {
            // Relaxed: published by the Release CAS of push_chain.
            meta[(first + i) as usize]
                .next
                .store(first + i + 2, Ordering::Relaxed);
        }
        self.shards[h]
            .free
            .push_chain(meta, first + 1, first + CHUNK_FRAMES - 1);
        Some(first)
    }

    fn take_chunk(&self, meta: &[PageMeta]) -> Option<u32> {
        // Relaxed: the bump pointer only hands out indices; the chunk memory has never
        // been touched, so there is nothing to synchronise with.
        let c = self.fresh.fetch_add(1, Ordering::Relaxed);
        if c < self.nchunks {
            return Some(c * CHUNK_FRAMES);
        }
        // Keep `fresh` from wrapping on repeated failures.
        self.fresh.store(self.nchunks, Ordering::Relaxed);
        self.chunks.pop(meta)
    }

    /// Return a 4 KiB frame.
    pub(super) fn free(&self, meta: &[PageMeta], pfn: u32) {
        let h = home(self.shards.len());
        self.shards[h].free.push_chain(meta, pfn, pfn);
        // Relaxed: a statistic.
        self.shards[h].frees.fetch_add(1, Ordering::Relaxed);
    }

    /// Take a free 2 MiB chunk (its first pfn).
    pub(super) fn alloc_huge(&self, meta: &[PageMeta]) -> Option<u32> {
        let c = self.take_chunk(meta)?;
        // Relaxed: a statistic.
        self.huge_allocs.fetch_add(1, Ordering::Relaxed);
        Some(c)
    }

    /// Return a 2 MiB chunk.
    pub(super) fn free_huge(&self, meta: &[PageMeta], first: u32) {
        self.chunks.push_chain(meta, first, first);
        // Relaxed: a statistic.
        self.huge_frees.fetch_add(1, Ordering::Relaxed);
    }

    /// 4 KiB frames currently allocated (a huge frame counts 512).
    pub(super) fn in_use(&self) -> u64 {
        // Relaxed: an accounting snapshot, exact at quiescent points.
        let allocs: u64 = self
            .shards
            .iter()
            .map(|s| s.allocs.load(Ordering::Relaxed))
            .sum();
        let frees: u64 = self
            .shards
            .iter()
            .map(|s| s.frees.load(Ordering::Relaxed))
            .sum();
        let small = allocs.wrapping_sub(frees);
        let huge = self
            .huge_allocs
            .load(Ordering::Relaxed)
            .wrapping_sub(self.huge_frees.load(Ordering::Relaxed));
        small.wrapping_add(huge.wrapping_mul(CHUNK_FRAMES as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &Stack, meta: &[PageMeta]) -> Vec<u32> {
        std::iter::from_fn(|| s.pop(meta)).collect()
    }

    #[test]
    fn an_empty_shard_refills_with_one_batch_from_another() {
        let pm = super::super::PhysMem::new(u64::from(CHUNK_FRAMES) << crate::addr::PAGE_SHIFT)
            .expect("a chunk");
        let meta = pm.metas();
        let a = FrameAllocator::new(1);
        let (home, victim) = (0, 1);
        for pfn in 0..100 {
            a.shards[victim].free.push_chain(meta, pfn, pfn);
        }
        let first = a.steal(meta, home).expect("a frame");
        let mut ours = drain(&a.shards[home].free, meta);
        let theirs = drain(&a.shards[victim].free, meta);
        assert_eq!(
            ours.len(),
            STEAL_BATCH as usize - 1,
            "the rest of the batch"
        );
        assert_eq!(theirs.len(), 100 - STEAL_BATCH as usize);
        ours.push(first);
        ours.extend(&theirs);
        ours.sort_unstable();
        assert_eq!(
            ours,
            (0..100).collect::<Vec<_>>(),
            "each frame exactly once"
        );

        // A shard with less than a batch gives what it has; none left: no frame.
        for pfn in 0..3 {
            a.shards[victim].free.push_chain(meta, pfn, pfn);
        }
        assert!(a.steal(meta, home).is_some());
        assert_eq!(drain(&a.shards[home].free, meta).len(), 2);
        assert!(a.steal(meta, home).is_none());
    }
}
