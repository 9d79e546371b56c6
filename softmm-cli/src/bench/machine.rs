//! What a workload needs from a memory manager: the interface both softmm (`soft.rs`) and
//! the host kernel (`host.rs`) implement.
//!
//! Every mapping is private anonymous memory. Operations return an [`OpError`] instead of
//! panicking: an unexpected failure (an errno, a signal) ends the bench with a message.

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

/// A memory manager with address spaces that threads share.
pub(crate) trait Machine: Sync {
    /// One thread's handle.
    type Thread: Thread;

    /// A handle for the calling thread.
    fn thread(&self) -> Self::Thread;
}

/// One thread's operations. Addresses are those returned by [`Thread::map`] of the same
/// handle.
pub(crate) trait Thread: Send {
    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)`, 4 KiB pages
    /// only (the host side asks for no transparent huge pages).
    fn map(&mut self, len: u64) -> Result<u64, OpError>;
    /// `munmap(addr, len)` of a whole mapping made by [`Thread::map`].
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
    /// Produce one zeroed 4 KiB page: softmm allocates a zeroed frame and frees it (what
    /// its fault path pays for the page); the host zeroes the resident page at `scratch`
    /// (`memset`, what the kernel's `clear_page` does).
    fn zero_frame(&mut self, scratch: u64) -> Result<(), OpError>;
}
