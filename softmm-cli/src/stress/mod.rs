//! `softmm stress`: threads doing random memory-management calls and guest accesses
//! against softmm, checked by a content oracle, with frame accounting at the end.
//!
//! Each thread owns a disjoint window of one address space (and the first thread of a
//! space its heap), so its oracle is exact, while all threads contend on the shared
//! `mmap_lock`, frame allocator, page tables and RCU. Layers:
//!
//! ```text
//! runner   spaces, windows, threads, progress, frame accounting
//! worker   one thread: draw, predict, perform, compare; the verify pass
//! fork     the fork operation: the child's checks, copy-on-write both ways
//! layout   the VMA list against the oracle
//! ops      the operations, their weights and printed form
//! oracle   what Linux says each page holds and each call returns
//! madvise, mremap, file   the oracle's rules for those calls and the thread's memfd
//! report   the summary (text and JSON)
//! ```

pub mod file;
mod fork;
mod layout;
mod madvise;
mod mremap;
pub mod ops;
pub mod oracle;
pub mod report;
pub mod runner;
pub mod worker;

pub use oracle::Breakage;
pub use report::Summary;
pub use runner::{Limit, Settings, max_frames, run};
