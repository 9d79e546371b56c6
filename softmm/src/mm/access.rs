//! Guest memory access through the MMU (`copy_from_user` / `copy_to_user`).
//!
//! A [`Cpu`] is one thread's view of an address space, with its own software TLB. Each
//! page of an access is translated inside an access window (`tlb`): from the TLB, or on
//! a miss by a lockless walk whose result is cached; when the walk finds no usable entry
//! the window closes and the fault handler runs (per-VMA lock, else `mmap_lock` read),
//! then the access tries again. No reference is taken on the hit path: a frame is freed
//! only after every CPU that may cache a translation to it has flushed, which waits for
//! the windows open at that moment, so the frame outlives the window that uses it.
//!
//! [`Cpu::translate`] hands out a [`FrameRef`] instead, which outlives any window: it
//! takes a reference speculatively (increment-unless-zero) and re-checks the entry, as
//! GUP-fast does.
//!
//! Accesses that cross pages proceed page by page; on a fault the bytes before the
//! faulting page have been transferred (like a CPU's `memcpy`), and the error says how
//! many.

use std::sync::Arc;

use crate::{
    addr::PAGE_SIZE,
    addr::PageAddr,
    config::FaultLocking,
    frame::{FramePin, FrameRef, PageFlags},
    mm::fault::{Access, Fault, SegvCode, Signal, pte_allows},
    mm::{AddressSpace, VmaCache},
    pgtable::{Level, Pte, PteFlags},
    sync::rcu,
    tlb::{CpuTlb, Hit, Perm, Window},
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

/// How an access holds each page.
#[derive(Clone, Copy, Debug)]
pub(super) enum Hold {
    /// With the permission `Access` needs.
    For(Access),
    /// A write that ignores protection where `FOLL_FORCE` does.
    ForcedWrite,
}

/// What a signal handler would be told about a fault (`siginfo_t`'s `si_signo`,
/// `si_code`, `si_addr`, with Linux's x86-64 values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigInfo {
    /// `SIGSEGV` (11) or `SIGBUS` (7).
    pub signo: i32,
    /// `SEGV_MAPERR` (1), `SEGV_ACCERR` (2), `BUS_ADRALN` (1) or `BUS_ADRERR` (2).
    pub code: i32,
    /// The faulting address.
    pub addr: u64,
}

impl SigInfo {
    /// `SIGSEGV`.
    pub const SIGSEGV: i32 = 11;
    /// `SIGBUS`.
    pub const SIGBUS: i32 = 7;
    /// `SEGV_MAPERR`: no mapping at the address.
    pub const SEGV_MAPERR: i32 = 1;
    /// `SEGV_ACCERR`: the mapping forbids the access.
    pub const SEGV_ACCERR: i32 = 2;
    /// `BUS_ADRALN`: misaligned address.
    pub const BUS_ADRALN: i32 = 1;
    /// `BUS_ADRERR`: no backing at the address (beyond the end of a file).
    pub const BUS_ADRERR: i32 = 2;
}

impl AccessFault {
    /// The `siginfo_t` fields the kernel would deliver for this fault.
    pub fn siginfo(&self) -> SigInfo {
        let (signo, code) = match self.fault {
            Fault::Segv { code, .. } => (
                SigInfo::SIGSEGV,
                match code {
                    SegvCode::MapErr => SigInfo::SEGV_MAPERR,
                    SegvCode::AccErr => SigInfo::SEGV_ACCERR,
                },
            ),
            Fault::Unaligned { .. } => (SigInfo::SIGBUS, SigInfo::BUS_ADRALN),
            Fault::Bus { .. } | Fault::Oom { .. } => (SigInfo::SIGBUS, SigInfo::BUS_ADRERR),
        };
        SigInfo {
            signo,
            code,
            addr: self.addr,
        }
    }
}

