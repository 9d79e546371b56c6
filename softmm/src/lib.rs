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
//! Layers (a module uses only the ones below it):
//!
//! ```text
//! mm/ fault access stats      system calls, faults, guest access, procfs text
//! vma/                        immutable VMAs, the RCU-safe VMA tree
//! pgtable/                    entries, table pages, walkers
//! frame/                      physical memory, per-frame metadata, allocator
//! sync/                       atomics facade (std | loom | shuttle), RCU
//! ```
//!
//! Concurrency rules (DESIGN.md, "Lock order"): `mmap_lock` → VMA write locks → PTL
//! (parent before child) → allocator internals. RCU read sections nest inside anything;
//! RCU callbacks take no lock.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;
pub mod access;
pub mod addr;
pub mod config;
pub mod error;
pub mod fault;
pub mod file;
pub mod frame;
pub mod mm;
pub mod pagecache;
pub mod pgtable;
pub mod process;
pub mod stats;
pub mod sync;
pub mod vma;

pub use access::{AccessFault, Cpu};
pub use addr::{PAGE_SIZE, VirtAddr};
pub use config::Config;
pub use error::Errno;
pub use fault::{Access, Fault, Signal};
pub use frame::PhysMem;
pub use mm::AddressSpace;
pub use process::{Machine, Pid};
