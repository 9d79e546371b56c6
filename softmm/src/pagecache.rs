//! Page caches: the memory objects behind shared and file mappings (Linux's inode +
//! `address_space`), and the reverse map from an object to the address spaces mapping it.
//!
//! Objects are in-memory (tmpfs-like): shmem behind `MAP_SHARED|MAP_ANONYMOUS`
//! (`/dev/zero (deleted)`), memfds (`/memfd:NAME (deleted)`) and the files of the
//! [`crate::file`] layer. Rules:
//!
//! * Each cached frame holds one reference owned by the cache; every page-table mapping
//!   of it holds another and one mapcount.
//! * The page map lock is taken before any PTL (a fault looks the page up first, then
//!   locks the PTE), never inside one, and never in an RCU callback (dropping the cache
//!   uses `get_mut`).
//! * The reverse map (`i_mmap`) lists the address spaces that may map the object, added
//!   when a VMA of it is created in one; dead ones are pruned on use. Truncation and
//!   hole punching unmap through it (`PageCache::mappers`), taking each address
//!   space's `mmap_lock` in turn: callers hold no `mmap_lock` then (Linux's `madvise`
//!   drops it before `vfs_fallocate` for the same reason: two address spaces must never
//!   be locked at once).
//! * The size changes only under the page map lock; a fault re-reads it there before it
//!   adds a page, so a page is never cached beyond the end after a shrink.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Weak,
        atomic::{AtomicBool as HostBool, AtomicU64 as HostU64, Ordering::Relaxed},
    },
};

use crate::{
    addr::PAGE_SIZE,
    frame::{FrameRef, PageFlags, Pfn, PhysMem},
    sync::Mutex,
};

/// An address space as the reverse map sees it: something that may map an object's pages
/// and can be told to unmap some of them. Implemented by `mm::AddressSpace` (in
/// `mm/rmap.rs`); the page cache holds it weakly, so it never keeps an address space
/// alive, and through this trait, so that this layer depends on nothing above it.
pub(crate) trait Mapper: Send + Sync + std::fmt::Debug {
    /// Zap the entries that map page offsets `[first, last)` of `obj`: page-cache pages
    /// always, private copy-on-write copies too when `even_cows`.
    fn unmap_object(&self, obj: &Arc<PageCache>, first: u64, last: u64, even_cows: bool);
}

/// Why [`PageCache::get_or_alloc`] found no frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CacheError {
    /// The index is at or past the end of the object (a fault there is SIGBUS).
    Beyond,
    /// Out of frames.
    Oom,
}

/// A write that ran out of frames part-way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("out of memory after {written} bytes")]
pub struct ShortWrite {
    /// Bytes written before the page that could not be allocated.
    pub written: usize,
}

static NEXT_INO: HostU64 = HostU64::new(1000);

/// What kind of object a page cache belongs to (decides its maps name and device).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// Shared anonymous memory: `/dev/zero (deleted)` on the internal shm mount (00:01).
    Shmem,
    /// A memfd: `/memfd:NAME (deleted)` on the internal shm mount.
    Memfd,
    /// A file of the private namespace (tmpfs-like), shown by its path.
    File,
    /// A file a trace replay knows only by its path (on the traced machine's disk file
    /// system, whose placement aligns big mappings to 2 MiB, `thp_get_unmapped_area`).
    DiskFile,
    /// The character device `/dev/zero`: it has no pages; a shared mapping of it is new
    /// shmem, a private one anonymous memory that shows the device's path.
    ZeroDevice,
}

/// A memory object's cached pages.
#[derive(Debug)]
pub struct PageCache {
    pm: Arc<PhysMem>,
    pages: Mutex<BTreeMap<u64, Pfn>>,
    mappers: Mutex<Vec<Weak<dyn Mapper>>>,
    ino: u64,
    dev: (u32, u32),
    /// Size in bytes (written under `pages`' lock).
    size: HostU64,
    name: String,
    kind: ObjectKind,
    /// Pages committed for this object at creation (`shmem_acct_size` of shared
    /// anonymous memory), returned when it goes.
    charged: HostU64,
    /// Each cached page is committed while it is cached (`shmem_acct_blocks` of a
    /// VM_NORESERVE object: memfds, files, shared memory mapped with MAP_NORESERVE).
    per_page: HostBool,
}

impl PageCache {
    /// A shmem object of `size` bytes named `name` (e.g. `/dev/zero (deleted)`).
    pub fn new(pm: &Arc<PhysMem>, size: u64, name: &str) -> Arc<Self> {
        Self::with_kind(pm, size, name, ObjectKind::Shmem, (0, 1))
    }

    /// `/dev/zero` as maps shows it on the reference host (Linux 6.18, devtmpfs mounted
    /// as 00:06, the device's inode 4).
    pub fn zero_device(pm: &Arc<PhysMem>) -> Arc<Self> {
        let mut obj = Self::with_kind(pm, 0, "/dev/zero", ObjectKind::ZeroDevice, (0, 6));
        if let Some(o) = Arc::get_mut(&mut obj) {
            o.ino = 4;
        }
        obj
    }

