//! The host side: the same operations on real memory, through the host kernel.
//!
//! Mappings are made with `libc::mmap` and advised `MADV_NOHUGEPAGE`, so that every first
//! touch is a 4 KiB fault as in softmm (which has no THP yet). Loads and stores go to the
//! real pages through pointers derived from the pointer `mmap` returned (never from a
//! bare integer).
//!
//! Soundness rests on one rule, checked on every access: a [`HostThread`] only touches
//! memory inside a mapping it made itself and has not unmapped, and stores only where it
//! has not removed write permission. Each thread keeps its own list of mappings (a few
//! entries; the lookup costs about a nanosecond, which the `translate` rows include).

use std::{io, ptr::NonNull};

use super::{
    HOST,
    machine::{Machine, OpError, Thread},
};

const PAGE: usize = 4096;

/// The host kernel as a [`Machine`].
#[derive(Debug, Default)]
pub(crate) struct Host;

impl Machine for Host {
    type Thread = HostThread;

    fn thread(&self) -> HostThread {
        HostThread::default()
    }
}

/// One live mapping of a [`HostThread`].
#[derive(Debug)]
struct Mapping {
    base: NonNull<u8>,
    len: usize,
    /// Sub-ranges `(offset, len)` made read-only by [`Thread::protect`].
    read_only: Vec<(usize, usize)>,
}

impl Mapping {
    fn start(&self) -> u64 {
        self.base.as_ptr() as u64
    }
}

/// One thread's mappings of the host process.
#[derive(Debug, Default)]
pub(crate) struct HostThread {
    maps: Vec<Mapping>,
}

// SAFETY: the mappings are process-wide memory owned by this handle alone (no other
// handle knows their addresses); moving the handle to another thread moves that
// ownership with it. NonNull is !Send only as a lint against accidental sharing.
unsafe impl Send for HostThread {}

fn os_err(op: &'static str) -> OpError {
    OpError {
        machine: HOST,
        op,
        detail: io::Error::last_os_error().to_string(),
    }
}

fn not_mapped(op: &'static str, addr: u64) -> OpError {
    OpError {
        machine: HOST,
        op,
        detail: format!("{addr:#x} is not in a mapping of this thread"),
    }
}

impl HostThread {
    /// The mapping containing `addr` and the offset of `addr` in it.
    fn find(&self, addr: u64) -> Option<(usize, usize)> {
        self.maps.iter().enumerate().find_map(|(i, m)| {
            let off = addr.checked_sub(m.start())? as usize;
            (off < m.len).then_some((i, off))
        })
    }

    /// A pointer to `len` bytes at `addr`, all inside one of our mappings and, for
    /// `write`, outside its read-only ranges.
    fn ptr(
        &self,
        op: &'static str,
        addr: u64,
        len: usize,
        write: bool,
    ) -> Result<*mut u8, OpError> {
        let (i, off) = self.find(addr).ok_or_else(|| not_mapped(op, addr))?;
        let m = &self.maps[i];
        let fits = off + len <= m.len;
        let writable = !m
            .read_only
            .iter()
            .any(|&(o, l)| off < o + l && o < off + len);
        if !fits || (write && !writable) {
            return Err(not_mapped(op, addr));
        }
        Ok(m.base.as_ptr().wrapping_add(off))
    }
}

impl Thread for HostThread {
    fn map(&mut self, len: u64) -> Result<u64, OpError> {
        let len = len as usize;
        // SAFETY: a fresh private anonymous mapping at an address the kernel chooses
        // cannot alias any memory Rust knows about; the arguments are valid.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(os_err("mmap"));
        }
        let base = NonNull::new(p.cast::<u8>()).ok_or_else(|| os_err("mmap"))?;
        // SAFETY: advice on the mapping just made; it changes no contents.
        if unsafe { libc::madvise(p, len, libc::MADV_NOHUGEPAGE) } != 0 {
            return Err(os_err("madvise(MADV_NOHUGEPAGE)"));
        }
        self.maps.push(Mapping {
            base,
            len,
            read_only: Vec::new(),
        });
        Ok(base.as_ptr() as u64)
    }

    fn unmap(&mut self, addr: u64, len: u64) -> Result<(), OpError> {
        let i = match self.find(addr) {
            Some((i, 0)) if self.maps[i].len == len as usize => i,
            _ => return Err(not_mapped("munmap", addr)),
        };
        let m = self.maps.swap_remove(i);
        // SAFETY: the whole mapping, made by `map`, is dropped from our list first, so
        // nothing can reach it afterwards.
        if unsafe { libc::munmap(m.base.as_ptr().cast(), m.len) } != 0 {
            return Err(os_err("munmap"));
        }
        Ok(())
    }

    fn protect(&mut self, addr: u64, len: u64, writable: bool) -> Result<(), OpError> {
        let p = self.ptr("mprotect", addr, len as usize, false)?;
        let (i, off) = self
            .find(addr)
            .ok_or_else(|| not_mapped("mprotect", addr))?;
        let prot = libc::PROT_READ | if writable { libc::PROT_WRITE } else { 0 };
        // SAFETY: inside our own mapping (checked by `ptr`); a mapping made read-only is
        // recorded below before any later store is checked against it.
        if unsafe { libc::mprotect(p.cast(), len as usize, prot) } != 0 {
            return Err(os_err("mprotect"));
        }
        let ro = &mut self.maps[i].read_only;
        if writable {
            ro.retain(|&r| r != (off, len as usize));
        } else {
            ro.push((off, len as usize));
        }
        Ok(())
    }

    fn dontneed(&mut self, addr: u64, len: u64) -> Result<(), OpError> {
        let p = self.ptr("madvise", addr, len as usize, false)?;
        // SAFETY: inside our own private anonymous mapping; DONTNEED there only makes the
        // pages read back as zero, which no reference observes (we hold none).
        if unsafe { libc::madvise(p.cast(), len as usize, libc::MADV_DONTNEED) } != 0 {
            return Err(os_err("madvise"));
        }
        Ok(())
    }

    fn touch(&mut self, addr: u64) -> Result<(), OpError> {
        let p = self.ptr("touch", addr, 1, true)?;
        // SAFETY: `p` is inside a live, writable mapping of ours (checked by `ptr`); no
        // reference to that memory exists; volatile keeps the store (and its fault).
        unsafe { p.write_volatile(1) };
        Ok(())
    }

    fn translate(&mut self, addr: u64) -> Result<(), OpError> {
        let p = self.ptr("translate", addr, 1, false)?;
        // SAFETY: `p` is inside a live, readable mapping of ours (checked by `ptr`).
        std::hint::black_box(unsafe { p.read_volatile() });
        Ok(())
    }

    fn zero_frame(&mut self, scratch: u64) -> Result<(), OpError> {
        let p = self.ptr("zero", scratch, PAGE, true)?;
        // SAFETY: `p .. p + 4096` is inside a live, writable mapping of ours (checked by
        // `ptr`) and no reference to it exists.
        unsafe { p.write_bytes(0, PAGE) };
        std::hint::black_box(p);
        Ok(())
    }
}

impl Drop for HostThread {
    fn drop(&mut self) {
        for m in self.maps.drain(..) {
            // SAFETY: a whole mapping of ours, unreachable once drained.
            unsafe { libc::munmap(m.base.as_ptr().cast(), m.len) };
        }
    }
}
