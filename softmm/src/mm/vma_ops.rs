//! Layout primitives shared by the system calls: unmap a range, change the flags of a
//! sub-range (split + merge), insert a new VMA merged with its neighbours.
//!
//! All of them work on a `TreeEdit` under `mmap_lock` write and follow Linux's split
//! and merge rules (protocol reference §10.6): two adjacent VMAs merge when their flags
//! are equal (soft-dirty aside), neither is special, the backing is the same, the page
//! offsets are continuous and the anon identities are compatible.

use std::sync::Arc;

use super::AddressSpace;
use crate::addr::PageAddr;
use crate::{
    error::Errno,
    error::SysResult,
    pgtable::{Gather, LayoutWrite},
    vma::{AnonId, Backing, TreeEdit, VmFlags, Vma, anon_compatible_pub, flags::VM_STICKY},
};

impl AddressSpace {
    /// Remove `[start, end)` from the layout: split the VMAs at the edges, zap the
    /// pages, free the page tables no remaining VMA needs. `ENOMEM` (nothing changed)
    /// when a split would exceed `max_map_count`.
    pub(crate) fn unmap_locked(
        &self,
        layout: &impl LayoutWrite,
        edit: &mut TreeEdit<'_>,
        start: PageAddr,
        end: PageAddr,
        gather: &mut Gather,
    ) -> SysResult<()> {
        if start >= end {
            return Ok(());
        }
        // The VMAs of the range, one lookup each (no list to allocate): each step
        // leaves only pieces outside the range, so the next VMA ending above the
        // current one's end is the next to take out.
        let in_range = |v: &Arc<Vma>| v.start < end;
        let Some(first) = edit.find_from(start.get()).filter(in_range) else {
            return Ok(());
        };
        // Splitting one VMA into three needs one more slot.
        if first.start < start && first.end > end && edit.len() >= self.config.max_map_count {
            return Err(Errno::ENOMEM);
        }
        let lo = start.max(first.start);
        let mut hi = lo;
        let mut next = Some(first);
        while let Some(v) = next {
            // Faults under the VMA's read lock finish before its pages go (the MUTANT
            // skips this: a fault may then install a page after the zap).
            if !cfg!(mutant = "munmap_skip_vma_lock") {
                self.vma_start_write(&v);
            }
            edit.remove(&v);
            if v.start < start {
                edit.insert(Arc::new(v.derive(v.start, start, v.flags)));
            }
            if v.end > end {
                edit.insert(Arc::new(v.derive(end, v.end, v.flags)));
            }
            hi = end.min(v.end);
            next = edit.find_from(v.end.get()).filter(in_range);
        }
        self.zap_range(layout, (lo, hi), gather);
        let floor = edit.prev(start.get()).map_or(PageAddr::ZERO, |p| p.end);
        let ceiling = edit
            .next(start.get())
            .map_or(PageAddr::down(1 << 48), |n| n.start);
        self.pt
            .locked(layout)
            .free_tables(layout, (lo, hi), (floor, ceiling), gather);
        Ok(())
    }

    /// Give `[start, end)`, which lies inside `vma`, the flags `flags`: split `vma` at
    /// the edges and merge the changed part with a compatible neighbour (Linux
    /// `vma_modify_flags`). Returns the VMA now covering `[start, end)`.
    pub(crate) fn modify_flags(
        &self,
        edit: &mut TreeEdit<'_>,
        vma: &Arc<Vma>,
        start: PageAddr,
        end: PageAddr,
        flags: VmFlags,
    ) -> SysResult<Arc<Vma>> {
        debug_assert!(vma.start <= start && end <= vma.end && start < end);
        if flags == vma.flags {
            return Ok(Arc::clone(vma));
        }
        let pgoff = vma.pgoff_at(start);
        let (prev, next) =
            merge_candidates(edit, start, end, flags, &vma.backing, pgoff, vma.anon());
        let splits = usize::from(start > vma.start && prev.is_none())
            + usize::from(end < vma.end && next.is_none());
        // Each split checks the limit before it adds a VMA (Linux `__split_vma`).
        if splits > 0 && edit.len() >= self.config.max_map_count {
            return Err(Errno::ENOMEM);
        }
        if splits > 1 && edit.len() + 1 >= self.config.max_map_count {
            return Err(Errno::ENOMEM);
        }
        self.vma_start_write(vma);
        edit.remove(vma);
        if start > vma.start {
            edit.insert(Arc::new(vma.derive(vma.start, start, vma.flags)));
        }
        if end < vma.end {
            edit.insert(Arc::new(vma.derive(end, vma.end, vma.flags)));
        }
        let sticky = vma.flags & VM_STICKY;
        let merged = insert_merging(
            self,
            edit,
            start,
            end,
            flags | sticky,
            pgoff,
            &vma.backing,
            vma.anon(),
            (prev, next),
        );
        Ok(merged)
    }

