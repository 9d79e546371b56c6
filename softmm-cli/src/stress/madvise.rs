//! The oracle's rules for madvise: DONTNEED, FREE, REMOVE and the two POPULATEs, page
//! by page in address order (Linux's VMA by VMA walk gives the same result for these
//! ranges: pages of one VMA behave alike).

use softmm::{Errno, abi::*};

use super::oracle::{Breakage, Bytes, Data, Oracle, Page};

impl Oracle {
    /// `madvise` with DONTNEED, FREE, REMOVE, POPULATE_READ or POPULATE_WRITE.
    pub fn madvise(&mut self, r: usize, i: usize, n: usize, advice: u64) -> Result<u64, Errno> {
        let mut hole = false;
        for k in i..i + n {
            let page = self.page(r, k);
            if page == Page::Unmapped {
                // Populate stops at a hole; the others go on and report it at the end.
                if matches!(advice, MADV_POPULATE_READ | MADV_POPULATE_WRITE) {
                    return Err(Errno::ENOMEM);
                }
                hole = true;
                continue;
            }
            self.advise_page(r, k, page, advice)?;
        }
        if hole { Err(Errno::ENOMEM) } else { Ok(0) }
    }

    fn advise_page(&mut self, r: usize, k: usize, page: Page, advice: u64) -> Result<(), Errno> {
        let slot = &mut self.regions[r].pages[k];
        match (advice, page) {
            (MADV_DONTNEED, Page::Private { prot, data }) => {
                let data = match (self.breakage, data) {
                    (Some(Breakage::Dontneed), Data::Frame(b) | Data::Lazy(b)) => Data::Frame(b),
                    _ => Data::Untouched,
                };
                *slot = Page::Private { prot, data };
            }
            (
                MADV_FREE,
                Page::Private {
                    prot,
                    data: Data::Frame(b),
                },
            ) => {
                *slot = Page::Private {
                    prot,
                    data: Data::Lazy(b),
                };
            }
            (
                MADV_DONTNEED,
                Page::PrivateFile {
                    prot, obj, pgoff, ..
                },
            ) => {
                *slot = Page::PrivateFile {
                    prot,
                    obj,
                    pgoff,
                    copy: None,
                };
            }
            // MADV_FREE is for anonymous VMAs only; MADV_REMOVE for shared ones that may
            // be written (EACCES for a private file mapping, EINVAL without a file).
            (MADV_FREE, Page::Shared { .. } | Page::PrivateFile { .. }) => {
                return Err(Errno::EINVAL);
            }
            (MADV_REMOVE, Page::Private { .. }) => return Err(Errno::EINVAL),
            (MADV_REMOVE, Page::PrivateFile { .. }) => return Err(Errno::EACCES),
            (MADV_REMOVE, Page::Shared { obj, pgoff, .. }) => {
                // Allowed on any shared mapping that may be written (VM_MAYWRITE), even
                // a read-only one: checked with linux-run (tests/scripts/078).
                if let Some(s) = self.object_page(obj, pgoff) {
                    *s = None;
                }
            }
            (MADV_POPULATE_READ | MADV_POPULATE_WRITE, _) => {
                return self.populate_page(r, k, page, advice == MADV_POPULATE_WRITE);
            }
            // DONTNEED on shared memory zaps the entries; the object keeps the page.
            _ => {}
        }
        Ok(())
    }

    fn populate_page(&mut self, r: usize, k: usize, page: Page, write: bool) -> Result<(), Errno> {
        let prot = page.prot().unwrap_or(PROT_NONE);
        // GUP without FOLL_FORCE: reading needs VM_READ, writing VM_WRITE (Linux 6.18,
        // checked with linux-run).
        if (!write && prot & PROT_READ == 0) || (write && prot & PROT_WRITE == 0) {
            return Err(Errno::EINVAL);
        }
        match page {
            Page::Private {
                prot,
                data: Data::Untouched,
            } if write => {
                self.regions[r].pages[k] = Page::Private {
                    prot,
                    data: Data::Frame(Bytes::Zero),
                };
            }
            Page::PrivateFile {
                prot,
                obj,
                pgoff,
                copy: None,
            } => match self.object_page(obj, pgoff) {
                None => return Err(Errno::EFAULT),
                Some(s) => {
                    let bytes = *s.get_or_insert(Bytes::Zero);
                    if write {
                        self.regions[r].pages[k] = Page::PrivateFile {
                            prot,
                            obj,
                            pgoff,
                            copy: Some(bytes),
                        };
                    }
                }
            },
            Page::Shared { obj, pgoff, .. } => match self.object_page(obj, pgoff) {
                None => return Err(Errno::EFAULT),
                Some(s) => {
                    s.get_or_insert(Bytes::Zero);
                }
            },
            _ => {}
        }
        Ok(())
    }
}
