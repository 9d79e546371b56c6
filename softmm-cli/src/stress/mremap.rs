//! The oracle's rules for mremap of the window: in-place resizes, and moves with
//! MREMAP_FIXED (and MREMAP_DONTUNMAP). Pages move with their state (a file page keeps
//! its object and offset); a grown mapping continues its VMA (zero pages, or the
//! object's next pages).

use softmm::Errno;

use super::oracle::{Data, Oracle, Page};

impl Oracle {
    /// `mremap` of the window. `dst` set: MREMAP_MAYMOVE|MREMAP_FIXED (and DONTUNMAP);
    /// else an in-place resize. `vma` is the page range of the VMA holding page `src`,
    /// clipped to the region (from a snapshot; only internal edges matter and only this
    /// thread changes them). The caller guarantees page `src` is mapped, the ranges lie
    /// in the region and do not overlap, and that a grow or DONTUNMAP move has its
    /// source inside one VMA.
    #[expect(clippy::too_many_arguments, reason = "the mremap argument list")]
    pub fn mremap(
        &mut self,
        r: usize,
        src: usize,
        old: usize,
        new: usize,
        dst: Option<usize>,
        dontunmap: bool,
        vma: (usize, usize),
    ) -> Result<u64, Errno> {
        let len = self.regions[r].pages.len();
        let Some(d) = dst else {
            if new <= old {
                self.munmap(r, src + new, old - new)?;
                return Ok(self.regions[r].addr(src));
            }
            if vma.1 < src + old {
                return Err(Errno::EFAULT);
            }
            let room = src + new <= len
                && self.regions[r].pages[src + old..src + new]
                    .iter()
                    .all(|p| *p == Page::Unmapped);
            if vma.1 != src + old || vma.1 == len || !room {
                return Err(Errno::ENOMEM);
            }
            self.extend(r, src, old, src + old, new - old);
            return Ok(self.regions[r].addr(src));
        };
        if old == new {
            // A pure move (Linux 6.17+): each VMA part moves; only each part's
            // destination is unmapped, so the destination opposite a hole in the
            // source keeps what it had.
            let moved: Vec<Page> = self.regions[r].pages[src..src + old].to_vec();
            for (k, page) in moved.into_iter().enumerate() {
                if page == Page::Unmapped {
                    continue;
                }
                self.munmap(r, d + k, 1)?;
                self.regions[r].pages[d + k] = page;
                self.regions[r].pages[src + k] = if dontunmap {
                    page.left_by_dontunmap()
                } else {
                    Page::Unmapped
                };
            }
            return Ok(self.regions[r].addr(d));
        }
        // A resizing move: the part that moves must lie in the source VMA, checked
        // before anything changes (`check_prep_vma`).
        if vma.1 < src + old.min(new) {
            return Err(Errno::EFAULT);
        }
        self.munmap(r, d, new)?;
        let mut old = old;
        if old > new {
            self.munmap(r, src + new, old - new)?;
            old = new;
        }
        let moved: Vec<Page> = self.regions[r].pages[src..src + old].to_vec();
        self.extend(r, src, old, d + old, new - old);
        for (k, page) in moved.into_iter().enumerate() {
            self.regions[r].pages[d + k] = page;
            self.regions[r].pages[src + k] = if dontunmap {
                page.left_by_dontunmap()
            } else {
                Page::Unmapped
            };
        }
        Ok(self.regions[r].addr(d))
    }

    /// Fill `[at, at + n)` with the continuation of the VMA whose last page is
    /// `src + old - 1` (a grown mapping: zero pages, or the object's next pages).
    fn extend(&mut self, r: usize, src: usize, old: usize, at: usize, n: usize) {
        let last = self.page(r, src + old - 1);
        self.set(r, at, n, |k| match last {
            Page::Private { prot, .. } => Page::Private {
                prot,
                data: Data::Untouched,
            },
            Page::PrivateFile {
                prot, obj, pgoff, ..
            } => Page::PrivateFile {
                prot,
                obj,
                pgoff: pgoff + 1 + k as u32,
                copy: None,
            },
            Page::Shared { prot, obj, pgoff } => Page::Shared {
                prot,
                obj,
                pgoff: pgoff + 1 + k as u32,
            },
            Page::Unmapped => Page::Unmapped,
        });
    }
}