    /// Insert a new VMA `[start, end)` (the range is free in `edit`), merged with
    /// compatible neighbours. Returns the VMA that now covers the range.
    pub(crate) fn insert_merged(
        &self,
        edit: &mut TreeEdit<'_>,
        start: PageAddr,
        end: PageAddr,
        flags: VmFlags,
        pgoff: u64,
        backing: Backing,
    ) -> Arc<Vma> {
        let near = merge_candidates(edit, start, end, flags, &backing, pgoff, None);
        insert_merging(self, edit, start, end, flags, pgoff, &backing, None, near)
    }

    /// Apply `fixup(edit, vma, lo, hi)` to each VMA part of `[start, end)` in address
    /// order, stopping with `ENOMEM` at the first hole; the parts before it keep their
    /// change (Linux's partial application in mprotect and mlock). Each step looks the
    /// VMA up afresh, because the previous step may have merged it with a neighbour.
    pub(crate) fn apply_to_range(
        edit: &mut TreeEdit<'_>,
        start: PageAddr,
        end: PageAddr,
        mut fixup: impl FnMut(&mut TreeEdit<'_>, &Arc<Vma>, PageAddr, PageAddr) -> SysResult<()>,
    ) -> SysResult<()> {
        let mut at = start;
        while at < end {
            let v = edit.find(at.get()).ok_or(Errno::ENOMEM)?;
            let hi = v.end.min(end);
            fixup(edit, &v, at, hi)?;
            at = hi;
        }
        Ok(())
    }
}

/// The neighbours a new VMA `[start, end)` with these attributes would merge with: the
/// VMA ending at `start` and the one starting at `end`, each if compatible (equal flags
/// but for sticky ones, same backing, continuous page offsets, compatible anon
/// identities); `next` only if it is also compatible with `prev` (Linux merges with prev
/// alone otherwise).
pub(crate) fn merge_candidates(
    edit: &TreeEdit<'_>,
    start: PageAddr,
    end: PageAddr,
    flags: VmFlags,
    backing: &Backing,
    pgoff: u64,
    anon: Option<AnonId>,
) -> (Option<Arc<Vma>>, Option<Arc<Vma>>) {
    let prev = edit
        .ending_at(start)
        .filter(|p| p.can_merge_after(flags, backing, pgoff, anon));
    let next = edit
        .starting_at(end)
        .filter(|n| n.can_merge_before(flags, backing, pgoff, start.pages_to(end), anon))
        .filter(|n| {
            prev.as_ref()
                .is_none_or(|p| anon_compatible_pub(p.anon(), n.anon()))
        });
    (prev, next)
}

/// Insert `[start, end)` (free in `edit`) with these attributes, absorbing the
/// neighbours found by [`merge_candidates`]: the result spans them, keeps prev's page
/// offset, carries their sticky flags, and takes the first anon identity among the
/// range's, prev's and next's. Returns the VMA that now covers the range.
#[expect(
    clippy::too_many_arguments,
    reason = "a VMA's attributes plus its neighbours"
)]
pub(crate) fn insert_merging(
    mm: &AddressSpace,
    edit: &mut TreeEdit<'_>,
    start: PageAddr,
    end: PageAddr,
    flags: VmFlags,
    pgoff: u64,
    backing: &Backing,
    anon: Option<AnonId>,
    (prev, next): (Option<Arc<Vma>>, Option<Arc<Vma>>),
) -> Arc<Vma> {
    let lo = prev.as_ref().map_or(start, |p| p.start);
    let hi = next.as_ref().map_or(end, |n| n.end);
    let sticky = [&prev, &next]
        .into_iter()
        .flatten()
        .fold(VmFlags::empty(), |f, o| f | o.flags)
        & VM_STICKY;
    let merged = Vma::new(
        lo,
        hi,
        flags | sticky,
        prev.as_ref().map_or(pgoff, |p| p.pgoff),
        backing.clone(),
    );
    merged.set_anon(anon);
    for o in [&prev, &next].into_iter().flatten() {
        // Both sides of a merge are write-locked (a fault under prev's lock could give
        // it an anon identity the merged VMA would not carry).
        mm.vma_start_write(o);
        merged.set_anon(o.anon());
        edit.remove(o);
    }
    let merged = Arc::new(merged);
    edit.insert(Arc::clone(&merged));
    merged
}