    /// An object of `kind` shown as `name` on device `dev`.
    pub fn with_kind(
        pm: &Arc<PhysMem>,
        size: u64,
        name: &str,
        kind: ObjectKind,
        dev: (u32, u32),
    ) -> Arc<Self> {
        let per_page = matches!(
            kind,
            ObjectKind::Shmem | ObjectKind::Memfd | ObjectKind::File
        );
        Arc::new(Self {
            pm: Arc::clone(pm),
            pages: Mutex::new(BTreeMap::new()),
            mappers: Mutex::new(Vec::new()),
            // Relaxed: a unique-id counter.
            ino: NEXT_INO.fetch_add(1, Relaxed),
            dev,
            size: HostU64::new(size),
            name: name.to_string(),
            kind,
            charged: HostU64::new(0),
            per_page: HostBool::new(per_page),
        })
    }

    /// Commit `pages` for this object until it is dropped (`shmem_acct_size`); its
    /// pages are then not committed one by one. Called before any page is cached.
    pub(crate) fn charge(&self, pages: u64) {
        self.pm.commit(pages);
        // Relaxed: read back only by `Drop`, which owns the object; `per_page` is set
        // before the object is published to any mapping.
        self.charged.fetch_add(pages, Relaxed);
        self.per_page.store(false, Relaxed);
    }

    /// Pages committed per cached page: 1 for an object charged page by page, else 0.
    fn page_charge(&self) -> u64 {
        // Relaxed: fixed before the object is shared (`charge`).
        u64::from(self.per_page.load(Relaxed))
    }

    /// Inode number shown in maps.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// Device (major, minor) shown in maps.
    pub fn dev(&self) -> (u32, u32) {
        self.dev
    }

    /// Name shown in maps.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind of object.
    pub fn kind(&self) -> &ObjectKind {
        &self.kind
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        // Relaxed: a snapshot; decisions that must agree with truncation re-read it
        // under the page map lock (`get_or_alloc`), which orders it.
        self.size.load(Relaxed)
    }

    /// Pages the object covers (`ceil(size / 4096)`).
    pub fn nr_size_pages(&self) -> u64 {
        self.size().div_ceil(PAGE_SIZE)
    }

