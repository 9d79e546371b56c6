//! brk: grow and shrink the `[heap]` VMA (`SYSCALL_DEFINE1(brk)`, `do_brk_flags`).
//!
//! The raw system call returns the new break, or the unchanged one when it refuses
//! (below the heap start, or growing into another mapping: one page plus the stack
//! guard gap must stay free). Shrinking unmaps the pages above the new break.

use super::{AddressSpace, mmap::start_gap};
use crate::{
    addr::{PAGE_SIZE, PageAddr},
    error::SysResult,
    pgtable::Gather,
    vma::{Backing, flags::*},
};

impl AddressSpace {
    /// Start the heap at `start` (what `execve` chose; a trace replay learns it from the
    /// first `brk`). Only while the heap is empty: `false` otherwise.
    pub fn set_brk_start(&self, start: u64) -> bool {
        let mut state = self.write_lock();
        if state.brk != state.start_brk {
            return false;
        }
        state.start_brk = start;
        state.brk = start;
        true
    }

    /// `brk(2)`: always succeeds with the (possibly unchanged) break.
    pub fn brk(&self, brk: u64) -> SysResult<u64> {
        let mut state = self.write_lock();
        let mut gather = Gather::new(&self.pm);
        let orig = state.brk;
        let r = (|| {
            if brk < state.start_brk {
                return None;
            }
            let newbrk = PageAddr::up(brk)?;
            let oldbrk = PageAddr::up(state.brk)?;
            if newbrk == oldbrk {
                return Some(brk);
            }
            let mut edit = self.tree.edit();
            if brk <= state.brk {
                self.unmap_locked(&state, &mut edit, newbrk, oldbrk, &mut gather)
                    .ok()?;
                edit.commit();
                return Some(brk);
            }
            if newbrk > crate::addr::TASK_SIZE {
                return None;
            }
            if let Some(next) = edit.next(oldbrk.get())
                && newbrk.get() + PAGE_SIZE > start_gap(&next)
            {
                return None;
            }
            if !edit.intersecting(oldbrk.get(), newbrk.get()).is_empty() {
                return None;
            }
            if edit.len() > self.config.max_map_count {
                return None;
            }
            // The heap is accounted memory (`do_brk_flags`).
            self.vm_enough_memory(oldbrk.pages_to(newbrk), 0).ok()?;
            let flags = VM_READ
                | VM_WRITE
                | VM_MAYREAD
                | VM_MAYWRITE
                | VM_MAYEXEC
                | VM_ACCOUNT
                | state.def_flags;
            self.insert_merged(
                &mut edit,
                oldbrk,
                newbrk,
                flags,
                oldbrk.vpn(),
                Backing::Anon,
            );
            edit.commit();
            Some(brk)
        })();
        let populate = match r {
            Some(b) if b > orig && state.def_flags.intersects(VM_LOCKED) => {
                PageAddr::up(orig).zip(PageAddr::up(b))
            }
            _ => None,
        };
        state.brk = r.unwrap_or(orig);
        let result = state.brk;
        drop(state);
        self.tlb_finish(gather);
        if let Some((s, e)) = populate {
            let layout = self.lock.read();
            self.populate_range(&layout, s, e);
        }
        Ok(result)
    }

    /// The current `[start_brk, brk)`.
    pub fn heap(&self) -> (u64, u64) {
        let s = self.lock.read();
        (s.start_brk, s.brk)
    }
}