/// A system call that copies from or to user memory fails with `EFAULT` where a user
/// access would have faulted (`copy_from_user`).
impl From<AccessFault> for crate::error::Errno {
    fn from(_: AccessFault) -> Self {
        crate::error::Errno::EFAULT
    }
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
/// assert!(cpu.get_page(ro, Access::Read).unwrap().is_zero_frame());
/// // A translation says where the page is now (the TLB's answer).
/// assert!(cpu.translate(ro, Access::Read).unwrap().is_zero_frame());
/// // Writing a read-only page is a SIGSEGV; the fault says where and after how much.
/// let err = cpu.write(ro + 8, b"x").unwrap_err();
/// assert_eq!((err.signal, err.addr, err.done), (Signal::Segv, ro + 8, 0));
/// // Another thread gets its own Cpu.
/// let other = cpu.clone();
/// std::thread::spawn(move || other.read(ro, &mut [0u8; 4]).unwrap()).join().unwrap();
/// ```
#[derive(Debug)]
pub struct Cpu {
    mm: Arc<AddressSpace>,
    /// The last VMA this CPU faulted in under its VMA lock (`PerVma`).
    vmas: VmaCache,
    /// This CPU's side of the TLB shootdown: lockless walks run in its access windows.
    tlb: CpuTlb,
    /// The address space's physical memory and its zero frame (one load less on a hit).
    pm: Arc<crate::frame::PhysMem>,
    zero_pfn: crate::frame::Pfn,
}

impl Clone for Cpu {
    /// Another CPU of the same address space (for another thread), with its own TLB.
    fn clone(&self) -> Self {
        Cpu::new(Arc::clone(&self.mm))
    }
}

/// Walk-fault rounds before an access gives up (a livelock guard, never reached).
const MAX_RETRIES: usize = 1 << 16;

/// A frame held by reference for the duration of one page access, inside the RCU read
/// section its translation was made in: an operation that revokes access (fork's
/// write-protection) waits for a grace period, i.e. for accesses in flight, as a TLB
/// shootdown waits for the other CPUs.
pub(super) struct Held<'a> {
    /// Dropped first (fields drop in order): the reference goes inside the RCU section.
    pub(super) frame: FrameRef<'a>,
    _rcu: rcu::RcuGuard,
}

impl Cpu {
    pub(crate) fn new(mm: Arc<AddressSpace>) -> Self {
        Self {
            tlb: CpuTlb::new(&mm.shootdown),
            pm: Arc::clone(mm.phys()),
            zero_pfn: mm.phys().zero_pfn(),
            mm,
            vmas: VmaCache::default(),
        }
    }

    /// The address space.
    pub fn mm(&self) -> &Arc<AddressSpace> {
        &self.mm
    }

    /// Translate `addr` for `access` through this CPU's TLB, faulting as needed: the
    /// frame that maps the page now (an identifier only: it reaches no bytes and keeps
    /// nothing alive). A hit touches no shared memory and takes no reference.
    #[inline]
    pub fn translate(&self, addr: u64, access: Access) -> Result<Translation, Fault> {
        match self.tlb.peek(addr, perm_for(access)) {
            Some(frame) => Ok(Translation { frame }),
            None => self.translate_slow(addr, access),
        }
    }

    /// A TLB miss: walk and cache (the look-up just missed), faulting until that works.
    #[cold]
    fn translate_slow(&self, addr: u64, access: Access) -> Result<Translation, Fault> {
        for _ in 0..MAX_RETRIES {
            if let Some(hit) = self.tlb_fill(&self.tlb.enter(), addr, access) {
                let frame = u64::from(hit.pfn.0) | (u64::from(hit.zero) << 32);
                return Ok(Translation { frame });
            }
            self.fault(addr, access)?;
        }
        Err(no_progress(addr))
    }

    /// The TLB hit path alone: `f(frame, offset)` on the frame this CPU caches for the
    /// page of `va`, if its translation allows `need` and `va` is a multiple of `align`
    /// (a power of two below the page size); `None` on a miss.
    #[inline]
    pub(super) fn tlb_hit<T>(
        &self,
        va: u64,
        need: Perm,
        align: u64,
        f: impl FnOnce(&FramePin<'_>, usize) -> T,
    ) -> Option<T> {
        let window = self.tlb.enter();
        let host = window.lookup_aligned(va, need, align)?;
        // SAFETY: (1) as in `with_page`: a translation found in the TLB inside a window
        // keeps its frame allocated until `window` closes, after `f`; the TLB caches the
        // frame's address as `frame_ptr` gave it.
        let pin = unsafe { FramePin::at(&self.pm, host) };
        Some(f(&pin, (va % PAGE_SIZE) as usize))
    }

    /// Translate `addr` for `access`, faulting as needed, and take a reference to the
    /// frame mapping it now (`get_user_pages` for one page). The frame stays allocated
    /// while the reference lives, even if the mapping goes (munmap, a copy-on-write
    /// break): reading through it then shows the old bytes, never another mapping's.
    pub fn get_page(&self, addr: u64, access: Access) -> Result<FrameRef<'_>, Fault> {
        let Held { frame, _rcu } = self.hold(addr, access)?;
        Ok(frame)
    }

