//! mprotect (`do_mprotect_pkey`, `mprotect_fixup`, `change_protection`).
//!
//! Applied VMA by VMA: each affected VMA is split at the range edges and merged with
//! compatible neighbours; on a hole the call stops with `ENOMEM` and the VMAs before
//! the hole keep their new protection (Linux's partial application). Leaf entries are
//! rewritten under their PTLs: write permission is removed at once; it is added back
//! only to frames this mapping owns exclusively (others take a write fault later);
//! PROT_NONE makes entries not-present but keeps their frames.

use super::AddressSpace;
use crate::{
    abi::*,
    addr::{PageAddr, page_up},
    error::Errno,
    error::SysResult,
    frame::PageFlags,
    mm::fault::base_flags,
    pgtable::{Gather, LayoutLock, PteFlags},
    vma::flags::*,
};

/// What `mprotect_fixup` leaves for the rest of the call.
#[derive(Default)]
struct Fixups {
    /// Locked ranges whose copy-on-write is broken once the edit is published.
    populate: Vec<(PageAddr, PageAddr)>,
    /// Pages newly charged by earlier pieces of this call.
    charged: u64,
}

impl AddressSpace {
    /// `mprotect(2)`.
    pub fn mprotect(&self, start: u64, len: u64, prot: u64) -> SysResult<u64> {
        let prot = Prot::from_bits_retain(prot);
        let grows = prot & (Prot::GROWSDOWN | Prot::GROWSUP);
        let prot = prot - grows;
        if grows == Prot::GROWSDOWN | Prot::GROWSUP {
            return Err(Errno::EINVAL);
        }
        let start = PageAddr::new(start).ok_or(Errno::EINVAL)?;
        if len == 0 {
            return Ok(0);
        }
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        let end = start
            .checked_add(len)
            .filter(|&e| e > start)
            .ok_or(Errno::ENOMEM)?;
        if !(prot - (Prot::READ | Prot::WRITE | Prot::EXEC | Prot::SEM)).is_empty() {
            return Err(Errno::EINVAL);
        }
        let state = self.write_lock();
        let mut gather = Gather::new(&self.pm);
        // Entries lose permissions (and PROT_NONE makes them not present): flush.
        gather.cover(start, end);
        let mut edit = self.tree.edit();
        let vmas = edit.intersecting(start.get(), end.get());
        let Some(first) = vmas.first() else {
            return Err(Errno::ENOMEM);
        };
        let mut start = start;
        if grows.contains(Prot::GROWSDOWN) {
            if first.start >= end {
                return Err(Errno::ENOMEM);
            }
            start = first.start;
            if !first.flags.intersects(VM_GROWSDOWN) {
                return Err(Errno::EINVAL);
            }
        } else if first.start > start {
            return Err(Errno::ENOMEM);
        }
        if grows.contains(Prot::GROWSUP) {
            // x86 has no VM_GROWSUP VMAs.
            return Err(Errno::EINVAL);
        }
        let mut fixups = Fixups::default();
        let layout = &state;
        let result = Self::apply_to_range(&mut edit, start, end, |edit, v, lo, hi| {
            let newflags = prot_to_vm(prot) | (v.flags - VM_ACCESS_FLAGS);
            // Every new access bit needs its VM_MAY* bit (four bits up).
            let may = VmFlags::from_bits_retain(newflags.bits() >> 4);
            if (newflags - may).intersects(VM_ACCESS_FLAGS) {
                return Err(Errno::EACCES);
            }
            self.mprotect_fixup(layout, edit, v, lo, hi, newflags, &mut fixups)
        })
        .map(|_| 0);
        edit.commit();
        for (lo, hi) in fixups.populate {
            // Errors are ignored as in Linux (the write faults only break COW early).
            let _ = self.populate(&state, lo, hi, true);
        }
        drop(state);
        self.tlb_finish(gather);
        result
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "mprotect_fixup's list and the lock"
    )]
    fn mprotect_fixup(
        &self,
        layout: &impl LayoutLock,
        edit: &mut crate::vma::TreeEdit<'_>,
        vma: &std::sync::Arc<crate::vma::Vma>,
        start: PageAddr,
        end: PageAddr,
        mut newflags: VmFlags,
        fixups: &mut Fixups,
    ) -> SysResult<()> {
        let old = vma.flags;
        if newflags == old {
            return Ok(());
        }
        if newflags.intersects(VM_WRITE) {
            if !old.intersects(VM_ACCOUNT | VM_WRITE | VM_HUGETLB | VM_SHARED | VM_NORESERVE) {
                // Private memory that becomes writable is charged now; the pieces
                // this call already charged count too.
                let pages = (end - start) >> crate::addr::PAGE_SHIFT;
                self.vm_enough_memory(pages, fixups.charged)?;
                fixups.charged += pages;
                newflags |= VM_ACCOUNT;
            }
        } else if old.intersects(VM_ACCOUNT) && vma.is_anon() && vma.anon().is_none() {
            // Anonymous memory never written: the charge is returned (Linux drops
            // VM_ACCOUNT here; a file mapping keeps it).
            newflags &= !VM_ACCOUNT;
        }
        let new = self.modify_flags(edit, vma, start, end, newflags)?;
        self.change_protection(layout, &new, start, end);
        // A locked private read-only VMA made writable has its COW broken at once
        // (`populate_vma_page_range` in `mprotect_fixup`), once the edit is published.
        if old & (VM_WRITE | VM_SHARED | VM_LOCKED) == VM_LOCKED && newflags.intersects(VM_WRITE) {
            fixups.populate.push((start, end));
        }
        Ok(())
    }

    /// Rewrite the leaves of `[start, end)` for `vma`'s (new) flags.
    pub(crate) fn change_protection(
        &self,
        layout: &impl LayoutLock,
        vma: &crate::vma::Vma,
        start: PageAddr,
        end: PageAddr,
    ) {
        let base = base_flags(vma);
        let writable = vma.flags.intersects(VM_WRITE);
        let shared = vma.flags.intersects(VM_SHARED);
        self.pt.locked(layout).change(start, end, |_, pte| {
            if !pte.has_frame() {
                return pte; // guard markers are not protection-dependent
            }
            let keep = pte.flags()
                & (PteFlags::A | PteFlags::D | PteFlags::SPECIAL | PteFlags::SOFT_DIRTY);
            let mut f = base | keep;
            if writable && f.contains(PteFlags::P) && !pte.has(PteFlags::SPECIAL) {
                let m = self.pm.meta(pte.pfn());
                if shared || m.has(PageFlags::ANON_EXCLUSIVE) {
                    f |= PteFlags::W;
                }
            }
            pte.with_flags(f)
        });
    }
}
