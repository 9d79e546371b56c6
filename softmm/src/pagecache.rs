//! Page caches: frames of a memory object indexed by page offset.
//!
//! In this issue the only objects are the shmem files behind shared anonymous mappings
//! (shown as `/dev/zero (deleted)` in maps); the file layer of a later issue reuses this.
//!
//! Each cached frame holds one reference owned by the cache; every page-table mapping of
//! it holds another. The map lock is taken before any PTL (a fault looks the page up
//! first, then locks the PTE), never inside one, and never in an RCU callback (dropping
//! the cache uses `get_mut`).

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64 as HostU64, Ordering::Relaxed},
    },
};

use crate::{
    frame::{Pfn, PhysMem, flags},
    sync::Mutex,
};

static NEXT_INO: HostU64 = HostU64::new(1000);

/// A memory object's cached pages.
#[derive(Debug)]
pub struct PageCache {
    pm: Arc<PhysMem>,
    pages: Mutex<BTreeMap<u64, Pfn>>,
    ino: u64,
    /// Size in bytes.
    size: HostU64,
    name: String,
}

impl PageCache {
    /// A shmem object of `size` bytes named `name` (e.g. `/dev/zero (deleted)`).
    pub fn new(pm: &Arc<PhysMem>, size: u64, name: &str) -> Arc<Self> {
        Arc::new(Self {
            pm: Arc::clone(pm),
            pages: Mutex::new(BTreeMap::new()),
            // Relaxed: a unique-id counter.
            ino: NEXT_INO.fetch_add(1, Relaxed),
            size: HostU64::new(size),
            name: name.to_string(),
        })
    }

    /// Inode number shown in maps.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// Name shown in maps.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        // Relaxed: the size is changed under the mmap lock of the users (no files yet).
        self.size.load(Relaxed)
    }

    /// The frame at page `index`, allocating a zeroed one if absent. The caller gets a
    /// new reference. `None` when out of frames.
    pub fn get_or_alloc(&self, index: u64) -> Option<Pfn> {
        let mut pages = self.pages.lock();
        if let Some(&pfn) = pages.get(&index) {
            self.pm.meta(pfn).get();
            return Some(pfn);
        }
        let pfn = self.pm.alloc_zeroed(flags::SHMEM)?;
        self.pm.meta(pfn).get();
        pages.insert(index, pfn);
        Some(pfn)
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
        for p in gone {
            self.pm.put(p);
        }
    }

    /// Number of cached pages.
    pub fn nr_pages(&self) -> usize {
        self.pages.lock().len()
    }
}

impl Drop for PageCache {
    fn drop(&mut self) {
        for (_, pfn) in std::mem::take(self.pages.get_mut()) {
            self.pm.put(pfn);
        }
    }
}