    /// Resolve `addr` to a frame that allows `access` and hold a reference to it.
    pub(super) fn hold(&self, addr: u64, access: Access) -> Result<Held<'_>, Fault> {
        for _ in 0..MAX_RETRIES {
            if let Some(held) =
                self.hold_fast(addr, access == Access::Write, |pte| pte_allows(pte, access))
            {
                return Ok(held);
            }
            self.fault(addr, access)?;
        }
        Err(no_progress(addr))
    }

    /// Run `f` on the frame of the page of `va`, held for `access` by this CPU's TLB:
    /// a cached translation, or one a lockless walk finds and caches, faulting until
    /// there is one. `f` runs inside the access window (it must not block).
    pub(super) fn with_page<T>(
        &self,
        va: u64,
        access: Access,
        f: impl FnOnce(&FramePin<'_>) -> T,
    ) -> Result<T, Fault> {
        let need = perm_for(access);
        for _ in 0..MAX_RETRIES {
            {
                let window = self.tlb.enter();
                let host = match window.lookup(va, need) {
                    Some(host) => Some(host),
                    None => self.tlb_fill(&window, va, access).map(|hit| hit.host),
                };
                if let Some(host) = host {
                    // SAFETY: (1) `hit` was found in the TLB or cached by a walk in this
                    // window: a frame is freed only after a flush that invalidates the
                    // translations of it and waits for the windows open then (tlb module
                    // rules), so it stays allocated until `window` closes, which is
                    // after `f` returns. The TLB caches the address `frame_ptr` gave.
                    let pin = unsafe { FramePin::at(&self.pm, host) };
                    return Ok(f(&pin));
                }
            }
            self.fault(va, access)?;
        }
        Err(no_progress(va))
    }

    /// A TLB miss: walk without a lock inside `window` and cache what allows `access`,
    /// setting the entry's Accessed bit (and Dirty for a store) as the MMU does. A store
    /// is cached as allowed only once the entry is Dirty, so a later store through the
    /// cache needs no walk to set it. `None`: fault (or the entry changed: walk again).
    #[inline]
    fn tlb_fill(&self, window: &Window<'_>, va: u64, access: Access) -> Option<Hit> {
        // SAFETY: (1) table pages are freed only after `Shootdown::shoot` waited for
        // every access window open after they were unlinked (`AddressSpace::tlb_finish`),
        // and `window` stays open while the walk and its leaf are used.
        let walk = unsafe { self.mm.pt.lockless_pinned(window) };
        let mut leaf = walk.leaf(va)?;
        if leaf.level != Level::PTE || !pte_allows(leaf.pte, access) {
            return None;
        }
        let write = access == Access::Write;
        leaf.mark_used(write);
        let pte = leaf.pte;
        let mut perm = Perm::READ;
        if pte.has(PteFlags::W) && (write || pte.has(PteFlags::D)) {
            perm |= Perm::WRITE;
        }
        if !pte.has(PteFlags::NX) {
            perm |= Perm::EXEC;
        }
        let hit = Hit {
            pfn: pte.pfn(),
            host: self.pm.frame_ptr(pte.pfn()),
            zero: pte.pfn() == self.zero_pfn,
        };
        window
            .fill(PageAddr::down(va), hit, perm, || leaf.still())
            .then_some(hit)
    }

    /// Handle the fault that stopped an access at `addr` (the per-VMA fast path, else
    /// under `mmap_lock`), growing a stack or dropping droppable memory where that lets
    /// the access go on.
    fn fault(&self, addr: u64, access: Access) -> Result<(), Fault> {
        let mm = &*self.mm;
        let fast = match mm.config.fault_locking {
            FaultLocking::PerVma => mm.fault_under_vma_lock(addr, access, &self.vmas),
            FaultLocking::Global => None,
        };
        let r = fast.unwrap_or_else(|| {
            let layout = mm.lock.read();
            mm.handle_fault(&layout, addr, access)
        });
        match r {
            Ok(()) => Ok(()),
            // No VMA: maybe a grows-down VMA above can expand (needs the write lock, so
            // the read lock is dropped first).
            Err(Fault::Segv {
                code: SegvCode::MapErr,
                ..
            }) if mm.tree.find(addr, &rcu::read_lock()).is_none() && mm.expand_stack(addr) => {
                Ok(())
            }
            // Out of frames: droppable memory goes first (memory pressure), then the
            // access is tried again.
            Err(Fault::Oom { .. }) if mm.reclaim_droppable() => Ok(()),
            Err(f) => Err(f),
        }
    }

    /// As [`hold`](Self::hold) for a forced write (`FOLL_FORCE`): also a frame this
    /// mapping owns alone (an exclusive anonymous page) behind an entry without write
    /// permission, which the forced fault creates in a private read-only mapping.
    pub(super) fn hold_forced(&self, addr: u64) -> Result<Held<'_>, Fault> {
        let mm = &*self.mm;
        let pm = mm.phys();
        let own = |pte: crate::pgtable::Pte| {
            pte.has_frame()
                && !pte.has(PteFlags::SPECIAL)
                && pm
                    .meta(pte.pfn())
                    .has(PageFlags::ANON | PageFlags::ANON_EXCLUSIVE)
        };
        for _ in 0..MAX_RETRIES {
            if let Some(held) =
                self.hold_fast(addr, true, |pte| pte_allows(pte, Access::Write) || own(pte))
            {
                return Ok(held);
            }
            let layout = mm.lock.read();
            mm.handle_forced_write(&layout, addr)?;
        }
        Err(no_progress(addr))
    }

    /// The lockless part of a translation: the leaf for `addr` if `ok` accepts it, with
    /// a reference to its frame taken speculatively and the entry re-checked (GUP-fast
    /// pattern, §3.3: if it changed, the frame may be on its way out); the MMU's
    /// Accessed (and Dirty for `write`) bits set. `None`: fault and try again.
    fn hold_fast(&self, addr: u64, write: bool, ok: impl Fn(Pte) -> bool) -> Option<Held<'_>> {
        let mm = &*self.mm;
        let g = rcu::read_lock();
        let walk = mm.pt.lockless(&g);
        let (pte, level) = walk.lookup(addr)?;
        if level != Level::PTE || !ok(pte) {
            return None;
        }
        let frame = mm.phys().try_get(pte.pfn())?;
        let still = walk
            .lookup(addr)
            .is_some_and(|(now, _)| now.pfn() == pte.pfn() && ok(now));
        if !still {
            return None;
        }
        walk.mark_used(addr, pte, write);
        Some(Held { frame, _rcu: g })
    }

    /// Visit `[addr, addr + len)` page by page: `f(frame, offset in frame, offset in
    /// the access, bytes)` with the frame held for `how`.
    pub(super) fn each_page(
        &self,
        addr: u64,
        len: usize,
        how: Hold,
        mut f: impl FnMut(&FramePin<'_>, usize, usize, usize),
    ) -> Result<(), AccessFault> {
        let mut done = 0usize;
        while done < len {
            let va = addr.wrapping_add(done as u64);
            let off = (va % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - off).min(len - done);
            let r = match how {
                Hold::For(access) => self.with_page(va, access, |pin| f(pin, off, done, n)),
                Hold::ForcedWrite => self
                    .hold_forced(va)
                    .map(|h| f(&h.frame.pin(), off, done, n)),
            };
            r.map_err(|e| fault_at(e, va, done))?;
            done += n;
        }
        Ok(())
    }

    /// Copy guest memory at `addr` into `buf`.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), AccessFault> {
        self.copy_out(addr, buf, Access::Read)
    }

    /// Copy guest memory at `addr` into `buf`, each page held for `access` (a read or
    /// an instruction fetch).
    pub(super) fn copy_out(
        &self,
        addr: u64,
        buf: &mut [u8],
        access: Access,
    ) -> Result<(), AccessFault> {
        self.each_page(addr, buf.len(), Hold::For(access), |frame, off, at, n| {
            frame.read(off, &mut buf[at..at + n]);
        })
    }

    /// Copy `buf` into guest memory at `addr`.
    pub fn write(&self, addr: u64, buf: &[u8]) -> Result<(), AccessFault> {
        self.each_page(
            addr,
            buf.len(),
            Hold::For(Access::Write),
            |frame, off, at, n| {
                frame.write(off, &buf[at..at + n]);
            },
        )
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
        self.each_page(addr, len, Hold::For(Access::Write), |frame, off, _, n| {
            frame.fill(off, byte, n)
        })
    }
}

