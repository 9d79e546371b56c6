//! What a workload needs from a memory manager: the interface both softmm (`soft.rs`) and
//! the host kernel (`host.rs`) implement.
//!
//! Every mapping is private anonymous memory. Operations return an [`OpError`] instead of
//! panicking: an unexpected failure (an errno, a signal) ends the bench with a message.

use std::time::Duration;

use super::report::TlbFlushes;

/// An operation of a workload failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{machine}: {op} failed: {detail}")]
pub struct OpError {
    /// `host` or the softmm variant.
    pub machine: &'static str,
    /// The operation (`mmap`, `touch`…).
    pub op: &'static str,
    /// The errno or fault.
    pub detail: String,
}

/// The cost of tearing down an address space that held many VMAs
/// ([`Machine::teardown`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Teardown {
    /// Time attributed to the VMAs (see the implementations for what is included).
    pub time: Duration,
    /// RCU callbacks the teardown queued, where the machine can count them.
    pub rcu_callbacks: Option<u64>,
}

/// A memory manager with address spaces that threads share.
pub(crate) trait Machine: Sync {
    /// One thread's handle.
    type Thread: Thread;

    /// A handle for the calling thread.
    fn thread(&self) -> Self::Thread;

    /// Build a fresh address space (softmm) or process (host) holding `vmas` VMAs made
    /// as [`fill_vmas`](super::scale::fill_vmas) makes them, then tear it down, timed.
    fn teardown(&self, vmas: u64) -> Result<Teardown, OpError>;
}

/// One thread's operations. Addresses are those returned by [`Thread::map`] or
/// [`Thread::reserve`] of the same handle.
pub(crate) trait Thread: Send {
    /// Leave to read one page of a mapping of another thread of the same machine
    /// ([`Thread::lend`]); the reader drops it once it has read.
    type Loan: Send;

    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)`, 4 KiB pages
    /// only (the host side asks for no transparent huge pages).
    fn map(&mut self, len: u64) -> Result<u64, OpError>;
    /// `mmap(NULL, len, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE)`: address
    /// space that is never loaded from or stored to. [`Thread::map_fixed`],
    /// [`Thread::protect`] and [`Thread::unmap`] may carve it up.
    fn reserve(&mut self, len: u64) -> Result<u64, OpError>;
    /// `mmap(addr, len, PROT_READ|PROT_WRITE, MAP_FIXED|MAP_PRIVATE|MAP_ANONYMOUS)` inside
    /// a reservation (never touched either).
    fn map_fixed(&mut self, addr: u64, len: u64) -> Result<(), OpError>;
    /// `munmap(addr, len)` of a whole mapping made by [`Thread::map`] or
    /// [`Thread::reserve`], or of any range inside a reservation.
    fn unmap(&mut self, addr: u64, len: u64) -> Result<(), OpError>;
    /// `mprotect(addr, len, PROT_READ | (writable ? PROT_WRITE : 0))`.
    fn protect(&mut self, addr: u64, len: u64, writable: bool) -> Result<(), OpError>;
    /// `madvise(addr, len, MADV_DONTNEED)`.
    fn dontneed(&mut self, addr: u64, len: u64) -> Result<(), OpError>;
    /// Store one byte at `addr` (faults the page in on first touch).
    fn touch(&mut self, addr: u64) -> Result<(), OpError>;
    /// Translate `addr` for reading: softmm's `Cpu::translate`; on the host, a one-byte
    /// load (the hardware MMU translates it).
    fn translate(&mut self, addr: u64) -> Result<(), OpError>;
    /// Load the aligned 8-byte word at `addr` of a faulted page: softmm's
    /// `Cpu::read_u64_le`; on the host, a load.
    fn load_u64(&mut self, addr: u64) -> Result<(), OpError>;
    /// Store `v` as the aligned 8-byte word at `addr` of a faulted page: softmm's
    /// `Cpu::write_u64_le`; on the host, a store.
    fn store_u64(&mut self, addr: u64, v: u64) -> Result<(), OpError>;
    /// Find the VMA containing `addr` (inside a reservation): softmm's
    /// `AddressSpace::find_vma`; on the host `msync(addr, 4096, MS_ASYNC)`, whose only
    /// work is `mmap_lock` read, `find_vma` and the unlock.
    fn lookup(&mut self, addr: u64) -> Result<(), OpError>;
    /// Produce one zeroed 4 KiB page: softmm allocates a zeroed frame (what its fault
    /// path pays for the page) and frees it, or with `keep` holds it until the handle is
    /// dropped (so the next call gets another frame); the host zeroes the resident page
    /// at `scratch` (`memset`, what the kernel's `clear_page` does).
    fn zero_frame(&mut self, scratch: u64, keep: bool) -> Result<(), OpError>;
    /// Make `[addr, addr + len)` of a mapping of ours resident, for
    /// [`Thread::zero_frame`] to write to: the host faults every page in; softmm does
    /// nothing (its `zero_frame` takes frames from its allocator).
    fn populate(&mut self, addr: u64, len: u64) -> Result<(), OpError>;
    /// Let another thread of the same machine read the page at `addr` of a mapping
    /// made by [`Thread::map`] of this handle, until it drops the loan. Meanwhile this
    /// handle neither unmaps that mapping nor stores to it (the host refuses both).
    fn lend(&mut self, addr: u64) -> Result<Self::Loan, OpError>;
    /// Load the first 8-byte word of the page another thread lent: softmm's
    /// `Cpu::read_u64_le` on this thread's `Cpu` (its TLB caches the translation); on
    /// the host, a load.
    fn load_lent(&mut self, loan: &Self::Loan) -> Result<(), OpError>;
    /// Nodes a VMA lookup visits, root to leaf, where the machine can tell (softmm).
    fn tree_levels(&self) -> Option<u32> {
        None
    }
    /// The TLB flushes of the address space so far, where the machine counts them
    /// (softmm).
    fn tlb_flushes(&self) -> Option<TlbFlushes> {
        None
    }
}
