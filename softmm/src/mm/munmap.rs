//! munmap (`__vm_munmap`, `do_vmi_munmap`).

use super::AddressSpace;
use crate::{
    addr::{PAGE_SIZE, PageAddr, TASK_SIZE, page_down},
    error::Errno,
    error::SysResult,
    pgtable::Gather,
};

impl AddressSpace {
    /// `munmap(2)`: unmapping a range with nothing mapped succeeds.
    pub fn munmap(&self, addr: u64, len: u64) -> SysResult<u64> {
        let start = PageAddr::new(addr).ok_or(Errno::EINVAL)?;
        if addr > TASK_SIZE || len > TASK_SIZE - addr {
            return Err(Errno::EINVAL);
        }
        let end = start + page_down(len + (PAGE_SIZE - 1));
        if end == addr {
            return Err(Errno::EINVAL);
        }
        let state = self.write_lock();
        let mut gather = Gather::new(&self.pm);
        let mut edit = self.tree.edit();
        let r = self.unmap_locked(&state, &mut edit, start, end, &mut gather);
        edit.commit();
        drop(state);
        self.tlb_finish(gather);
        r.map(|_| 0)
    }
}
