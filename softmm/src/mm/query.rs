//! What procfs and mincore show: the VMA list, maps, smaps, residency.
//!
//! These are semi-locked walkers: they hold `mmap_lock` for read, so the layout is
//! stable while entries may change under them (each number is a snapshot per VMA, the
//! guarantee Linux gives, protocol reference §9.3).

use super::AddressSpace;
use crate::addr::{PAGE_SHIFT, PAGE_SIZE, PageAddr};
use crate::{
    addr::HUGE_SIZE,
    error::Errno,
    error::SysResult,
    frame::PageFlags,
    pgtable::{LayoutLock, PteFlags},
    stats::{SmapsCounters, VmaInfo, maps_line, smaps_entry},
    sync::rcu,
    vma::{Backing, Vma, flags::*},
};

impl AddressSpace {
    fn info(&self, v: &Vma, heap: (u64, u64)) -> VmaInfo {
        let (major, minor, inode, offset, name) = match &v.backing {
            Backing::Anon => {
                let heap_vma = v.start <= heap.1 && v.end >= heap.0 && heap.1 > heap.0;
                (0, 0, 0, 0, heap_vma.then(|| "[heap]".to_string()))
            }
            Backing::File(f) | Backing::AnonFile(f) => {
                let o = &f.object;
                let (major, minor) = o.dev();
                (
                    major,
                    minor,
                    o.ino(),
                    v.pgoff << PAGE_SHIFT,
                    Some(o.name().to_string()),
                )
            }
        };
        VmaInfo {
            start: v.start.get(),
            end: v.end.get(),
            perms: v.perms(),
            flags: v.flags,
            offset,
            major,
            minor,
            inode,
            name,
        }
    }

    fn heap_range(state: &super::MmState) -> (u64, u64) {
        (state.start_brk, state.brk)
    }

    /// The VMAs, in address order, as maps describes them.
    pub fn vmas(&self) -> Vec<VmaInfo> {
        let s = self.lock.read();
        let heap = Self::heap_range(&s);
        let g = rcu::read_lock();
        self.tree.iter(&g).map(|v| self.info(v, heap)).collect()
    }

    /// The `[start, end)` of the VMA containing `addr` (one RCU lookup, no lock: what a
    /// fault or GUP does first).
    pub fn find_vma(&self, addr: u64) -> Option<(u64, u64)> {
        let g = rcu::read_lock();
        self.tree.find_bounds(addr, &g)
    }

    /// Whether no VMA intersects `[start, end)` (one RCU lookup of the first VMA that ends
    /// above `start`, Linux's `find_vma`).
    pub fn is_unmapped(&self, start: u64, end: u64) -> bool {
        let g = rcu::read_lock();
        self.tree
            .find_from(start, &g)
            .is_none_or(|v| v.start >= end)
    }

    /// Nodes a VMA lookup visits, root and leaf included.
    pub fn vma_tree_levels(&self) -> u32 {
        let g = rcu::read_lock();
        self.tree.levels(&g)
    }

    /// `/proc/PID/maps`.
    pub fn maps_text(&self) -> String {
        self.vmas().iter().map(maps_line).collect()
    }

    /// `/proc/PID/smaps`.
    pub fn smaps_text(&self) -> String {
        let s = self.lock.read();
        let heap = Self::heap_range(&s);
        let g = rcu::read_lock();
        let vmas: Vec<_> = self.tree.iter(&g).cloned().collect();
        drop(g);
        vmas.iter()
            .map(|v| {
                smaps_entry(
                    &self.info(v, heap),
                    &self.smaps_counters(&s, v),
                    thp_eligible(v),
                )
            })
            .collect()
    }

    /// One smaps field (kB) of the VMA containing `addr`: `ENOMEM` when no VMA contains
    /// it, `EINVAL` for an unknown field.
    pub fn smaps_field(&self, addr: u64, field: &str) -> SysResult<u64> {
        let s = self.lock.read();
        let g = rcu::read_lock();
        let v = self.tree.find(addr, &g).cloned().ok_or(Errno::ENOMEM)?;
        drop(g);
        self.smaps_counters(&s, &v)
            .field_kb(field, v.len(), thp_eligible(&v))
            .ok_or(Errno::EINVAL)
    }

    /// The `VmFlags` text of the VMA containing `addr`.
    pub fn vmflags(&self, addr: u64) -> SysResult<String> {
        let g = rcu::read_lock();
        let v = self.tree.find(addr, &g).ok_or(Errno::ENOMEM)?;
        Ok(vmflags_string(v.flags))
    }

    /// Walk one VMA's leaves and add them up (semi-locked: caller holds mmap read).
    pub(crate) fn smaps_counters(&self, layout: &impl LayoutLock, v: &Vma) -> SmapsCounters {
        let mut c = SmapsCounters::default();
        let locked = v.flags.intersects(VM_LOCKED);
        self.pt
            .semi(layout)
            .for_each_leaf(v.start, v.end, |_, pte| {
                if pte.has(PteFlags::SPECIAL) || !(pte.present() || pte.has(PteFlags::PROTNONE)) {
                    return;
                }
                let m = self.pm.meta(pte.pfn());
                let f = m.flags();
                let dirty = pte.has(PteFlags::D) || f.contains(PageFlags::DIRTY);
                c.account(
                    4096,
                    m.refcount(),
                    m.mapcount(),
                    dirty,
                    pte.has(PteFlags::A) || f.contains(PageFlags::REFERENCED),
                    f.contains(PageFlags::ANON),
                    f.contains(PageFlags::LAZYFREE),
                    locked,
                );
            });
        c
    }

    /// Pages of `[addr, addr + len)` that are resident (`mincore`): `EINVAL` for an
    /// unaligned address, `ENOMEM` when part of the range is not mapped.
    pub fn resident(&self, addr: u64, len: u64) -> SysResult<u64> {
        let start = PageAddr::new(addr).ok_or(Errno::EINVAL)?;
        let end = addr
            .checked_add(len)
            .filter(|&e| e <= crate::addr::TASK_SIZE)
            .ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Ok(0);
        }
        let end = PageAddr::down(end + (PAGE_SIZE - 1));
        let layout = self.lock.read();
        let g = rcu::read_lock();
        let mut at = start;
        let mut n = 0;
        while at < end {
            let v = self.tree.find(at.get(), &g).ok_or(Errno::ENOMEM)?;
            let hi = end.min(v.end);
            let mut mapped = std::collections::HashSet::new();
            self.pt.semi(&layout).for_each_leaf(at, hi, |va, pte| {
                if pte.present() || pte.has(PteFlags::PROTNONE) {
                    mapped.insert(va);
                }
            });
            n += mapped.len() as u64;
            // mincore reports the page cache of a file VMA where nothing is mapped.
            if let Some(cache) = v.backing.object() {
                let mut p = at;
                while p < hi {
                    if !mapped.contains(&p) && cache.lookup(v.pgoff_at(p)).is_some() {
                        n += 1;
                    }
                    p = p.next_page();
                }
            }
            at = hi;
        }
        Ok(n)
    }
}

/// THP eligibility as the host's `madvise` mode reports it: private anonymous memory
/// with MADV_HUGEPAGE (and not NOHUGEPAGE) that spans an aligned 2 MiB range.
fn thp_eligible(v: &Vma) -> bool {
    let aligned = v.start.get().next_multiple_of(HUGE_SIZE);
    v.is_anon()
        && v.flags.intersects(VM_HUGEPAGE)
        && !v.flags.intersects(VM_NOHUGEPAGE)
        && aligned.checked_add(HUGE_SIZE).is_some_and(|e| e <= v.end)
}