/// The TLB permission an access needs.
#[inline]
fn perm_for(access: Access) -> Perm {
    match access {
        Access::Read => Perm::READ,
        Access::Write => Perm::WRITE,
        Access::Exec => Perm::EXEC,
    }
}

/// Where a page is mapped now: what [`Cpu::translate`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The frame number, and bit 32 set for the zero frame (as the TLB caches it).
    frame: u64,
}

impl Translation {
    /// The frame number (an identifier: it reaches no bytes and keeps nothing alive).
    #[inline]
    pub fn pfn(&self) -> crate::frame::Pfn {
        crate::frame::Pfn(self.frame as u32)
    }

    /// Whether the page is the shared zero frame (untouched anonymous memory read).
    #[inline]
    pub fn is_zero_frame(&self) -> bool {
        self.frame >> 32 != 0
    }
}

/// Every fault either maps what the access needs or fails; racing changes can send an
/// access round again, but not [`MAX_RETRIES`] times. Reaching this is a bug.
fn no_progress(addr: u64) -> Fault {
    debug_assert!(false, "no progress translating {addr:#x}");
    Fault::Bus { addr }
}

pub(super) fn fault_at(fault: Fault, addr: u64, done: usize) -> AccessFault {
    AccessFault {
        addr,
        signal: fault.signal(),
        done: done as u64,
        fault,
    }
}
