//! The softmm side: one [`AddressSpace`] per cell, one [`Cpu`] per thread.

use std::{sync::Arc, time::Instant};

use softmm::{
    Access, AddressSpace, Config, Cpu, Errno,
    abi::{
        MADV_DONTNEED, MAP_ANONYMOUS, MAP_FIXED, MAP_NORESERVE, MAP_PRIVATE, PROT_NONE, PROT_READ,
        PROT_WRITE,
    },
    config::FaultLocking,
    rcu,
    testing::{self, FrameStash},
};

use super::{
    machine::{Machine, OpError, Teardown, Thread},
    report::TlbFlushes,
    scale::fill_vmas,
    variant_name,
};

/// Physical memory per thread: a 64 MiB region plus room for its page tables.
const PHYS_PER_THREAD: u64 = 64 << 20;
/// Physical memory every machine has besides the per-thread share.
const PHYS_SLACK: u64 = 64 << 20;
/// VMAs a machine may hold besides those a many-VMA workload asks for.
const VMA_SLACK: u64 = 1024;

/// A softmm machine in one `Config` variant.
#[derive(Debug)]
pub(crate) struct Soft {
    mm: Arc<AddressSpace>,
    config: Config,
    name: &'static str,
}

impl Soft {
    /// A machine for `threads` threads in variant `v`, room for `vmas` VMAs: its
    /// `max_map_count` is the default (65530) or, where that is too small, `vmas` plus
    /// some slack.
    pub(crate) fn new(v: FaultLocking, threads: usize, vmas: u64) -> Result<Self, OpError> {
        let name = variant_name(v);
        let default = Config::default();
        let config = Config {
            phys_mem_bytes: threads as u64 * PHYS_PER_THREAD + PHYS_SLACK,
            fault_locking: v,
            max_map_count: default.max_map_count.max((vmas + VMA_SLACK) as usize),
            ..default
        };
        let mm =
            AddressSpace::new(config.clone()).map_err(|e| err(name, "AddressSpace::new", e))?;
        Ok(Self { mm, config, name })
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
        SoftThread::new(self.mm.cpu(), self.name)
    }

    /// A fresh address space in this machine's `Config`, filled with `vmas` VMAs; the
    /// time to drop its last `Arc` (`exit_mmap`: zap, free the tables, queue the frees)
    /// and then `rcu::barrier()` (the queued frees run: the tree's last snapshot and
    /// every VMA in it), and the RCU callbacks the drop queued (this thread's count,
    /// before the barrier, which queues one of its own).
    fn teardown(&self, vmas: u64) -> Result<Teardown, OpError> {
        let name = self.name;
        let mm = AddressSpace::new(self.config.clone())
            .map_err(|e| err(name, "AddressSpace::new", e))?;
        let mut t = SoftThread::new(mm.cpu(), name);
        fill_vmas(&mut t, vmas)?;
        drop(t);
        if (mm.map_count() as u64) < vmas {
            let detail = format!("{} VMAs after mapping {vmas}", mm.map_count());
            return Err(err(name, "fill", detail));
        }
        if Arc::strong_count(&mm) != 1 {
            return Err(err(name, "drop", "not the last Arc<AddressSpace>"));
        }
        let before = rcu::callbacks_queued();
        let t0 = Instant::now();
        drop(mm);
        let queued = rcu::callbacks_queued() - before;
        rcu::barrier();
        Ok(Teardown {
            time: t0.elapsed(),
            rcu_callbacks: Some(queued),
        })
    }
}

/// One thread of a [`Soft`] machine.
#[derive(Debug)]
pub(crate) struct SoftThread {
    cpu: Cpu,
    name: &'static str,
    /// Frames `zero_frame` keeps, in allocation order, freed with the handle.
    held: FrameStash,
}

impl SoftThread {
    fn new(cpu: Cpu, name: &'static str) -> Self {
        Self {
            held: FrameStash::new(cpu.mm().phys()),
            cpu,
            name,
        }
    }
}

/// A page lent by a [`SoftThread`]: its address (any `Cpu` of the address space may
/// read it; a read of an unmapped page is a fault, not a hazard).
#[derive(Debug)]
pub(crate) struct SoftLoan(u64);

impl Thread for SoftThread {
    type Loan = SoftLoan;

    fn map(&mut self, len: u64) -> Result<u64, OpError> {
        let prot = PROT_READ | PROT_WRITE;
        self.cpu
            .mm()
            .mmap(0, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            .map_err(|e| errno(self.name, "mmap", e))
    }

    fn reserve(&mut self, len: u64) -> Result<u64, OpError> {
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
        self.cpu
            .mm()
            .mmap(0, len, PROT_NONE, flags, -1, 0)
            .map_err(|e| errno(self.name, "mmap", e))
    }

    fn map_fixed(&mut self, addr: u64, len: u64) -> Result<(), OpError> {
        let prot = PROT_READ | PROT_WRITE;
        self.cpu
            .mm()
            .mmap(
                addr,
                len,
                prot,
                MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS,
                -1,
                0,
            )
            .map(drop)
            .map_err(|e| errno(self.name, "mmap(MAP_FIXED)", e))
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
        let frame = self
            .cpu
            .translate(addr, Access::Read)
            .map_err(|e| err(self.name, "translate", format!("{e:?}")))?;
        std::hint::black_box(frame);
        Ok(())
    }

    fn load_u64(&mut self, addr: u64) -> Result<(), OpError> {
        let v = self
            .cpu
            .read_u64_le(addr)
            .map_err(|e| err(self.name, "read_u64_le", e))?;
        std::hint::black_box(v);
        Ok(())
    }

    fn store_u64(&mut self, addr: u64, v: u64) -> Result<(), OpError> {
        self.cpu
            .write_u64_le(addr, v)
            .map_err(|e| err(self.name, "write_u64_le", e))
    }

    fn lookup(&mut self, addr: u64) -> Result<(), OpError> {
        let vma = self.cpu.mm().find_vma(addr);
        std::hint::black_box(vma)
            .map(drop)
            .ok_or_else(|| err(self.name, "find_vma", format!("no VMA contains {addr:#x}")))
    }

    fn lend(&mut self, addr: u64) -> Result<SoftLoan, OpError> {
        Ok(SoftLoan(addr))
    }

    fn load_lent(&mut self, loan: &SoftLoan) -> Result<(), OpError> {
        self.load_u64(loan.0)
    }

    fn tree_levels(&self) -> Option<u32> {
        Some(self.cpu.mm().vma_tree_levels())
    }

    fn tlb_flushes(&self) -> Option<TlbFlushes> {
        Some(TlbFlushes::from_counts(self.cpu.mm().tlb_flushes()))
    }

    fn populate(&mut self, _addr: u64, _len: u64) -> Result<(), OpError> {
        Ok(())
    }

    fn zero_frame(&mut self, _scratch: u64, keep: bool) -> Result<(), OpError> {
        let frame = testing::alloc_zeroed(self.cpu.mm().phys())
            .ok_or_else(|| err(self.name, "alloc_zeroed", "out of frames"))?;
        if keep {
            // Dropped with the thread, newest first: the frame zeroed longest ago ends
            // on top of the allocator's stack, so the next run's frames come back
            // coldest first, as they went.
            self.held.keep(frame);
        } else {
            drop(std::hint::black_box(frame));
        }
        Ok(())
    }
}
