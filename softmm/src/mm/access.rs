//! Guest memory access through the MMU (`copy_from_user` / `copy_to_user`).
//!
//! A [`Cpu`] is one thread's view of an address space. Each page of an access is
//! translated by a lockless walk; on a miss the fault handler runs under `mmap_lock`
//! read and the walk is retried. Before touching a frame the CPU takes a reference
//! (increment-unless-zero) and re-checks the entry, so a frame that a concurrent
//! copy-on-write or zap replaces cannot be freed and reused under the copy (the check
//! a hardware TLB shootdown gives Linux).
//!
//! Accesses that cross pages proceed page by page; on a fault the bytes before the
//! faulting page have been transferred (like a CPU's `memcpy`), and the error says how
//! many.

use std::sync::Arc;

use crate::{
    addr::PAGE_SIZE,
    config::FaultLocking,
    frame::FrameRef,
    mm::fault::{Access, Fault, SegvCode, Signal, pte_allows},
    mm::{AddressSpace, VmaCache},
    pgtable::Level,
    sync::rcu,
};

/// A fault that stopped a guest access part-way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{signal:?} at {addr:#x} after {done} bytes")]
pub struct AccessFault {
    /// The faulting address.
    pub addr: u64,
    /// The signal delivered.
    pub signal: Signal,
    /// Bytes transferred before the fault.
    pub done: u64,
    /// The underlying fault.
    pub fault: Fault,
}

/// A CPU context: what a thread uses to translate, read, write and fault.
///
/// A `Cpu` is `Send` but not `Sync`: like a CPU's registers and TLB, it belongs to the
/// thread running on it (clone it for another thread).
///
/// ```
/// use softmm::{Access, AddressSpace, Config, Signal, abi::*};
///
/// let mm = AddressSpace::new(Config::default()).unwrap();
/// let ro = mm.mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
/// let cpu = mm.cpu();
/// // Reading untouched anonymous memory maps the shared zero frame.
/// assert!(cpu.translate(ro, Access::Read).unwrap().is_zero_frame());
/// // Writing a read-only page is a SIGSEGV; the fault says where and after how much.
/// let err = cpu.write(ro + 8, b"x").unwrap_err();
/// assert_eq!((err.signal, err.addr, err.done), (Signal::Segv, ro + 8, 0));
/// // Another thread gets its own Cpu.
/// let other = cpu.clone();
/// std::thread::spawn(move || other.read(ro, &mut [0u8; 4]).unwrap()).join().unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Cpu {
    mm: Arc<AddressSpace>,
    /// The last VMA this CPU faulted in under its VMA lock (`PerVma`).
    vmas: VmaCache,
}

/// Walk-fault rounds before an access gives up (a livelock guard, never reached).
const MAX_RETRIES: usize = 1 << 16;

/// A frame held by reference for the duration of one page access, inside the RCU read
/// section its translation was made in: an operation that revokes access (fork's
/// write-protection) waits for a grace period, i.e. for accesses in flight, as a TLB
/// shootdown waits for the other CPUs.
struct Held<'a> {
    /// Dropped first (fields drop in order): the reference goes inside the RCU section.
    frame: FrameRef<'a>,
    _rcu: rcu::RcuGuard,
}

impl Cpu {
    pub(crate) fn new(mm: Arc<AddressSpace>) -> Self {
        Self {
            mm,
            vmas: VmaCache::default(),
        }
    }

    /// The address space.
    pub fn mm(&self) -> &Arc<AddressSpace> {
        &self.mm
    }

