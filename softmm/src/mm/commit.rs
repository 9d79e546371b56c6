//! Commit accounting: how much memory the address spaces have been promised
//! (`vm_committed_as`, meminfo `Committed_AS`) and whether a request for more is allowed
//! (`__vm_enough_memory` in mm/util.c, with the `vm.overcommit_*` knobs of [`Config`]).
//!
//! What is charged, as Linux: private writable mappings (`accountable_mapping`: VM_WRITE
//! without VM_SHARED or VM_NORESERVE; they carry `VM_ACCOUNT`), brk, the growth of an
//! accounted mapping (mremap, stack), a private mapping made writable (mprotect), the
//! accounted VMAs a fork copies, and the whole size of new shared anonymous memory
//! unless MAP_NORESERVE (`shmem_acct_size`). Read-only private memory, PROT_NONE and
//! shared file mappings are not charged. Pages of memfds, files (tmpfs-like) and shared
//! memory mapped with MAP_NORESERVE are counted in the total while they are cached
//! (`shmem_acct_blocks`, in `pagecache`), but never refused: `Never` does not fail
//! their allocation with ENOSPC as Linux does.
//!
//! Bookkeeping: the VMA tree keeps the pages of its `VM_ACCOUNT` VMAs up to date at each
//! commit; this address space pushes the change to the machine-wide total when it
//! releases `mmap_lock` write ([`AddressSpace::sync_committed`]), and takes its share
//! back when it is dropped. A check is made before the change, against the total plus
//! what the same call has already asked for (`pending`), so a refused request changes
//! nothing: a MAP_FIXED that fails this way leaves the old mapping and its pages.
//! Processes are privileged (as root, CAP_SYS_ADMIN): no admin reserve.
//!
//! [`Config`]: crate::config::Config

use super::AddressSpace;
use crate::{
    addr::{PAGE_SHIFT, PageAddr},
    config::Overcommit,
    error::{Errno, SysResult},
    sync::{Ordering, rcu},
    vma::{TreeEdit, flags::VM_ACCOUNT},
};

impl AddressSpace {
    /// `security_vm_enough_memory_mm`: may `pages` more be committed, on top of the
    /// `pending` pages this call already asked for? `ENOMEM` when not.
    pub(crate) fn vm_enough_memory(&self, pages: u64, pending: u64) -> SysResult<()> {
        let c = &self.config;
        let ok = match c.overcommit_memory {
            Overcommit::Always => true,
            Overcommit::Guess => {
                pages <= c.commit_ram_bytes.saturating_add(c.commit_swap_bytes) >> PAGE_SHIFT
            }
            Overcommit::Never => {
                let user_reserve = (self.total_vm_pages() / 32).min(c.user_reserve_kbytes >> 2);
                let allowed = self.commit_limit_pages().saturating_sub(user_reserve);
                let after = self
                    .pm
                    .committed_pages()
                    .saturating_add(pending)
                    .saturating_add(pages);
                after < allowed
            }
        };
        if ok { Ok(()) } else { Err(Errno::ENOMEM) }
    }

    /// `vm_commit_limit`: `overcommit_kbytes`, else `overcommit_ratio`% of RAM, plus
    /// swap, in pages.
    pub fn commit_limit_pages(&self) -> u64 {
        let c = &self.config;
        let base = if c.overcommit_kbytes != 0 {
            c.overcommit_kbytes >> (PAGE_SHIFT - 10)
        } else {
            ((c.commit_ram_bytes >> PAGE_SHIFT) as u128 * c.overcommit_ratio as u128 / 100)
                .try_into()
                .unwrap_or(u64::MAX)
        };
        base.saturating_add(c.commit_swap_bytes >> PAGE_SHIFT)
    }

    /// Pages committed on the machine (`Committed_AS` in pages): every address space's
    /// accounted VMAs and the charged shared anonymous objects over this physical memory.
    pub fn committed_pages(&self) -> u64 {
        self.pm.committed_pages()
    }

    /// Pages mapped by this address space (`mm->total_vm`).
    fn total_vm_pages(&self) -> u64 {
        let g = rcu::read_lock();
        self.tree.iter(&g).map(|v| v.len() >> PAGE_SHIFT).sum()
    }

    /// Push the change of this address space's accounted pages since the last call to
    /// the machine-wide total. Called with `mmap_lock` held for write (or by the only
    /// user of a new address space), after the tree was edited.
    pub(crate) fn sync_committed(&self) {
        let now = self.tree.accounted_pages();
        // Relaxed: only the holder of `mmap_lock` write (or the dropping owner) swaps it.
        let seen = self.acct_seen.swap(now, Ordering::Relaxed);
        self.pm.commit(now.wrapping_sub(seen));
    }
}

/// Pages of `[start, end)` that accounted VMAs of `edit` cover (`nr_accounted` of the
/// mappings a MAP_FIXED replaces: their charge passes to the new mapping).
pub(crate) fn accounted_in(edit: &TreeEdit<'_>, start: PageAddr, end: PageAddr) -> u64 {
    edit.intersecting_iter(start.get(), end.get())
        .filter(|v| v.flags.intersects(VM_ACCOUNT))
        .map(|v| v.start.max(start).pages_to(v.end.min(end)))
        .sum()
}
