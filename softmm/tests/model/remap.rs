//! The reference model's mremap (Linux 6.18 `mm/mremap.c`).
//!
//! * Checks: `new_len` 0, an unaligned `new_addr`, FIXED or DONTUNMAP without MAYMOVE,
//!   DONTUNMAP with a resize, and (with a new address) overlapping ranges are `EINVAL`;
//!   then, before anything changes, a source address outside every VMA is `EFAULT`, and
//!   so is (for a move or a growth) a part to move that runs past the source VMA: the
//!   whole old range, or for a FIXED shrink only the shrunk one (checked on 6.18).
//! * FIXED without a resize is a *move* (6.17+): every VMA part of the source range moves
//!   to the same offset from `new_addr` (gaps stay gaps, and only the destination of
//!   each part is unmapped first); with DONTUNMAP too.
//! * Otherwise the source is one VMA: shrink unmaps the tail; growth happens in place
//!   when the range ends at the VMA's end and the pages after it are free (merging with
//!   the next VMA when compatible), else with MAYMOVE the VMA moves to a top-down free
//!   range; FIXED (with a resize) unmaps the destination, then shrinks, then moves.
//! * A move carries the page offset along, except for a never-written private VMA,
//!   whose offset becomes `new_addr >> 12` so it can merge where it lands. Pages and
//!   guard markers move with it. DONTUNMAP leaves the source VMA mapped and empty,
//!   clears VM_LOCKED on the whole source VMA (no split, no merge), and drops its
//!   anon_vma when the whole VMA moved.
//! * A grown locked VMA is populated.

use softmm::{Errno, abi::*};

use super::{
    calls::TASK_SIZE,
    space::{Backing, PAGE, Space, Vma},
    vmflags::*,
};

fn page_up(len: u64) -> u64 {
    len.div_ceil(PAGE) * PAGE
}

impl Space {
    /// `mremap(addr, old_len, new_len, flags, new_addr)`.
    pub fn mremap(
        &mut self,
        addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new_addr: u64,
    ) -> Result<u64, Errno> {
        let (old_len, new_len) = (page_up(old_len), page_up(new_len));
        let to = flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0;
        let fixed = flags & MREMAP_FIXED != 0;
        let dontunmap = flags & MREMAP_DONTUNMAP != 0;
        if !addr.is_multiple_of(PAGE) || new_len == 0 {
            return Err(Errno::EINVAL);
        }
        if to {
            if !new_addr.is_multiple_of(PAGE) || flags & MREMAP_MAYMOVE == 0 {
                return Err(Errno::EINVAL);
            }
            if dontunmap && old_len != new_len {
                return Err(Errno::EINVAL);
            }
            if new_len > TASK_SIZE || new_addr > TASK_SIZE - new_len {
                return Err(Errno::EINVAL);
            }
            if addr + old_len > new_addr && new_addr + new_len > addr {
                return Err(Errno::EINVAL);
            }
            if self.quirks.remap_to_order {
                return self.remap_to_library(addr, old_len, new_len, fixed, dontunmap, new_addr);
            }
        }
        if fixed && old_len == new_len {
            return self.remap_move(addr, old_len, new_addr, dontunmap);
        }
        // `check_prep_vma`: the source is validated before anything changes; the part
        // that will move (the shrunk range, for a FIXED shrink) must lie in the VMA.
        let v = self.find(addr).cloned().ok_or(Errno::EFAULT)?;
        if to || new_len > old_len {
            if old_len == 0 && v.is_private() {
                return Err(Errno::EINVAL);
            }
            if old_len.min(new_len) > v.end - addr {
                return Err(Errno::EFAULT);
            }
        }
        if to {
            self.remap_to(addr, old_len, new_len, fixed, dontunmap, new_addr)
        } else {
            self.remap_at(addr, old_len, new_len, flags & MREMAP_MAYMOVE != 0)
        }
    }

    /// Bugs 3, 4 and 6 ([`Quirks::remap_to_order`]): softmm's `mremap_to` unmaps the
    /// FIXED destination and the shrunk tail first, then looks at the source; a FIXED
    /// move whose (shrunk) range runs past the first VMA moves every VMA part, but not
    /// with DONTUNMAP, which then fails with EFAULT.
    ///
    /// [`Quirks::remap_to_order`]: super::space::Quirks::remap_to_order
    fn remap_to_library(
        &mut self,
        addr: u64,
        mut old_len: u64,
        new_len: u64,
        fixed: bool,
        dontunmap: bool,
        new_addr: u64,
    ) -> Result<u64, Errno> {
        if fixed {
            self.unmap(new_addr, new_addr + new_len);
        }
        if old_len > new_len {
            self.unmap(addr + new_len, addr + old_len);
            old_len = new_len;
        }
        let first = self.find(addr).cloned().ok_or(Errno::EFAULT)?;
        if fixed && !dontunmap && old_len == new_len && first.end < addr + old_len {
            for v in self.intersecting(addr, addr + old_len) {
                let lo = v.start.max(addr);
                let hi = v.end.min(addr + old_len);
                self.move_vma(lo, hi - lo, hi - lo, new_addr + (lo - addr), false);
            }
            return Ok(new_addr);
        }
        if old_len > first.end - addr {
            return Err(Errno::EFAULT);
        }
        if old_len == 0 && first.is_private() {
            return Err(Errno::EINVAL);
        }
        self.remap_to(addr, old_len, new_len, fixed, dontunmap, new_addr)
    }

