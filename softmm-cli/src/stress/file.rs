//! The oracle's rules for the thread's memfd: mapping it, `pwrite`, `ftruncate`, and
//! what reading it through the page cache gives.
//!
//! Each thread owns one memfd (an object of the oracle with a size of its own), so no
//! other thread changes what the oracle knows about it. Pages of the file are shmem
//! pages: a hole reads as zeros and holds no frame until a mapping faults it in (either
//! kind of mapping, read or write) or `pwrite` fills it; a cached page holds one frame
//! for as long as the object lives. Sizes stay page-aligned (`ftruncate` takes pages,
//! `pwrite` writes whole pages), so Linux's zeroing of a partial last page never comes
//! up.

use softmm::{Errno, abi::*};

use super::oracle::{Bytes, Oracle, PAGE, Page, WINDOW};

/// Pages of the thread's file at the start.
pub const FILE_PAGES: usize = 32;
/// Largest size (pages) the file grows to; mappings reach up to here too (pages past
/// the end then raise SIGBUS).
pub const FILE_MAX_PAGES: usize = 48;

impl Oracle {
    /// Create the thread's file: `pages` pages of holes. Returns its object id.
    pub fn create_file(&mut self, pages: usize) -> u32 {
        let obj = self.new_object(pages);
        self.file = Some(obj);
        obj
    }

    /// Whether object `obj` is the thread's file.
    pub fn is_file(&self, obj: u32) -> bool {
        self.file == Some(obj)
    }

    fn file_obj(&self) -> u32 {
        self.file.expect("the thread created its file")
    }

    /// The file's size in pages.
    pub fn file_pages(&self) -> usize {
        self.objects[&self.file_obj()].len()
    }

    /// `mmap(addr of window page i, n pages, prot, MAP_SHARED or MAP_PRIVATE |
    /// MAP_FIXED[_NOREPLACE] [| MAP_POPULATE], memfd, pgoff pages)`.
    #[expect(clippy::too_many_arguments, reason = "the mmap argument list")]
    pub fn mmap_file(
        &mut self,
        i: usize,
        n: usize,
        prot: u64,
        shared: bool,
        populate: bool,
        noreplace: bool,
        pgoff: usize,
    ) -> Result<u64, Errno> {
        let range = &self.regions[WINDOW].pages[i..i + n];
        if noreplace && range.iter().any(|p| *p != Page::Unmapped) {
            return Err(Errno::EEXIST);
        }
        let obj = self.file_obj();
        self.set(WINDOW, i, n, |k| {
            let pgoff = (pgoff + k) as u32;
            if shared {
                Page::Shared { prot, obj, pgoff }
            } else {
                Page::PrivateFile {
                    prot,
                    obj,
                    pgoff,
                    copy: None,
                }
            }
        });
        if populate && prot != PROT_NONE {
            // `__mm_populate`: write faults for private writable memory (private copies
            // of the file's pages), read faults otherwise; both allocate holes in the
            // cache. The first page past the end fails, and the rest of the VMA with it.
            let write = !shared && prot & PROT_WRITE != 0;
            for k in 0..n {
                let Some(slot) = self.object_page(obj, (pgoff + k) as u32) else {
                    break;
                };
                let bytes = *slot.get_or_insert(Bytes::Zero);
                if write {
                    self.regions[WINDOW].pages[i + k] = Page::PrivateFile {
                        prot,
                        obj,
                        pgoff: (pgoff + k) as u32,
                        copy: Some(bytes),
                    };
                }
            }
        }
        Ok(self.regions[WINDOW].addr(i))
    }

    /// `pwrite(memfd, page k = bytes_of(k) for k < n, pgoff pages)`: the file grows to
    /// cover the write. Mappings see it where they show the file's page.
    pub fn pwrite(
        &mut self,
        pgoff: usize,
        n: usize,
        bytes_of: impl Fn(usize) -> Bytes,
    ) -> Result<u64, Errno> {
        let obj = self.file_obj();
        let pages = self.objects.get_mut(&obj).expect("the file lives");
        if pages.len() < pgoff + n {
            pages.resize(pgoff + n, None);
        }
        for k in 0..n {
            pages[pgoff + k] = Some(bytes_of(k));
        }
        Ok(n as u64 * PAGE)
    }

    /// `ftruncate(memfd, pages * 4096)`: a shrink frees the file's pages past the end
    /// and discards the private copies made of them (`truncate_pagecache` unmaps with
    /// `even_cows`); a grow adds holes.
    pub fn ftruncate(&mut self, pages: usize) -> Result<u64, Errno> {
        let obj = self.file_obj();
        self.objects
            .get_mut(&obj)
            .expect("the file lives")
            .resize(pages, None);
        for page in self.regions.iter_mut().flat_map(|r| &mut r.pages) {
            if let Page::PrivateFile {
                obj: o,
                pgoff,
                copy: copy @ Some(_),
                ..
            } = page
                && *o == obj
                && *pgoff as usize >= pages
            {
                *copy = None;
            }
        }
        Ok(0)
    }

    /// What reading page `pgoff` of the file through the cache (`pread`) gives: its
    /// bytes (zero for a hole, which stays a hole), `None` past the end.
    pub fn file_page(&self, pgoff: usize) -> Option<Bytes> {
        let pages = &self.objects[&self.file_obj()];
        pages.get(pgoff).map(|p| p.unwrap_or(Bytes::Zero))
    }
}
