//! Guest memory access through the MMU (`copy_from_user` / `copy_to_user`).
//!
//! A [`Cpu`] is one thread's view of an address space. Each page of an access is
//! translated by a lockless walk; on a miss the fault handler runs under `mmap_lock`
//! read and the walk is retried. Before touching a frame the CPU takes a reference
//! (increment-unless-zero) and re-checks the entry, so a frame that a concurrent
//! copy-on-write or zap replaces cannot be freed and reused under the copy (the check
//! a hardware TLB shootdown gives Linux; the software TLB of a later issue keeps it).
//!
//! Accesses that cross pages proceed page by page; on a fault the bytes before the
//! faulting page have been transferred (like a CPU's `memcpy`), and the error says how
//! many.

use std::sync::Arc;

use crate::{
    addr::PAGE_SIZE,
    config::FaultLocking,
    frame::{Pfn, flags},
    mm::fault::{Access, Fault, SegvCode, Signal, pte_allows},
    mm::{AddressSpace, VmaCache},
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
    mm: &'a AddressSpace,
    pfn: Pfn,
    counted: bool,
    _rcu: rcu::RcuGuard,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.counted {
            self.mm.phys().put(self.pfn);
        }
    }
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

    /// Translate `addr` for `access`, faulting as needed: the frame mapping it now.
    pub fn translate(&self, addr: u64, access: Access) -> Result<Pfn, Fault> {
        let h = self.hold(addr, access)?;
        Ok(h.pfn)
    }

    /// Resolve `addr` to a frame that allows `access` and hold a reference to it.
    fn hold(&self, addr: u64, access: Access) -> Result<Held<'_>, Fault> {
        let mm = &*self.mm;
        let write = access == Access::Write;
        for _ in 0..MAX_RETRIES {
            {
                let g = rcu::read_lock();
                if let Some((pte, 1)) = mm.pt.lookup(addr, &g)
                    && pte_allows(pte, access)
                {
                    let pfn = pte.pfn();
                    let meta = mm.phys().meta(pfn);
                    let counted = !meta.has(flags::ZERO);
                    // Speculative reference, then re-check the entry (GUP-fast
                    // pattern, §3.3): if it changed, the frame may be on its way out.
                    if !counted || meta.try_get() {
                        let still = mm
                            .pt
                            .lookup(addr, &g)
                            .is_some_and(|(now, _)| now.pfn() == pfn && pte_allows(now, access));
                        if still {
                            mm.pt.mark_used(addr, pte, write, &g);
                        }
                        let held = Held {
                            mm,
                            pfn,
                            counted,
                            _rcu: g,
                        };
                        if still {
                            return Ok(held);
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
        mut f: impl FnMut(Pfn, usize, usize, usize),
    ) -> Result<(), AccessFault> {
        let mut done = 0usize;
        while done < len {
            let va = addr.wrapping_add(done as u64);
            let off = (va % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - off).min(len - done);
            let h = self.hold(va, access).map_err(|e| fault_at(e, va, done))?;
            f(h.pfn, off, done, n);
            done += n;
        }
        Ok(())
    }

    /// Copy guest memory at `addr` into `buf`.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), AccessFault> {
        let pm = self.mm.phys();
        self.each_page(addr, buf.len(), Access::Read, |pfn, off, at, n| {
            pm.read(pfn, off, &mut buf[at..at + n]);
        })
    }

    /// Copy `buf` into guest memory at `addr`.
    pub fn write(&self, addr: u64, buf: &[u8]) -> Result<(), AccessFault> {
        let pm = self.mm.phys();
        self.each_page(addr, buf.len(), Access::Write, |pfn, off, at, n| {
            pm.write(pfn, off, &buf[at..at + n]);
        })
    }

    /// Store `len` copies of `byte` at `addr`.
    pub fn fill(&self, addr: u64, byte: u8, len: u64) -> Result<(), AccessFault> {
        let pm = self.mm.phys();
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
        self.each_page(addr, len, Access::Write, |pfn, off, _, n| {
            pm.fill(pfn, off, byte, n)
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