    /// Resize in place, or move with MAYMOVE (`mremap_at`).
    fn remap_at(
        &mut self,
        addr: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
    ) -> Result<u64, Errno> {
        if old_len == new_len {
            if self.quirks.noresize_splits {
                self.split(addr + old_len);
            }
            return Ok(addr);
        }
        if old_len > new_len {
            self.unmap(addr + new_len, addr + old_len);
            return Ok(addr);
        }
        let v = self.find(addr).cloned().expect("checked by mremap");
        let grow_end = v.end + (new_len - old_len);
        if v.end - addr == old_len && grow_end <= TASK_SIZE && self.is_free(v.end, grow_end) {
            // `vma_merge_extend`: the VMA takes the new pages and may merge with next.
            self.insert_merged(v.part(v.end, v.end).grown_to(grow_end));
            if v.flags & VM_LOCKED != 0 {
                let _ = self.populate(addr + old_len, addr + new_len, true);
            }
            return Ok(addr);
        }
        if !may_move {
            return Err(Errno::ENOMEM);
        }
        let dst = self.top_down(new_len).ok_or(Errno::ENOMEM)?;
        self.move_vma(addr, old_len, new_len, dst, false);
        Ok(dst)
    }

    /// FIXED with a resize, or DONTUNMAP without FIXED (`mremap_to`): unmap the FIXED
    /// destination, shrink, then move.
    fn remap_to(
        &mut self,
        addr: u64,
        mut old_len: u64,
        new_len: u64,
        fixed: bool,
        dontunmap: bool,
        new_addr: u64,
    ) -> Result<u64, Errno> {
        if fixed {
            self.unmap(new_addr, new_addr + new_len);
        }
        if old_len > new_len {
            self.unmap(addr + new_len, addr + old_len);
            old_len = new_len;
        }
        // FIXED: the address; DONTUNMAP alone: a hint, used when free.
        let hint_free = new_addr != 0
            && new_addr <= TASK_SIZE - new_len
            && self.is_free(new_addr, new_addr + new_len);
        let dst = if fixed || hint_free {
            new_addr
        } else {
            self.top_down(new_len).ok_or(Errno::ENOMEM)?
        };
        self.move_vma(addr, old_len, new_len, dst, dontunmap);
        Ok(dst)
    }

    /// A FIXED move without a resize (`remap_move`): each VMA part of `[addr, addr +
    /// len)` moves as if by its own MREMAP_FIXED call, keeping the gaps between parts.
    fn remap_move(&mut self, addr: u64, len: u64, dst: u64, dontunmap: bool) -> Result<u64, Errno> {
        let parts = self.intersecting(addr, addr + len);
        if parts.first().is_none_or(|v| v.start > addr) {
            return Err(Errno::EFAULT);
        }
        let mut target = dst;
        let mut last_end: Option<u64> = None;
        for v in parts {
            let lo = v.start.max(addr);
            let plen = v.end.min(addr + len) - lo;
            let at = target + last_end.map_or(0, |e| v.start - e);
            last_end = Some(v.end);
            self.unmap(at, at + plen);
            self.move_vma(lo, plen, plen, at, dontunmap);
            target = at + plen;
        }
        Ok(dst)
    }

    /// Move `[addr, addr + old_len)` of the VMA containing it to `dst` with `new_len`
    /// bytes (`move_vma`: `copy_vma`, move the page tables, then unmap the source or,
    /// with DONTUNMAP, leave it mapped and unlocked).
    fn move_vma(&mut self, addr: u64, old_len: u64, new_len: u64, dst: u64, dontunmap: bool) {
        let v = self.find(addr).cloned().expect("source VMA");
        let pgoff = match v.backing {
            Backing::Anon(None) => dst / PAGE,
            _ => v.pgoff_at(addr),
        };
        let both_checked = !self.quirks.move_merges_both;
        let moved = Vma {
            start: dst,
            end: dst + new_len,
            flags: v.flags,
            pgoff,
            backing: v.backing,
        };
        self.insert_merged_checked(moved, both_checked);
        self.move_pages(addr, dst, old_len.min(new_len));
        if !dontunmap {
            self.unmap(addr, addr + old_len);
        } else if let Some(src) = self.find(addr).cloned() {
            let unlocked = src.flags & !(VM_LOCKED | VM_LOCKONFAULT);
            if self.quirks.dontunmap_splits {
                self.modify(src.start, addr, addr + old_len, unlocked);
            } else {
                self.set_flags_in_place(src.start, unlocked);
                let whole = src.start == addr && src.end == addr + old_len;
                if whole && src.is_private() && !(dst >= src.start && dst < src.end) {
                    // `unlink_anon_vmas`: the emptied VMA has no anon_vma any more.
                    self.vmas.get_mut(&src.start).expect("VMA").backing = Backing::Anon(None);
                }
            }
        }
        if v.flags & VM_LOCKED != 0 && new_len > old_len {
            let _ = self.populate(dst + old_len, dst + new_len, true);
        }
    }
}

impl Vma {
    /// This (empty) VMA stretched to end at `end`.
    fn grown_to(mut self, end: u64) -> Vma {
        self.end = end;
        self
    }
}