    /// Translate `addr` for `access`, faulting as needed: a reference to the frame
    /// mapping it now. The frame stays allocated while the reference lives, even if the
    /// mapping goes (munmap, a copy-on-write break): reading through it then shows the
    /// old bytes, never another mapping's.
    pub fn translate(&self, addr: u64, access: Access) -> Result<FrameRef<'_>, Fault> {
        let Held { frame, _rcu } = self.hold(addr, access)?;
        Ok(frame)
    }

    /// Resolve `addr` to a frame that allows `access` and hold a reference to it.
    fn hold(&self, addr: u64, access: Access) -> Result<Held<'_>, Fault> {
        let mm = &*self.mm;
        let write = access == Access::Write;
        for _ in 0..MAX_RETRIES {
            {
                let g = rcu::read_lock();
                if let Some((pte, Level::PTE)) = mm.pt.lookup(addr, &g)
                    && pte_allows(pte, access)
                {
                    let pfn = pte.pfn();
                    // Speculative reference, then re-check the entry (GUP-fast
                    // pattern, §3.3): if it changed, the frame may be on its way out.
                    if let Some(frame) = mm.phys().try_get(pfn) {
                        let still = mm
                            .pt
                            .lookup(addr, &g)
                            .is_some_and(|(now, _)| now.pfn() == pfn && pte_allows(now, access));
                        if still {
                            mm.pt.mark_used(addr, pte, write, &g);
                            return Ok(Held { frame, _rcu: g });
                        }
                        continue;
                    }
                }
            }
            let fast = match mm.config.fault_locking {
                FaultLocking::PerVma => mm.fault_under_vma_lock(addr, access, &self.vmas),
                FaultLocking::Global => None,
            };
            let r = fast.unwrap_or_else(|| {
                let _guard = mm.lock.read();
                mm.handle_fault(addr, access)
            });
            match r {
                Ok(()) => {}
                // No VMA: maybe a grows-down VMA above can expand (needs the write lock,
                // so the read lock is dropped first).
                Err(Fault::Segv {
                    code: SegvCode::MapErr,
                    ..
                }) if mm.tree.find(addr, &rcu::read_lock()).is_none() && mm.expand_stack(addr) => {}
                // Out of frames: droppable memory goes first (memory pressure), then the
                // access is tried again.
                Err(Fault::Oom { .. }) if mm.reclaim_droppable() => {}
                Err(f) => return Err(f),
            }
        }
        // Every fault either maps what the access needs or fails; racing changes can
        // send us round again, but not this often. Reaching here is a bug.
        debug_assert!(false, "no progress translating {addr:#x} for {access:?}");
        Err(Fault::Bus { addr })
    }

    /// Visit `[addr, addr + len)` page by page: `f(frame, offset in frame, offset in
    /// the access, bytes)` with the frame held for `access`.
    fn each_page(
        &self,
        addr: u64,
        len: usize,
        access: Access,
        mut f: impl FnMut(&FrameRef<'_>, usize, usize, usize),
    ) -> Result<(), AccessFault> {
        let mut done = 0usize;
        while done < len {
            let va = addr.wrapping_add(done as u64);
            let off = (va % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - off).min(len - done);
            let h = self.hold(va, access).map_err(|e| fault_at(e, va, done))?;
            f(&h.frame, off, done, n);
            done += n;
        }
        Ok(())
    }

    /// Copy guest memory at `addr` into `buf`.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), AccessFault> {
        self.each_page(addr, buf.len(), Access::Read, |frame, off, at, n| {
            frame.read(off, &mut buf[at..at + n]);
        })
    }

    /// Copy `buf` into guest memory at `addr`.
    pub fn write(&self, addr: u64, buf: &[u8]) -> Result<(), AccessFault> {
        self.each_page(addr, buf.len(), Access::Write, |frame, off, at, n| {
            frame.write(off, &buf[at..at + n]);
        })
    }

    /// Store `len` copies of `byte` at `addr`.
    pub fn fill(&self, addr: u64, byte: u8, len: u64) -> Result<(), AccessFault> {
        let len = usize::try_from(len).map_err(|_| {
            fault_at(
                Fault::Segv {
                    addr,
                    code: SegvCode::MapErr,
                },
                addr,
                0,
            )
        })?;
        self.each_page(addr, len, Access::Write, |frame, off, _, n| {
            frame.fill(off, byte, n)
        })
    }
}

fn fault_at(fault: Fault, addr: u64, done: usize) -> AccessFault {
    AccessFault {
        addr,
        signal: fault.signal(),
        done: done as u64,
        fault,
    }
}
