//! The reference model's memory: what a CPU reads and writes, and what populating does.
//!
//! Private anonymous pages are keyed by virtual address (absent: zero) and move with
//! mremap; shared anonymous pages live in their shmem object, keyed by page offset, so
//! zapping a shared mapping's entries (MADV_DONTNEED) loses nothing. A guard marker makes
//! its page fault with SIGSEGV. A shared page at or past its object's end is SIGBUS.
//!
//! The first write fault of a private VMA gives it an anon_vma ([`Space::anon_prepare`]);
//! reads never do (they map the zero page).

use softmm::Errno;

use super::vmflags::*;

use super::space::{Backing, PAGE, Space};

/// A shmem object (the file behind one `MAP_SHARED|MAP_ANONYMOUS` mapping).
#[derive(Clone, Debug)]
pub struct Object {
    /// Size in pages (`i_size`); pages at or past it are SIGBUS.
    pub pages: u64,
    /// Written pages by page offset (absent: zero).
    pub data: std::collections::BTreeMap<u64, Box<[u8]>>,
}

/// Why an access stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sig {
    Segv,
    Bus,
}

/// An access that stopped at `addr` after `done` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stop {
    pub addr: u64,
    pub sig: Sig,
    pub done: u64,
}

/// What kind of access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
}

fn zero_page() -> Box<[u8]> {
    vec![0u8; PAGE as usize].into_boxed_slice()
}

impl Space {
    /// Check that the page at `page` allows `kind`: the signal it raises otherwise.
    pub fn check(&self, page: u64, kind: Kind) -> Result<(), Sig> {
        let v = self.find(page).ok_or(Sig::Segv)?;
        let ok = match kind {
            // x86: a writable or executable page is readable (no protection keys).
            Kind::Read => v.flags & VM_ACCESS_FLAGS != 0,
            Kind::Write => v.flags & VM_WRITE != 0,
        };
        if !ok {
            return Err(Sig::Segv);
        }
        let past_end = match v.backing {
            Backing::Shm(o) => v.pgoff_at(page) >= self.objects[o].pages,
            Backing::Anon(_) => false,
        };
        if past_end && self.quirks.sigbus_before_guard {
            return Err(Sig::Bus);
        }
        if self.guards.contains(&page) {
            return Err(Sig::Segv);
        }
        if past_end {
            return Err(Sig::Bus);
        }
        Ok(())
    }

    /// The bytes of the readable page at `page`.
    pub fn page_bytes(&self, page: u64) -> Box<[u8]> {
        let v = self.find(page).expect("mapped");
        let stored = match v.backing {
            Backing::Anon(_) => self.anon_pages.get(&page),
            Backing::Shm(o) => self.objects[o].data.get(&v.pgoff_at(page)),
        };
        stored.cloned().unwrap_or_else(zero_page)
    }

    /// Read `len` bytes at `addr`, page by page as a CPU does.
    pub fn read(&self, addr: u64, len: u64) -> Result<Vec<u8>, Stop> {
        let mut out = Vec::with_capacity(len as usize);
        while (out.len() as u64) < len {
            let at = addr + out.len() as u64;
            let page = at & !(PAGE - 1);
            let n = (PAGE - (at - page)).min(len - out.len() as u64);
            self.check(page, Kind::Read).map_err(|sig| Stop {
                addr: at,
                sig,
                done: out.len() as u64,
            })?;
            let bytes = self.page_bytes(page);
            let off = (at - page) as usize;
            out.extend_from_slice(&bytes[off..off + n as usize]);
        }
        Ok(out)
    }

    /// Store `len` copies of `byte` at `addr`, page by page: the pages before a faulting
    /// one are written.
    pub fn fill(&mut self, addr: u64, len: u64, byte: u8) -> Result<(), Stop> {
        let mut done = 0;
        while done < len {
            let at = addr + done;
            let page = at & !(PAGE - 1);
            let n = (PAGE - (at - page)).min(len - done);
            self.check(page, Kind::Write).map_err(|sig| Stop {
                addr: at,
                sig,
                done,
            })?;
            let v = self.find(page).expect("mapped").clone();
            self.anon_prepare(v.start);
            let slot = match v.backing {
                Backing::Anon(_) => self.anon_pages.entry(page).or_insert_with(zero_page),
                Backing::Shm(o) => self.objects[o]
                    .data
                    .entry(v.pgoff_at(page))
                    .or_insert_with(zero_page),
            };
            let off = (at - page) as usize;
            slot[off..off + n as usize].fill(byte);
            done += n;
        }
        Ok(())
    }

    /// Fault in the pages of `[start, end)` that lie in the VMA at `vstart` like GUP
    /// does for populate: write faults for private writable memory, read faults
    /// otherwise. A fault that fails (guard marker, SIGBUS) is `EFAULT`.
    pub fn fault_in(&mut self, vstart: u64, start: u64, end: u64, kind: Kind) -> Result<(), Errno> {
        let mut page = start;
        while page < end {
            // GUP faults with the access it needs; a read of a write-only or exec-only
            // page is a forced read (FOLL_FORCE), so only markers and SIGBUS stop it.
            if self.guards.contains(&page) {
                return Err(Errno::EFAULT);
            }
            if let Backing::Shm(o) = self.vmas[&vstart].backing
                && self.vmas[&vstart].pgoff_at(page) >= self.objects[o].pages
            {
                return Err(Errno::EFAULT);
            }
            if kind == Kind::Write {
                self.anon_prepare(vstart);
            }
            page += PAGE;
        }
        Ok(())
    }

    /// `__mm_populate(start, end)`: fault in every VMA part of the range (holes are
    /// skipped); lock-on-fault VMAs are left alone and a PROT_NONE VMA is `EFAULT`. With
    /// `ignore_errors` a failing VMA is skipped, else the first error is returned.
    pub fn populate(&mut self, start: u64, end: u64, ignore_errors: bool) -> Result<(), Errno> {
        for v in self.intersecting(start, end) {
            if v.flags & VM_LOCKONFAULT != 0 {
                continue;
            }
            let r = if v.flags & VM_ACCESS_FLAGS == 0 {
                Err(Errno::EFAULT)
            } else {
                let write = v.flags & (VM_WRITE | VM_SHARED) == VM_WRITE;
                let kind = if write { Kind::Write } else { Kind::Read };
                self.fault_in(v.start, start.max(v.start), end.min(v.end), kind)
            };
            if r.is_err() && !ignore_errors {
                return r;
            }
        }
        Ok(())
    }

    /// Zap the private pages of `[start, end)` (MADV_DONTNEED): they read as zero again.
    /// Shared pages stay in their object; guard markers stay.
    pub fn zap(&mut self, start: u64, end: u64) {
        self.anon_pages.retain(|&a, _| a < start || a >= end);
    }

    /// Move the private pages and guard markers of `[from, from + len)` to `to`.
    pub fn move_pages(&mut self, from: u64, to: u64, len: u64) {
        let moved: Vec<(u64, Box<[u8]>)> = self
            .anon_pages
            .range(from..from + len)
            .map(|(&a, b)| (a, b.clone()))
            .collect();
        let guards: Vec<u64> = self.guards.range(from..from + len).copied().collect();
        self.anon_pages.retain(|&a, _| a < from || a >= from + len);
        self.guards.retain(|&a| a < from || a >= from + len);
        for (a, b) in moved {
            self.anon_pages.insert(a - from + to, b);
        }
        for a in guards {
            self.guards.insert(a - from + to);
        }
    }
}
