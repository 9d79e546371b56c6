//! munmap (`__vm_munmap`, `do_vmi_munmap`).

use super::AddressSpace;
use crate::addr::{PAGE_SIZE, is_page_aligned, page_down};
use crate::{addr::TASK_SIZE, error::Errno, error::SysResult, pgtable::Gather};

impl AddressSpace {
    /// `munmap(2)`: unmapping a range with nothing mapped succeeds.
    pub fn munmap(&self, addr: u64, len: u64) -> SysResult<u64> {
        if !is_page_aligned(addr) || addr > TASK_SIZE || len > TASK_SIZE - addr {
            return Err(Errno::EINVAL);
        }
        let end = addr + page_down(len + (PAGE_SIZE - 1));
        if end == addr {
            return Err(Errno::EINVAL);
        }
        let state = self.write_lock();
        let mut gather = Gather::new(&self.pm);
        let mut edit = self.tree.edit();
        let r = self.unmap_locked(&mut edit, addr, end, &mut gather);
        edit.commit();
        drop(state);
        gather.finish();
        r.map(|_| 0)
    }
}
