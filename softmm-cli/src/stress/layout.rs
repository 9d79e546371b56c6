//! The layout check: the VMA list (`/proc/self/maps`) over the thread's regions against
//! the oracle, page by page.
//!
//! For every page: the permissions (`rw-p`, `r--s`, ...) or its absence; what backs it
//! (private anonymous memory: no inode; the thread's memfd: its inode; a shared
//! anonymous object: `/dev/zero (deleted)`) and, for object pages, the file offset
//! maps shows for it, which must be the page's offset in its object. Two neighbouring
//! pages in one VMA must continue each other ([`Oracle::continues`]): a VMA never
//! spans two kinds of memory, two objects or discontinuous offsets.

use softmm::stats::VmaInfo;

use super::{
    oracle::{Oracle, PAGE, Page},
    worker::{Verdict, Worker},
};

/// maps' name of a shared anonymous object.
const SHMEM_NAME: &str = "/dev/zero (deleted)";

impl Worker {
    /// Compare the VMA list over this thread's regions with the oracle.
    pub(super) fn layout(&mut self) -> Verdict {
        let vmas = self.spec.mm.vmas();
        let ino = self.file.object.ino();
        let oracle = &self.oracle;
        for (r, region) in oracle.regions.iter().enumerate() {
            let mut prev = None;
            for i in 0..region.pages.len() {
                let addr = region.addr(i);
                let k = vmas.partition_point(|v| v.end <= addr);
                let vma = vmas.get(k).filter(|v| v.start <= addr);
                let got = vma.map(|v| v.perms.clone());
                let want = oracle.perms(r, i);
                if got != want {
                    return Err(format!(
                        "page {addr:#x} shows as {got:?} in maps, expected {want:?}"
                    ));
                }
                let Some(v) = vma else {
                    prev = None;
                    continue;
                };
                backing(oracle, oracle.page(r, i), v, addr, ino)?;
                if prev == Some(k) && !oracle.continues(r, i - 1) {
                    return Err(format!(
                        "pages {:#x} and {addr:#x} are one VMA in maps ({:#x}-{:#x}), \
                         expected two ({:?}, {:?})",
                        addr - PAGE,
                        v.start,
                        v.end,
                        oracle.page(r, i - 1),
                        oracle.page(r, i)
                    ));
                }
                prev = Some(k);
            }
        }
        Ok("ok".to_string())
    }
}

/// Check what maps says backs `page` at `addr` (in VMA `v`); `ino` is the memfd's.
fn backing(oracle: &Oracle, page: Page, v: &VmaInfo, addr: u64, ino: u64) -> Result<(), String> {
    let (obj, pgoff) = match page {
        Page::Unmapped => return Ok(()),
        Page::Private { .. } if v.inode == 0 => return Ok(()),
        Page::Private { .. } => {
            return Err(format!(
                "page {addr:#x} is backed by inode {} ({:?}) in maps, expected anonymous memory",
                v.inode, v.name
            ));
        }
        Page::PrivateFile { obj, pgoff, .. } | Page::Shared { obj, pgoff, .. } => (obj, pgoff),
    };
    let ours = oracle.is_file(obj);
    let right = if ours {
        v.inode == ino
    } else {
        v.inode != ino && v.name.as_deref() == Some(SHMEM_NAME)
    };
    let offset = v.offset + (addr - v.start);
    if !right || offset != u64::from(pgoff) * PAGE {
        return Err(format!(
            "page {addr:#x} shows as offset {offset:#x} of inode {} ({:?}) in maps, \
             expected offset {:#x} of {}",
            v.inode,
            v.name,
            u64::from(pgoff) * PAGE,
            if ours { "the memfd" } else { SHMEM_NAME }
        ));
    }
    Ok(())
}
