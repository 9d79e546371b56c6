//! The softmm side: one [`AddressSpace`] per cell, one [`Cpu`] per thread.

use std::sync::Arc;

use softmm::{
    AddressSpace, Config, Cpu, Errno,
    abi::{MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE},
    config::FaultLocking,
    fault::Access,
};

use super::{
    machine::{Machine, OpError, Thread},
    variant_name,
};

/// Physical memory per thread: a 64 MiB region plus room for its page tables.
const PHYS_PER_THREAD: u64 = 64 << 20;
/// Physical memory every machine has besides the per-thread share.
const PHYS_SLACK: u64 = 64 << 20;

/// A softmm machine in one `Config` variant.
#[derive(Debug)]
pub(crate) struct Soft {
    mm: Arc<AddressSpace>,
    name: &'static str,
}

impl Soft {
    /// A machine for `threads` threads in variant `v`.
    pub(crate) fn new(v: FaultLocking, threads: usize) -> Result<Self, OpError> {
        let name = variant_name(v);
        let config = Config {
            phys_mem_bytes: threads as u64 * PHYS_PER_THREAD + PHYS_SLACK,
            fault_locking: v,
            ..Config::default()
        };
        let mm = AddressSpace::new(config).map_err(|e| err(name, "AddressSpace::new", e))?;
        Ok(Self { mm, name })
    }
}

fn err(machine: &'static str, op: &'static str, e: impl std::fmt::Display) -> OpError {
    OpError {
        machine,
        op,
        detail: e.to_string(),
    }
}

fn errno(machine: &'static str, op: &'static str, e: Errno) -> OpError {
    err(machine, op, e.name())
}

impl Machine for Soft {
    type Thread = SoftThread;

    fn thread(&self) -> SoftThread {
        SoftThread {
            cpu: self.mm.cpu(),
            name: self.name,
        }
    }
}

/// One thread of a [`Soft`] machine.
#[derive(Debug)]
pub(crate) struct SoftThread {
    cpu: Cpu,
    name: &'static str,
}

impl Thread for SoftThread {
    fn map(&mut self, len: u64) -> Result<u64, OpError> {
        let prot = PROT_READ | PROT_WRITE;
        self.cpu
            .mm()
            .mmap(0, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            .map_err(|e| errno(self.name, "mmap", e))
    }

    fn unmap(&mut self, addr: u64, len: u64) -> Result<(), OpError> {
        self.cpu
            .mm()
            .munmap(addr, len)
            .map(drop)
            .map_err(|e| errno(self.name, "munmap", e))
    }

    fn protect(&mut self, addr: u64, len: u64, writable: bool) -> Result<(), OpError> {
        let prot = if writable {
            PROT_READ | PROT_WRITE
        } else {
            PROT_READ
        };
        self.cpu
            .mm()
            .mprotect(addr, len, prot)
            .map(drop)
            .map_err(|e| errno(self.name, "mprotect", e))
    }

    fn dontneed(&mut self, addr: u64, len: u64) -> Result<(), OpError> {
        self.cpu
            .mm()
            .madvise(addr, len, MADV_DONTNEED)
            .map(drop)
            .map_err(|e| errno(self.name, "madvise", e))
    }

    fn touch(&mut self, addr: u64) -> Result<(), OpError> {
        self.cpu
            .write(addr, &[1])
            .map_err(|e| err(self.name, "touch", e))
    }

    fn translate(&mut self, addr: u64) -> Result<(), OpError> {
        let pfn = self
            .cpu
            .translate(addr, Access::Read)
            .map_err(|e| err(self.name, "translate", format!("{e:?}")))?;
        std::hint::black_box(pfn);
        Ok(())
    }

    fn zero_frame(&mut self, _scratch: u64) -> Result<(), OpError> {
        let pm = self.cpu.mm().phys();
        let pfn = pm
            .alloc_zeroed(0)
            .ok_or_else(|| err(self.name, "alloc_zeroed", "out of frames"))?;
        pm.put(std::hint::black_box(pfn));
        Ok(())
    }
}
