//! mremap: shrink, grow in place, move (`SYSCALL_DEFINE5(mremap)`, `mremap_to`,
//! `move_vma`).
//!
//! A move builds the new VMA, moves the page-table entries (the frames go along, bytes
//! are never copied), then unmaps the old range, or with MREMAP_DONTUNMAP leaves it
//! mapped and empty. Destination tables are allocated before any entry moves, so an
//! out-of-frames error leaves everything as it was.

use std::sync::Arc;

use super::AddressSpace;
use crate::vma::Backing;
use crate::{
    abi::*,
    addr::{PageAddr, TASK_SIZE, page_up},
    error::Errno,
    error::SysResult,
    pgtable::{Gather, LayoutWrite},
    vma::{TreeEdit, Vma, flags::*},
};

impl AddressSpace {
    /// `mremap(2)`; `new_addr` is used with MREMAP_FIXED (and as a hint with
    /// MREMAP_DONTUNMAP).
    pub fn mremap(
        &self,
        addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new_addr: u64,
    ) -> SysResult<u64> {
        let flags = MremapFlags::from_bits_retain(flags);
        if !(flags - MremapFlags::all()).is_empty() {
            return Err(Errno::EINVAL);
        }
        let may_move = flags.contains(MremapFlags::MAYMOVE);
        if flags.contains(MremapFlags::FIXED) && !may_move {
            return Err(Errno::EINVAL);
        }
        if flags.contains(MremapFlags::DONTUNMAP) && (!may_move || old_len != new_len) {
            return Err(Errno::EINVAL);
        }
        let addr = PageAddr::new(addr).ok_or(Errno::EINVAL)?;
        let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
        if new_len == 0 || new_len > TASK_SIZE {
            return Err(Errno::EINVAL);
        }
        if addr.checked_add(old_len).is_none() {
            return Err(Errno::EINVAL);
        }
        let state = self.write_lock();
        let mut gather = Gather::new(&self.pm);
        let mut edit = self.tree.edit();
        let r = if flags.intersects(MremapFlags::FIXED | MremapFlags::DONTUNMAP) {
            self.mremap_to(
                &state,
                &mut edit,
                addr,
                old_len,
                new_len,
                flags,
                new_addr,
                &mut gather,
            )
        } else {
            self.mremap_resize(
                &state,
                &mut edit,
                addr,
                old_len,
                new_len,
                flags,
                &mut gather,
            )
        };
        edit.commit();
        let populate = match &r {
            Ok((_, Some(p))) => Some(*p),
            _ => None,
        };
        drop(state);
        self.tlb_finish(gather);
        if let Some((s, e)) = populate {
            let layout = self.lock.read();
            self.populate_range(&layout, s, e);
        }
        r.map(|(a, _)| a.get())
    }

