//! mlock, mlock2, munlock, mlockall, munlockall, msync.
//!
//! Locking sets VM_LOCKED (and VM_LOCKONFAULT for MLOCK_ONFAULT) on exactly the range,
//! splitting and merging like mprotect, then populates it (not with ONFAULT). The
//! caller runs as root (`CAP_IPC_LOCK`): RLIMIT_MEMLOCK does not apply.

use super::AddressSpace;
use crate::addr::{PAGE_SIZE, PageAddr, TASK_SIZE, is_page_aligned, page_down};
use crate::{abi::*, error::Errno, error::SysResult, vma::flags::*};

impl AddressSpace {
    /// `mlock(2)`.
    pub fn mlock(&self, start: u64, len: u64) -> SysResult<u64> {
        self.do_mlock(start, len, VM_LOCKED)
    }

    /// `mlock2(2)`.
    pub fn mlock2(&self, start: u64, len: u64, flags: u64) -> SysResult<u64> {
        if flags & !MLOCK_ONFAULT != 0 {
            return Err(Errno::EINVAL);
        }
        let f = if flags & MLOCK_ONFAULT != 0 {
            VM_LOCKED | VM_LOCKONFAULT
        } else {
            VM_LOCKED
        };
        self.do_mlock(start, len, f)
    }

    /// `munlock(2)`.
    pub fn munlock(&self, start: u64, len: u64) -> SysResult<u64> {
        let (start, len) = round(start, len)?;
        let _s = self.write_lock();
        self.apply_lock_flags(start, len, VmFlags::empty())
            .map(|_| 0)
    }

    fn do_mlock(&self, start: u64, len: u64, flags: VmFlags) -> SysResult<u64> {
        let (start, len) = round(start, len)?;
        {
            let _s = self.write_lock();
            self.apply_lock_flags(start, len, flags)?;
        }
        let layout = self.lock.read();
        // mlock reports populate errors the POSIX way (`__mlock_posix_error_return`).
        match self.populate(&layout, start, start + len, false) {
            Ok(()) => Ok(0),
            Err(Errno::EFAULT) => Err(Errno::ENOMEM),
            Err(Errno::ENOMEM) => Err(Errno::EAGAIN),
            Err(e) => Err(e),
        }
    }

    /// Set the lock bits of every VMA in `[start, start + len)` to `flags`.
    fn apply_lock_flags(&self, start: PageAddr, len: u64, flags: VmFlags) -> SysResult<()> {
        let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
        if end == start {
            return Ok(());
        }
        let mut edit = self.tree.edit();
        let vmas = edit.intersecting(start.get(), end.get());
        let Some(first) = vmas.first() else {
            return Err(Errno::ENOMEM);
        };
        if first.start > start {
            return Err(Errno::ENOMEM);
        }
        let result = Self::apply_to_range(&mut edit, start, end, |edit, v, lo, hi| {
            // Special and droppable memory is never locked (`mlock_fixup`).
            if v.flags.intersects(VM_SPECIAL | VM_DROPPABLE) {
                return Ok(());
            }
            let newflags = (v.flags & !VM_LOCKED_MASK) | flags;
            self.modify_flags(edit, v, lo, hi, newflags).map(|_| ())
        });
        edit.commit();
        result
    }

    /// `mlockall(2)`.
    pub fn mlockall(&self, flags: u64) -> SysResult<u64> {
        if flags == 0
            || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0
            || flags == MCL_ONFAULT
        {
            return Err(Errno::EINVAL);
        }
        let mut to_add = VM_LOCKED;
        if flags & MCL_ONFAULT != 0 {
            to_add |= VM_LOCKONFAULT;
        }
        {
            let mut s = self.write_lock();
            s.def_flags -= VM_LOCKED_MASK;
            if flags & MCL_FUTURE != 0 {
                s.def_flags |= to_add;
            }
            if flags & MCL_CURRENT != 0 {
                self.set_all_lock_flags(to_add);
            }
        }
        if flags & MCL_CURRENT != 0 {
            let layout = self.lock.read();
            self.populate_range(&layout, PageAddr::ZERO, PageAddr::down(TASK_SIZE));
        }
        Ok(0)
    }

    /// `munlockall(2)`.
    pub fn munlockall(&self) -> SysResult<u64> {
        let mut s = self.write_lock();
        s.def_flags -= VM_LOCKED_MASK;
        self.set_all_lock_flags(VmFlags::empty());
        Ok(0)
    }

    fn set_all_lock_flags(&self, to_add: VmFlags) {
        let mut edit = self.tree.edit();
        for v in edit.all() {
            // The VMA may have merged into a neighbour processed just before.
            let Some(cur) = edit.find(v.start.get()) else {
                continue;
            };
            if cur.flags.intersects(VM_SPECIAL | VM_DROPPABLE) {
                continue;
            }
            let nf = (cur.flags & !VM_LOCKED_MASK) | to_add;
            let _ = self.modify_flags(&mut edit, &cur, cur.start, cur.end, nf);
        }
        edit.commit();
    }

    /// `msync(2)`: anonymous memory has nothing to write back; only the checks and
    /// `EBUSY` for MS_INVALIDATE on locked memory are visible.
    pub fn msync(&self, start: u64, len: u64, flags: u64) -> SysResult<u64> {
        if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0 {
            return Err(Errno::EINVAL);
        }
        if !is_page_aligned(start) {
            return Err(Errno::EINVAL);
        }
        if flags & MS_ASYNC != 0 && flags & MS_SYNC != 0 {
            return Err(Errno::EINVAL);
        }
        // Linux rounds with wrapping arithmetic: a length near 2^64 becomes 0.
        let len = page_down(len.wrapping_add(PAGE_SIZE - 1));
        let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
        if end == start {
            return Ok(0);
        }
        let _s = self.lock.read();
        let g = crate::sync::rcu::read_lock();
        let mut unmapped = false;
        let mut at = start;
        loop {
            let Some(v) = self.tree.find_from(at, &g) else {
                return Err(Errno::ENOMEM);
            };
            if at < v.start {
                if flags == MS_SYNC {
                    return Err(Errno::ENOMEM);
                }
                at = v.start.get();
                if at >= end {
                    return Err(Errno::ENOMEM);
                }
                unmapped = true;
            }
            if flags & MS_INVALIDATE != 0 && v.flags.intersects(VM_LOCKED) {
                return Err(Errno::EBUSY);
            }
            at = v.end.get();
            if at >= end {
                return if unmapped { Err(Errno::ENOMEM) } else { Ok(0) };
            }
        }
    }
}

/// mlock's rounding: the start down, the length up to cover the same bytes.
fn round(start: u64, len: u64) -> SysResult<(PageAddr, u64)> {
    // PAGE_ALIGN(len + offset) wraps like the kernel's arithmetic; a wrapped range is
    // caught as `end < start` (EINVAL) by `apply_lock_flags`.
    let len = page_down(
        len.wrapping_add(start % PAGE_SIZE)
            .wrapping_add(PAGE_SIZE - 1),
    );
    Ok((PageAddr::down(start), len))
}