    /// A reference to the frame at page `index`, allocating a zeroed one if absent.
    pub(crate) fn get_or_alloc(&self, index: u64) -> Result<FrameRef<'_>, CacheError> {
        let mut pages = self.pages.lock();
        if index >= self.nr_size_pages() {
            return Err(CacheError::Beyond);
        }
        if let Some(&pfn) = pages.get(&index) {
            // SAFETY: (1) the cache slot owns a count of `pfn` and the page map lock
            // keeps the slot in place.
            return Ok(unsafe { self.pm.get(pfn) });
        }
        let frame = self
            .pm
            .alloc_zeroed(PageFlags::SHMEM)
            .ok_or(CacheError::Oom)?;
        // The slot owns the allocation's count; the caller gets a second one.
        let caller = frame.clone();
        pages.insert(index, frame.into_raw());
        self.pm.commit(self.page_charge());
        Ok(caller)
    }

    /// A reference to the frame at page `index` if it is cached and inside the object
    /// (what `filemap_map_pages` finds: it never allocates).
    pub(crate) fn get_cached(&self, index: u64) -> Option<FrameRef<'_>> {
        let pages = self.pages.lock();
        if index >= self.nr_size_pages() {
            return None;
        }
        let &pfn = pages.get(&index)?;
        // SAFETY: (1) the cache slot owns a count of `pfn` and the page map lock keeps
        // the slot in place.
        Some(unsafe { self.pm.get(pfn) })
    }

    /// The frame at `index` if cached (no new reference: for statistics).
    pub fn lookup(&self, index: u64) -> Option<Pfn> {
        self.pages.lock().get(&index).copied()
    }

    /// Drop cached pages in `[first, last)` (hole punch): they read as zeros afterwards.
    /// Mappings of them must have been zapped by the caller.
    pub fn remove(&self, first: u64, last: u64) {
        let gone: Vec<Pfn> = {
            let mut pages = self.pages.lock();
            let keys: Vec<u64> = pages.range(first..last).map(|(k, _)| *k).collect();
            keys.into_iter().filter_map(|k| pages.remove(&k)).collect()
        };
        self.pm.uncommit(gone.len() as u64 * self.page_charge());
        for p in gone {
            // SAFETY: (1) each was a cache slot's count, removed above.
            unsafe { self.pm.put(p) };
        }
    }

    /// Drop the page at `index` if it is still `pfn`, clean, unmapped and held by the
    /// cache alone (reclaim's `__remove_mapping`): a tmpfs page that was never written
    /// is a hole, so it reads back as zeros. Returns whether it was dropped.
    pub(crate) fn evict_clean(&self, index: u64, pfn: Pfn) -> bool {
        let mut pages = self.pages.lock();
        let m = self.pm.meta(pfn);
        // The page map lock keeps new cache lookups (`get_or_alloc`) out; a speculative
        // reference taken meanwhile by an access that read an old entry shows in the
        // count and keeps the page (it is dropped on a later reclaim, as in Linux).
        let unused = m.refcount() == 1 && m.mapcount() == 0 && !m.has(PageFlags::DIRTY);
        if pages.get(&index) != Some(&pfn) || !unused {
            return false;
        }
        pages.remove(&index);
        drop(pages);
        self.pm.uncommit(self.page_charge());
        // SAFETY: (1) the slot owned a count of `pfn`; it was removed above.
        unsafe { self.pm.put(pfn) };
        true
    }

    /// Number of cached pages.
    pub fn nr_pages(&self) -> usize {
        self.pages.lock().len()
    }

    /// Write `data` at byte `off` (`pwrite`), growing the object if it ends beyond.
    /// Returns the bytes written; out of frames, the bytes before the failing page were
    /// written (a short write) and the error says how many.
    pub fn write(&self, data: &[u8], off: u64) -> Result<usize, ShortWrite> {
        let mut done = 0usize;
        while done < data.len() {
            let pos = off + done as u64;
            let index = pos / PAGE_SIZE;
            let in_page = (pos % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - in_page).min(data.len() - done);
            let mut pages = self.pages.lock();
            let end = pos + n as u64;
            if end > self.size() {
                // Relaxed: written under the page map lock (module rules).
                self.size.store(end, Relaxed);
            }
            let pfn = match pages.get(&index) {
                Some(&p) => p,
                None => {
                    let Some(p) = self.pm.alloc_zeroed(PageFlags::SHMEM) else {
                        return Err(ShortWrite { written: done });
                    };
                    // The cache slot owns the allocation's count.
                    let p = p.into_raw();
                    pages.insert(index, p);
                    self.pm.commit(self.page_charge());
                    p
                }
            };
            // SAFETY: (1) the slot owns a count of `pfn`, kept by the page map lock.
            unsafe { self.pm.write(pfn, in_page, &data[done..done + n]) };
            // tmpfs pages are never written back: dirty for good.
            self.pm.meta(pfn).set_flags(PageFlags::DIRTY);
            done += n;
        }
        Ok(done)
    }

    /// Read up to `buf.len()` bytes at `off` (stops at the end of the object).
    pub fn read(&self, buf: &mut [u8], off: u64) -> usize {
        let pages = self.pages.lock();
        let len = (self.size().saturating_sub(off) as usize).min(buf.len());
        let mut done = 0usize;
        while done < len {
            let pos = off + done as u64;
            let in_page = (pos % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - in_page).min(len - done);
            match pages.get(&(pos / PAGE_SIZE)) {
                // SAFETY: (1) the slot owns a count of `p`, kept by the page map lock.
                Some(&p) => unsafe { self.pm.read(p, in_page, &mut buf[done..done + n]) },
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
        len
    }

    /// Set the size (`ftruncate`). Shrinking zeroes the tail of the new last page and
    /// drops the cached pages past it; the caller unmaps them from every mapper first
    /// (`truncate_pagecache`).
    pub fn set_size(&self, size: u64) {
        let gone: Vec<Pfn> = {
            let mut pages = self.pages.lock();
            let old = self.size();
            // Relaxed: written under the page map lock (module rules).
            self.size.store(size, Relaxed);
            if size >= old {
                return;
            }
            if !size.is_multiple_of(PAGE_SIZE)
                && let Some(&p) = pages.get(&(size / PAGE_SIZE))
            {
                let at = (size % PAGE_SIZE) as usize;
                // SAFETY: (1) the slot owns a count of `p`, kept by the page map lock.
                unsafe { self.pm.fill(p, at, 0, PAGE_SIZE as usize - at) };
            }
            let first = size.div_ceil(PAGE_SIZE);
            let keys: Vec<u64> = pages.range(first..).map(|(k, _)| *k).collect();
            keys.into_iter().filter_map(|k| pages.remove(&k)).collect()
        };
        self.pm.uncommit(gone.len() as u64 * self.page_charge());
        for p in gone {
            // SAFETY: (1) each was a cache slot's count, removed above.
            unsafe { self.pm.put(p) };
        }
    }

    /// Record that `mm` may map this object (`vma_link_file` adding to `i_mmap`).
    pub(crate) fn add_mapper(&self, mm: Weak<dyn Mapper>) {
        let mut m = self.mappers.lock();
        m.retain(|w| w.strong_count() > 0);
        if !m.iter().any(|w| Weak::ptr_eq(w, &mm)) {
            m.push(mm);
        }
    }

    /// The live address spaces that may map this object.
    pub(crate) fn mappers(&self) -> Vec<Arc<dyn Mapper>> {
        let mut m = self.mappers.lock();
        m.retain(|w| w.strong_count() > 0);
        m.iter().filter_map(Weak::upgrade).collect()
    }
}

impl Drop for PageCache {
    fn drop(&mut self) {
        let cached = self.pages.get_mut().len() as u64;
        self.pm
            .uncommit(*self.charged.get_mut() + cached * self.page_charge());
        for (_, pfn) in std::mem::take(self.pages.get_mut()) {
            // SAFETY: (1) each slot owned a count; the cache is going away.
            unsafe { self.pm.put(pfn) };
        }
    }
}