    /// Shrink, grow in place, or move when allowed.
    #[expect(
        clippy::too_many_arguments,
        reason = "the call's arguments, the lock, the edit and the gather"
    )]
    fn mremap_resize(
        &self,
        layout: &impl LayoutWrite,
        edit: &mut TreeEdit<'_>,
        addr: PageAddr,
        old_len: u64,
        new_len: u64,
        flags: MremapFlags,
        gather: &mut Gather,
    ) -> SysResult<(PageAddr, Option<(PageAddr, PageAddr)>)> {
        if edit.find(addr.get()).is_none() {
            return Err(Errno::EFAULT);
        }
        if old_len >= new_len {
            let r = self.unmap_locked(layout, edit, addr + new_len, addr + old_len, gather);
            if r.is_err() && old_len != new_len {
                return r.map(|_| (addr, None));
            }
            return Ok((addr, None));
        }
        let vma = self.vma_to_resize(edit, addr, old_len, new_len, flags)?;
        if old_len == vma.end - addr {
            let delta = new_len - old_len;
            if let Some(end) = vma.end.checked_add(delta)
                && end <= TASK_SIZE
                && edit.intersecting(vma.end.get(), end.get()).is_empty()
            {
                self.mremap_charge(&vma, old_len, new_len, flags)?;
                let grown = self.expand(edit, &vma, end);
                let pop =
                    (grown.flags.intersects(VM_LOCKED)).then_some((addr + old_len, addr + new_len));
                return Ok((addr, pop));
            }
        }
        if !flags.contains(MremapFlags::MAYMOVE) {
            return Err(Errno::ENOMEM);
        }
        let shared = vma.flags.intersects(VM_MAYSHARE);
        let file = match &vma.backing {
            Backing::File(f) => Some(&**f),
            Backing::Anon | Backing::AnonFile(_) => None,
        };
        let thp = super::mmap::thp_offset(file, shared, 0, new_len, vma.pgoff_at(addr));
        let dst = self.get_unmapped_area(edit, 0, new_len, MapFlags::empty(), thp)?;
        self.move_vma(
            layout, edit, &vma, addr, old_len, new_len, dst, flags, gather,
        )
    }

    /// Check the charge of resizing `old_len` bytes of an accounted VMA to `new_len`:
    /// the growth, or with MREMAP_DONTUNMAP the whole new copy, since the source keeps
    /// its own (`vrm_charge`).
    fn mremap_charge(
        &self,
        vma: &Vma,
        old_len: u64,
        new_len: u64,
        flags: MremapFlags,
    ) -> SysResult<()> {
        if !vma.flags.intersects(VM_ACCOUNT) {
            return Ok(());
        }
        let bytes = if flags.contains(MremapFlags::DONTUNMAP) {
            new_len
        } else {
            new_len.saturating_sub(old_len)
        };
        if bytes == 0 {
            return Ok(());
        }
        self.vm_enough_memory(crate::addr::pages(bytes), 0)
    }

    /// Validate the source of a grow/move (`vma_to_resize`).
    fn vma_to_resize(
        &self,
        edit: &TreeEdit<'_>,
        addr: PageAddr,
        old_len: u64,
        new_len: u64,
        flags: MremapFlags,
    ) -> SysResult<Arc<Vma>> {
        let vma = edit.find(addr.get()).ok_or(Errno::EFAULT)?;
        if old_len > vma.end - addr {
            return Err(Errno::EFAULT);
        }
        if old_len == 0 && !vma.flags.intersects(VM_SHARED | VM_MAYSHARE) {
            return Err(Errno::EINVAL);
        }
        if flags.contains(MremapFlags::DONTUNMAP) && vma.flags.intersects(VM_DONTEXPAND | VM_PFNMAP)
        {
            return Err(Errno::EINVAL);
        }
        if new_len > old_len && vma.flags.intersects(VM_DONTEXPAND | VM_PFNMAP) {
            return Err(Errno::EFAULT);
        }
        Ok(vma)
    }

    /// Grow `vma` in place to end at `end`, merging with a compatible next VMA.
    fn expand(&self, edit: &mut TreeEdit<'_>, vma: &Arc<Vma>, end: PageAddr) -> Arc<Vma> {
        let next = edit.starting_at(end).filter(|n| {
            n.can_merge_before(
                vma.flags,
                &vma.backing,
                vma.pgoff_at(vma.end),
                vma.end.pages_to(end),
                vma.anon(),
            )
        });
        let hi = next.as_ref().map_or(end, |n| n.end);
        let grown = vma.derive(
            vma.start,
            hi,
            vma.flags
                | next
                    .as_ref()
                    .map_or(VmFlags::empty(), |n| n.flags & VM_STICKY),
        );
        if let Some(n) = &next {
            if grown.anon().is_none() {
                grown.set_anon(n.anon());
            }
            self.vma_start_write(n);
            edit.remove(n);
        }
        self.vma_start_write(vma);
        edit.remove(vma);
        let grown = Arc::new(grown);
        edit.insert(Arc::clone(&grown));
        grown
    }

    #[expect(clippy::too_many_arguments, reason = "the mremap argument list")]
    fn mremap_to(
        &self,
        layout: &impl LayoutWrite,
        edit: &mut TreeEdit<'_>,
        addr: PageAddr,
        mut old_len: u64,
        new_len: u64,
        flags: MremapFlags,
        new_addr: u64,
        gather: &mut Gather,
    ) -> SysResult<(PageAddr, Option<(PageAddr, PageAddr)>)> {
        let new_addr = PageAddr::new(new_addr).ok_or(Errno::EINVAL)?;
        if new_len > TASK_SIZE || new_addr > TASK_SIZE - new_len {
            return Err(Errno::EINVAL);
        }
        if addr + old_len > new_addr && new_addr + new_len > addr {
            return Err(Errno::EINVAL);
        }
        // A FIXED move without a resize may span several VMAs (6.17+; with DONTUNMAP too).
        if flags.contains(MremapFlags::FIXED) && old_len == new_len {
            return self.move_many(layout, edit, addr, old_len, new_addr, flags, gather);
        }
        // `check_prep_vma`: the source is validated before anything changes; the part
        // that will move (for a FIXED shrink, the shrunk range) must lie in its VMA.
        let first = edit.find(addr.get()).ok_or(Errno::EFAULT)?;
        if old_len == 0 && !first.flags.intersects(VM_SHARED | VM_MAYSHARE) {
            return Err(Errno::EINVAL);
        }
        if old_len.min(new_len) > first.end - addr {
            return Err(Errno::EFAULT);
        }
        let fixed = flags.contains(MremapFlags::FIXED);
        if fixed {
            self.unmap_locked(layout, edit, new_addr, new_addr + new_len, gather)?;
        }
        if old_len > new_len {
            self.unmap_locked(layout, edit, addr + new_len, addr + old_len, gather)?;
            old_len = new_len;
        }
        let vma = self.vma_to_resize(edit, addr, old_len, new_len, flags)?;
        let mflags = if fixed {
            MapFlags::FIXED
        } else {
            MapFlags::empty()
        };
        let file = match &vma.backing {
            Backing::File(f) => Some(&**f),
            Backing::Anon | Backing::AnonFile(_) => None,
        };
        let thp = super::mmap::thp_offset(
            file,
            vma.flags.intersects(VM_MAYSHARE),
            new_addr.get(),
            new_len,
            vma.pgoff_at(addr),
        );
        let got = self.get_unmapped_area(edit, new_addr.get(), new_len, mflags, thp)?;
        let dst = if fixed { new_addr } else { got };
        self.move_vma(
            layout, edit, &vma, addr, old_len, new_len, dst, flags, gather,
        )
    }

    /// A pure move of a range that may span several VMAs (Linux 6.17+): each VMA part
    /// moves to the same offset from `dst` and keeps its attributes; gaps stay gaps and
    /// only each part's destination is unmapped first. The source must start in a VMA.
    #[expect(
        clippy::too_many_arguments,
        reason = "the call's arguments, the lock, the edit and the gather"
    )]
    fn move_many(
        &self,
        layout: &impl LayoutWrite,
        edit: &mut TreeEdit<'_>,
        addr: PageAddr,
        len: u64,
        dst: PageAddr,
        flags: MremapFlags,
        gather: &mut Gather,
    ) -> SysResult<(PageAddr, Option<(PageAddr, PageAddr)>)> {
        if edit.find(addr.get()).is_none() {
            return Err(Errno::EFAULT);
        }
        for v in edit.intersecting(addr.get(), (addr + len).get()) {
            let lo = v.start.max(addr);
            let hi = v.end.min(addr + len);
            let at = dst + (lo - addr);
            self.unmap_locked(layout, edit, at, at + (hi - lo), gather)?;
            let cur = edit.find(lo.get()).ok_or(Errno::EFAULT)?;
            self.move_vma(layout, edit, &cur, lo, hi - lo, hi - lo, at, flags, gather)?;
        }
        Ok((dst, None))
    }

    /// Move `[addr, addr + old_len)` of `vma` to `dst` with `new_len` bytes.
    #[expect(clippy::too_many_arguments, reason = "the move_vma argument list")]
    fn move_vma(
        &self,
        layout: &impl LayoutWrite,
        edit: &mut TreeEdit<'_>,
        vma: &Arc<Vma>,
        addr: PageAddr,
        old_len: u64,
        new_len: u64,
        dst: PageAddr,
        flags: MremapFlags,
        gather: &mut Gather,
    ) -> SysResult<(PageAddr, Option<(PageAddr, PageAddr)>)> {
        // Moving needs one more VMA (and a split of the source may need more).
        if edit.len() + 3 > self.config.max_map_count {
            return Err(Errno::ENOMEM);
        }
        if old_len == 0 {
            // Duplicate a shared mapping: a second VMA over the same object pages.
            let dup = Vma::new(
                dst,
                dst + new_len,
                vma.flags,
                vma.pgoff_at(addr),
                vma.backing.clone(),
            );
            edit.insert(Arc::new(dup));
            return Ok((dst, None));
        }
        self.mremap_charge(vma, old_len, new_len, flags)?;
        let moved = old_len.min(new_len);
        // No fault may run in the source while its entries move.
        self.vma_start_write(vma);
        self.pt_move(layout, addr, dst, moved)
            .map_err(|_| Errno::ENOMEM)?;
        // The moved entries' old translations go with the flush.
        gather.cover(addr, addr + moved);
        // A never-faulted anonymous VMA is relocated: its page offset follows the new
        // address so it can merge there (Linux 6.x `vrm_set_new_addr`/relocate_anon).
        let pgoff = if vma.is_anon() && vma.anon().is_none() {
            dst.vpn()
        } else {
            vma.pgoff_at(addr)
        };
        // The moved VMA keeps its page offset, so it merges only with what it fits.
        let new_flags = vma.flags;
        let near = super::vma_ops::merge_candidates(
            edit,
            dst,
            dst + new_len,
            new_flags,
            &vma.backing,
            pgoff,
            vma.anon(),
        );
        // Insert first: the unmap below computes which page tables are still needed
        // from the layout, and the moved entries now live under the new VMA.
        let nv = super::vma_ops::insert_merging(
            self,
            edit,
            dst,
            dst + new_len,
            new_flags,
            pgoff,
            &vma.backing,
            vma.anon(),
            near,
        );
        if flags.contains(MremapFlags::DONTUNMAP) {
            // The source VMA stays mapped and empty; VM_LOCKED is cleared on the whole
            // VMA in place (no split, no merge); a private VMA moved whole loses its
            // anon identity (`unlink_anon_vmas`).
            if let Some(cur) = edit.find(addr.get()) {
                let whole = cur.start == addr && cur.end == addr + old_len;
                let moved_out = !(dst >= cur.start && dst < cur.end);
                let keep_anon = !(whole && moved_out && cur.is_anon() && !cur.is_shared());
                let f = cur.flags & !VM_LOCKED_MASK;
                if f != cur.flags || !keep_anon {
                    let v = Vma::new(cur.start, cur.end, f, cur.pgoff, cur.backing.clone());
                    if keep_anon {
                        v.set_anon(cur.anon());
                    }
                    self.vma_start_write(&cur);
                    edit.remove(&cur);
                    edit.insert(Arc::new(v));
                }
            }
        } else {
            self.unmap_locked(layout, edit, addr, addr + old_len, gather)?;
        }
        let pop = (nv.flags.intersects(VM_LOCKED) && new_len > old_len)
            .then_some((dst + old_len, dst + new_len));
        Ok((dst, pop))
    }

    /// Move the leaves of `[from, from + len)` to `[to, to + len)`.
    fn pt_move(
        &self,
        layout: &impl LayoutWrite,
        from: PageAddr,
        to: PageAddr,
        len: u64,
    ) -> Result<(), crate::pgtable::TableOom> {
        let walk = self.pt.locked(layout);
        let mut present = Vec::new();
        walk.for_each_leaf(from, from + len, |va, _| present.push(va));
        // Allocate every destination table first: nothing moves unless all fit.
        for va in &present {
            walk.pte_lock(to + (*va - from), true)?;
        }
        for va in present {
            let Some(src) = walk.pte_lock(va, false)? else {
                continue;
            };
            let pte = src.set(crate::pgtable::Pte::NONE);
            drop(src);
            if pte.is_none() {
                continue;
            }
            let dst = walk
                .pte_lock(to + (va - from), true)?
                .expect("destination table allocated above");
            dst.set(pte);
        }
        Ok(())
    }
}
