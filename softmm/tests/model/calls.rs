//! The reference model's system calls: mmap, munmap, mprotect, madvise, mlock, munlock.
//! (mremap is in `remap.rs`.) Each follows Linux 6.18's checks in Linux's order for the
//! arguments the property test generates (page-aligned addresses, page-multiple
//! lengths, known flags), then changes the layout with [`Space`]'s primitives.

use softmm::{Errno, abi::*};

use super::{
    memory::{Kind, Object},
    space::{Backing, PAGE, Space, VM_MAYBE_GUARD, Vma},
    vmflags::*,
};

/// `TASK_SIZE` with 4-level paging.
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;

type Res = Result<u64, Errno>;

fn page_up(len: u64) -> u64 {
    len.div_ceil(PAGE) * PAGE
}

/// Flag advice: the new flags, `None` for advice that does not change flags.
fn advice_flags(v: &Vma, advice: u64) -> Option<Result<u64, Errno>> {
    let f = v.flags;
    Some(Ok(match advice {
        MADV_NORMAL => f & !(VM_RAND_READ | VM_SEQ_READ),
        MADV_RANDOM => (f & !VM_SEQ_READ) | VM_RAND_READ,
        MADV_SEQUENTIAL => (f & !VM_RAND_READ) | VM_SEQ_READ,
        MADV_DONTFORK => f | VM_DONTCOPY,
        MADV_DOFORK => f & !VM_DONTCOPY,
        MADV_WIPEONFORK if !v.is_private() => return Some(Err(Errno::EINVAL)),
        MADV_WIPEONFORK => f | VM_WIPEONFORK,
        // Droppable memory stays wiped on fork and out of core dumps.
        MADV_KEEPONFORK | MADV_DODUMP if f & VM_DROPPABLE != 0 => {
            return Some(Err(Errno::EINVAL));
        }
        MADV_KEEPONFORK => f & !VM_WIPEONFORK,
        MADV_DONTDUMP => f | VM_DONTDUMP,
        MADV_DODUMP => f & !VM_DONTDUMP,
        MADV_HUGEPAGE => (f & !VM_NOHUGEPAGE) | VM_HUGEPAGE,
        MADV_NOHUGEPAGE => (f & !VM_HUGEPAGE) | VM_NOHUGEPAGE,
        _ => return None,
    }))
}

