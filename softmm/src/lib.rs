//! softmm — a concurrent virtual-memory manager with Linux x86-64 semantics.
//!
//! An [`AddressSpace`] is made of VMAs ([`vma`]) over four-level page tables
//! ([`pgtable`]) that map real, host-backed physical frames ([`frame`]). The system calls
//! (`mmap`, `munmap`, `mprotect`, `mremap`, `madvise`, `brk`, `mlock`, `msync`) live in
//! [`mm`] and follow Linux's argument checks, errno values, VMA split and merge rules;
//! [`Cpu`] is what a thread uses to translate addresses, read and write guest memory and
//! take page faults ([`fault`], [`access`]); [`stats`] prints `/proc/PID/maps` and
//! `/proc/PID/smaps` byte for byte as Linux does.
//!
//! Layers (a module uses only the rows below its own, and within its row only the modules
//! to its right; `tests/layers.rs` checks every import against this diagram):
//!
//! ```text
//! process                Machine: processes (fork, exec, exit), files, descriptor tables
//! mm/                    AddressSpace: system calls, faults (mm::fault), guest access
//!                        (mm::access, Cpu), per-VMA lock fast path, reverse map
//! stats/                 maps and smaps text, per-CPU counters
//! vma/                   immutable VMAs, the RCU-safe VMA tree, per-VMA locks
//! pgtable/               entries, table pages, walkers, the gather of a zap
//! file pagecache         open files; page caches (reach address spaces via `Mapper`)
//! frame/                 physical memory, per-frame metadata, allocator
//! config                 tunables
//! abi addr error         Linux constants, address arithmetic, errno values
//! sync/                  atomics facade (std | loom | shuttle), RCU, locks
//! ```
//!
//! Software TLBs and their shootdown belong between `stats` and `vma` (they flush what
//! `mm` changes and sit above the page tables they cache); `get_user_pages` and huge-page
//! collapse are parts of `mm`, a collapse daemon a row above it.
//!
//! Concurrency rules (DESIGN.md, "Lock order"): `mmap_lock` → VMA write locks → PTL
//! (parent before child) → allocator internals. RCU read sections nest inside anything;
//! RCU callbacks take no lock.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;
pub mod addr;
pub mod config;
pub mod error;
pub mod file;
pub mod frame;
pub mod mm;
pub mod pagecache;
pub mod pgtable;
pub mod process;
pub mod stats;
pub mod sync;
pub mod vma;

pub use addr::{PAGE_SIZE, VirtAddr};
pub use config::Config;
pub use error::Errno;
pub use frame::PhysMem;
pub use mm::{Access, AccessFault, AddressSpace, Cpu, Fault, SegvCode, Signal};
pub use process::{Machine, Pid};
