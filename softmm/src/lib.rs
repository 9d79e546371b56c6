//! softmm — a concurrent virtual-memory manager with Linux x86-64 semantics.
//!
//! An [`AddressSpace`] is made of VMAs ([`vma`]) over four-level page tables that map
//! real, host-backed physical frames. The system calls (`mmap`, `munmap`, `mprotect`,
//! `mremap`, `madvise`, `brk`, `mlock`, `msync`) live in [`mm`] and follow Linux's
//! argument checks, errno values ([`Errno`]), VMA split and merge rules; a [`Cpu`] is what
//! a thread uses to translate addresses, read and write guest memory and take page
//! faults; [`stats`] prints `/proc/PID/maps` and `/proc/PID/smaps` byte for byte as Linux
//! does; a [`Machine`] holds processes (fork, exec, exit) and files.
//!
//! # Quick start
//!
//! ```
//! use softmm::{AddressSpace, Config, Errno, abi::*};
//!
//! let mm = AddressSpace::new(Config::default())?;
//! let a = mm.mmap(0, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)?;
//! let cpu = mm.cpu();
//! cpu.write(a + 4094, b"spans two pages")?; // faults both pages in
//! let mut buf = [0u8; 15];
//! cpu.read(a + 4094, &mut buf)?;
//! assert_eq!(&buf, b"spans two pages");
//!
//! // Linux's argument checks and errno values.
//! assert_eq!(mm.munmap(a + 1, 4096), Err(Errno::EINVAL));
//! mm.munmap(a, 4096)?;
//! assert!(cpu.read(a, &mut buf).is_err(), "SIGSEGV: the page is gone");
//! assert!(mm.maps_text().contains("rw-p"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Frame bytes are reached only through a reference that owns a count of the frame
//! ([`FrameRef`], which [`Cpu::translate`] returns), never by a bare frame number, so a
//! stale translation cannot read memory that has since been reused:
//!
//! ```compile_fail
//! let mm = softmm::AddressSpace::new(softmm::Config::default()).unwrap();
//! let mut buf = [0u8; 8];
//! // No public function reads a frame by its number.
//! mm.phys().read(mm.phys().zero_pfn(), 0, &mut buf);
//! ```
//!
//! Layers (a module uses only the rows below its own, and within its row only the modules
//! to its right; `tests/layers.rs` checks every import against this diagram):
//!
//! ```text
//! testing                internals for the crate's models and benchmarks (doc-hidden)
//! process                Machine: processes (fork, exec, exit), files, descriptor tables
//! mm/                    AddressSpace: system calls, faults (mm::fault), guest access
//!                        (mm::access, Cpu), per-VMA lock fast path, reverse map
//! stats/                 maps and smaps text, per-CPU counters
//! tlb/                   software TLB shootdown: access windows, flush requests
//! vma/                   immutable VMAs, the RCU-safe VMA tree, per-VMA locks
//! pgtable/               entries, table pages, walkers, the gather of a zap
//! file pagecache         open files; page caches (reach address spaces via `Mapper`)
//! frame/                 physical memory, per-frame metadata, allocator
//! config                 tunables
//! abi addr error         Linux constants, address arithmetic, errno values
//! sync/                  atomics facade (std | loom | shuttle), RCU, locks
//! ```
//!
//! `get_user_pages` and huge-page collapse are parts of `mm`, a collapse daemon a row
//! above it.
//!
//! Lock order: `mmap_lock` → VMA write locks → PTL
//! (parent before child) → allocator internals. RCU read sections nest inside anything;
//! RCU callbacks take no lock.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;
pub mod addr;
pub mod config;
pub mod error;
pub mod file;
pub(crate) mod frame;
pub mod mm;
pub mod pagecache;
pub(crate) mod pgtable;
pub mod process;
pub mod stats;
pub(crate) mod sync;
#[doc(hidden)]
pub mod testing;
pub(crate) mod tlb;
pub mod vma;

pub use addr::{PAGE_SIZE, PageAddr, VirtAddr};
pub use config::Config;
pub use error::Errno;
pub use frame::{FrameRef, PhysMem};
pub use mm::{
    Access, AccessFault, AddressSpace, Cpu, Fault, SegvCode, SigInfo, Signal, Translation,
};
pub use process::{Machine, Pid};

/// The README's library example, compiled and run as a doc test.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Deferred reclamation: VMAs, page tables and tree nodes that an operation removed are
/// freed after an RCU grace period, by the thread that queued them. These calls let an
/// embedder wait for them (to count frames exactly, or before tearing a machine down).
pub mod rcu {
    pub use crate::sync::rcu::{barrier, callbacks_queued, synchronize};
}
