//! brk: grow and shrink the `[heap]` VMA (`SYSCALL_DEFINE1(brk)`, `do_brk_flags`).
//!
//! The raw system call returns the new break, or the unchanged one when it refuses
//! (below the heap start, or growing into another mapping: one page plus the stack
//! guard gap must stay free). Shrinking unmaps the pages above the new break.

use super::{AddressSpace, mmap::start_gap};
use crate::addr::PAGE_SHIFT;
use crate::{
    addr::{PAGE_SIZE, page_up},
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
            let newbrk = page_up(brk)?;
            let oldbrk = page_up(state.brk)?;
            if newbrk == oldbrk {
                return Some(brk);
            }
            let mut edit = self.tree.edit();
            if brk <= state.brk {
                self.unmap_locked(&mut edit, newbrk, oldbrk, &mut gather)
                    .ok()?;
                edit.commit();
                return Some(brk);
            }
            if newbrk > crate::addr::TASK_SIZE {
                return None;
            }
            if let Some(next) = edit.next(oldbrk)
                && newbrk + PAGE_SIZE > start_gap(&next)
            {
                return None;
            }
            if !edit.intersecting(oldbrk, newbrk).is_empty() {
                return None;
            }
            if edit.len() > self.config.max_map_count {
                return None;
            }
            // The heap is accounted memory (`do_brk_flags`).
            self.vm_enough_memory((newbrk - oldbrk) >> PAGE_SHIFT, 0)
                .ok()?;
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
                oldbrk >> PAGE_SHIFT,
                Backing::Anon,
            );
            edit.commit();
            Some(brk)
        })();
        let populate = match r {
            Some(b) if b > orig && state.def_flags.intersects(VM_LOCKED) => {
                page_up(orig).zip(page_up(b))
            }
            _ => None,
        };
        state.brk = r.unwrap_or(orig);
        let result = state.brk;
        drop(state);
        gather.finish();
        if let Some((s, e)) = populate {
            let _g = self.lock.read();
            self.populate_range(s, e);
        }
        Ok(result)
    }

    /// The current `[start_brk, brk)`.
    pub fn heap(&self) -> (u64, u64) {
        let s = self.lock.read();
        (s.start_brk, s.brk)
    }
}