impl Space {
    /// `mmap(addr, len, prot, flags, -1, 0)` of anonymous memory.
    pub fn mmap(&mut self, addr: u64, len: u64, prot: u64, flags: u64) -> Res {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len);
        let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
        let addr = if fixed {
            if addr > TASK_SIZE - len {
                return Err(Errno::ENOMEM);
            }
            if !addr.is_multiple_of(PAGE) {
                return Err(Errno::EINVAL);
            }
            addr
        } else {
            let hint = (addr & !(PAGE - 1)).max(self.mmap_min_addr);
            let fits = addr != 0 && hint <= TASK_SIZE - len;
            if fits && self.is_free(hint, hint + len) {
                hint
            } else {
                self.top_down(len).ok_or(Errno::ENOMEM)?
            }
        };
        let end = addr + len;
        if flags & MAP_FIXED_NOREPLACE != 0 && !self.is_free(addr, end) {
            return Err(Errno::EEXIST);
        }
        let shared = flags & MAP_TYPE == MAP_SHARED;
        let mut vm = (prot & 7) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
        if flags & MAP_LOCKED != 0 {
            vm |= VM_LOCKED;
        }
        if shared {
            vm |= VM_SHARED | VM_MAYSHARE;
        }
        if flags & MAP_NORESERVE != 0 {
            vm |= VM_NORESERVE;
        }
        if flags & MAP_TYPE == MAP_DROPPABLE {
            // Private memory reclaim may drop: unreserved, wiped on fork, not dumped.
            if flags & MAP_LOCKED != 0 {
                return Err(Errno::EINVAL);
            }
            vm |= VM_DROPPABLE | VM_NORESERVE | VM_WIPEONFORK | VM_DONTDUMP;
        }
        if vm & (VM_NORESERVE | VM_SHARED | VM_WRITE) == VM_WRITE {
            vm |= VM_ACCOUNT;
        }
        self.unmap(addr, end);
        let (pgoff, backing) = if shared {
            self.objects.push(Object {
                pages: len / PAGE,
                data: Default::default(),
            });
            (0, Backing::Shm(self.objects.len() - 1))
        } else {
            (addr / PAGE, Backing::Anon(None))
        };
        self.insert_merged(Vma {
            start: addr,
            end,
            flags: vm,
            pgoff,
            backing,
        });
        if flags & MAP_POPULATE != 0 || vm & VM_LOCKED != 0 {
            let _ = self.populate(addr, end, true);
        }
        Ok(addr)
    }

    /// `munmap(addr, len)`.
    pub fn munmap(&mut self, addr: u64, len: u64) -> Res {
        if !addr.is_multiple_of(PAGE) || addr > TASK_SIZE || len > TASK_SIZE - addr || len == 0 {
            return Err(Errno::EINVAL);
        }
        self.unmap(addr, addr + page_up(len));
        Ok(0)
    }

    /// Apply `fix(self, vma, lo, hi)` to each VMA part of `[start, end)` in order:
    /// `ENOMEM` at the first hole, the parts before it keep their change (mprotect and
    /// mlock's partial application).
    fn each_part(
        &mut self,
        start: u64,
        end: u64,
        mut fix: impl FnMut(&mut Space, Vma, u64, u64) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let mut at = start;
        while at < end {
            let v = self.find(at).cloned().ok_or(Errno::ENOMEM)?;
            let hi = v.end.min(end);
            fix(self, v, at, hi)?;
            at = hi;
        }
        Ok(())
    }

    /// `mprotect(start, len, prot)`.
    pub fn mprotect(&mut self, start: u64, len: u64, prot: u64) -> Res {
        if !start.is_multiple_of(PAGE) {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(0);
        }
        let end = start + page_up(len);
        self.each_part(start, end, |s, v, lo, hi| {
            let mut nf = (prot & 7) | (v.flags & !VM_ACCESS_FLAGS);
            if nf == v.flags {
                return Ok(());
            }
            if nf & VM_WRITE != 0 {
                if v.flags & (VM_ACCOUNT | VM_WRITE | VM_SHARED | VM_NORESERVE) == 0 {
                    nf |= VM_ACCOUNT;
                }
            } else if v.flags & VM_ACCOUNT != 0 && v.is_private() && v.anon().is_none() {
                // Never written: the commit charge goes back (Linux drops VM_ACCOUNT).
                nf &= !VM_ACCOUNT;
            }
            let now = s.modify(v.start, lo, hi, nf);
            // A private locked VMA turning writable has its COW broken at once.
            let cow = v.flags & (VM_WRITE | VM_SHARED | VM_LOCKED) == VM_LOCKED;
            let onfault = nf & VM_LOCKONFAULT != 0;
            if cow && nf & VM_WRITE != 0 && !onfault && !s.quirks.mprotect_no_locked_cow {
                let _ = s.fault_in(now, lo, hi, Kind::Write);
            }
            Ok(())
        })
        .map(|_| 0)
    }

    /// `madvise(start, len, advice)`.
    pub fn madvise(&mut self, start: u64, len: u64, advice: u64) -> Res {
        if !start.is_multiple_of(PAGE) {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(0);
        }
        let end = start + page_up(len);
        if matches!(advice, MADV_POPULATE_READ | MADV_POPULATE_WRITE) {
            return self.madvise_populate(start, end, advice).map(|_| 0);
        }
        // `madvise_walk_vmas`: holes are skipped and reported at the end; an error of
        // one VMA ends the walk at once.
        let mut at = start;
        let mut unmapped = false;
        loop {
            let Some(v) = self.intersecting(at, u64::MAX).first().cloned() else {
                return Err(Errno::ENOMEM);
            };
            if at < v.start {
                unmapped = true;
                at = v.start;
                if at >= end {
                    break;
                }
            }
            let hi = v.end.min(end);
            self.advise_vma(&v, at, hi, advice)?;
            // Continue after the VMA now covering the part (it may have merged on).
            at = hi.max(self.find(hi - 1).map_or(hi, |c| c.end));
            if at >= end {
                break;
            }
        }
        if unmapped { Err(Errno::ENOMEM) } else { Ok(0) }
    }

    fn advise_vma(&mut self, v: &Vma, lo: u64, hi: u64, advice: u64) -> Result<(), Errno> {
        if let Some(nf) = advice_flags(v, advice) {
            let nf = nf?;
            if nf != v.flags {
                self.modify(v.start, lo, hi, nf);
            }
            return Ok(());
        }
        match advice {
            MADV_DONTNEED if v.flags & VM_LOCKED != 0 => Err(Errno::EINVAL),
            MADV_DONTNEED => {
                self.zap(lo, hi);
                Ok(())
            }
            // Lazily freed pages keep their contents until reclaim, and nothing is
            // reclaimed here (softmm simulates no memory pressure).
            MADV_FREE if !v.is_private() || v.flags & VM_LOCKED != 0 => Err(Errno::EINVAL),
            MADV_COLD | MADV_PAGEOUT
                if v.flags & VM_LOCKED != 0 && !self.quirks.cold_ignores_locked =>
            {
                Err(Errno::EINVAL)
            }
            // Reclaim without swap: droppable pages go (they read as zero again);
            // other private pages stay, and shared pages stay in their object.
            MADV_PAGEOUT if v.flags & VM_DROPPABLE != 0 => {
                self.zap(lo, hi);
                Ok(())
            }
            MADV_GUARD_INSTALL if v.flags & VM_LOCKED != 0 => Err(Errno::EINVAL),
            MADV_GUARD_INSTALL => {
                if !self.quirks.no_maybe_guard {
                    self.set_flags_in_place(v.start, v.flags | VM_MAYBE_GUARD);
                }
                if !self.quirks.guard_no_anon {
                    // Markers make the range non-empty: the VMA gets an anon_vma.
                    self.anon_prepare(v.start);
                }
                self.zap(lo, hi);
                self.guards.extend((lo..hi).step_by(PAGE as usize));
                Ok(())
            }
            MADV_GUARD_REMOVE => {
                self.guards.retain(|&a| a < lo || a >= hi);
                Ok(())
            }
            // FREE, WILLNEED, COLD, PAGEOUT elsewhere: no visible effect on contents.
            _ => Ok(()),
        }
    }

    /// MADV_POPULATE_READ/WRITE: fault every page in, VMA by VMA, as GUP without
    /// FOLL_FORCE: the VMA must allow the access (`EINVAL`), a hole is `ENOMEM`, a
    /// failing fault `EFAULT`.
    fn madvise_populate(&mut self, start: u64, end: u64, advice: u64) -> Result<(), Errno> {
        let write = advice == MADV_POPULATE_WRITE;
        let mut at = start;
        while at < end {
            let v = self.find(at).cloned().ok_or(Errno::ENOMEM)?;
            let readable = if self.quirks.populate_read_any_access {
                VM_ACCESS_FLAGS
            } else {
                VM_READ
            };
            let need = if write { VM_WRITE } else { readable };
            if v.flags & need == 0 {
                return Err(Errno::EINVAL);
            }
            let kind = if write { Kind::Write } else { Kind::Read };
            let hi = v.end.min(end);
            self.fault_in(v.start, at, hi, kind)?;
            at = hi;
        }
        Ok(())
    }

    /// `mlockall(MCL_CURRENT)` (with MCL_ONFAULT when `onfault`): every VMA gets the lock
    /// bits, VMA by VMA from the lowest as `mlock_fixup` does (merging as it goes), then
    /// every VMA is populated, holes skipped and errors ignored (`__mm_populate`).
    pub fn mlockall(&mut self, onfault: bool) -> Res {
        self.lock_all(if onfault {
            VM_LOCKED | VM_LOCKONFAULT
        } else {
            VM_LOCKED
        });
        let _ = self.populate(0, TASK_SIZE, true);
        Ok(0)
    }

    /// `munlockall()`: every VMA loses its lock bits.
    pub fn munlockall(&mut self) -> Res {
        self.lock_all(0);
        Ok(0)
    }

    fn lock_all(&mut self, bits: u64) {
        let starts: Vec<u64> = self.vmas.keys().copied().collect();
        for s in starts {
            // The VMA may have merged into the one before it.
            let Some(v) = self.find(s).cloned() else {
                continue;
            };
            // Droppable memory is never locked (`mlock_fixup`).
            if v.flags & VM_DROPPABLE != 0 {
                continue;
            }
            let nf = (v.flags & !(VM_LOCKED | VM_LOCKONFAULT)) | bits;
            if nf != v.flags {
                self.modify(v.start, v.start, v.end, nf);
            }
        }
    }

    /// `mlock2(start, len, flags)` (`mlock` is flags 0); `lock` false is `munlock`.
    pub fn mlock(&mut self, start: u64, len: u64, onfault: bool, lock: bool) -> Res {
        let len = page_up(len + start % PAGE);
        let start = start & !(PAGE - 1);
        let end = start + len;
        if end == start {
            let inside = self.find(start).filter(|v| v.start < start && lock);
            let quirk = self.quirks.mlock_len0_populates;
            if quirk && inside.is_some_and(|v| v.flags & (VM_ACCESS_FLAGS | VM_LOCKONFAULT) == 0) {
                return Err(Errno::ENOMEM);
            }
            return Ok(0);
        }
        let bits = match (lock, onfault) {
            (false, _) => 0,
            (true, false) => VM_LOCKED,
            (true, true) => VM_LOCKED | VM_LOCKONFAULT,
        };
        self.each_part(start, end, |s, v, lo, hi| {
            if v.flags & VM_DROPPABLE != 0 {
                return Ok(());
            }
            let nf = (v.flags & !(VM_LOCKED | VM_LOCKONFAULT)) | bits;
            if nf != v.flags {
                s.modify(v.start, lo, hi, nf);
            }
            Ok(())
        })?;
        if !lock {
            return Ok(0);
        }
        // mlock reports populate errors the POSIX way (`__mlock_posix_error_return`).
        match self.populate(start, end, false) {
            Ok(()) => Ok(0),
            Err(Errno::EFAULT) => Err(Errno::ENOMEM),
            Err(Errno::ENOMEM) => Err(Errno::EAGAIN),
            Err(e) => Err(e),
        }
    }
}
