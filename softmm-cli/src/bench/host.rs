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
//! Reservations ([`Thread::reserve`]) are never loaded from or stored to, so anything
//! may be mapped, protected or unmapped inside them.
//!
//! The one exception is a loan ([`Thread::lend`], `shootdown`'s readers): a thread may
//! lend a page of one of its mappings to another thread, which may then load from it
//! until it drops the [`HostLoan`]. While any loan of a mapping is out, its owner
//! refuses to unmap it or store to it, and dropping the owner leaks it rather than
//! unmapping it; the loan's drop (Release) and the owner's check (Acquire) order the
//! borrower's loads before whatever the owner does next.
//!
//! [`Machine::teardown`] forks: the child maps the VMAs and exits (see `exit.rs`).

use std::{
    io,
    ptr::NonNull,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use super::{
    HOST,
    machine::{Machine, OpError, Teardown, Thread},
};

const PAGE: usize = 4096;

/// `vm.max_map_count`, or Linux's default when it cannot be read.
fn max_map_count() -> u64 {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65530)
}

/// Involuntary context switches of the calling thread so far (`getrusage` with
/// `RUSAGE_THREAD`): how often the scheduler took its CPU away to run something else.
pub(crate) fn involuntary_switches() -> u64 {
    // SAFETY: `rusage` is plain integers, for which all-zero is a valid value.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `r` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut r) } != 0 {
        return 0;
    }
    r.ru_nivcsw as u64
}

/// Time the calling thread has spent runnable but waiting for a CPU (the second field of
/// `/proc/thread-self/schedstat`), if the kernel reports it.
pub(crate) fn runqueue_wait() -> Option<std::time::Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(std::time::Duration::from_nanos(ns))
}

/// How many more VMAs this process may map now: `vm.max_map_count` less the lines of
/// `/proc/self/maps`.
pub(crate) fn vma_headroom() -> u64 {
    let now = std::fs::read_to_string("/proc/self/maps").map_or(0, |s| s.lines().count());
    max_map_count().saturating_sub(now as u64)
}

/// Why the host cannot hold `vmas` more VMAs (plus `slack` for the workload's own
/// mappings), if it cannot.
pub(crate) fn vmas_do_not_fit(vmas: u64, slack: u64) -> Option<String> {
    let room = vma_headroom();
    (vmas + slack > room).then(|| {
        format!(
            "{vmas} VMAs do not fit: vm.max_map_count is {}, room for {room} more",
            max_map_count()
        )
    })
}

/// The host kernel as a [`Machine`].
#[derive(Debug, Default)]
pub(crate) struct Host;

impl Machine for Host {
    type Thread = HostThread;

    fn thread(&self) -> HostThread {
        HostThread::default()
    }

    /// Fork a child that maps `vmas` VMAs and exits; the time from just before its
    /// `_exit` to the return of our `waitpid` (the kernel's `exit_mmap` and the rest of
    /// exit, then our wake-up), less the same for a child that maps none.
    fn teardown(&self, vmas: u64) -> Result<Teardown, OpError> {
        let base = super::exit::exit_to_wait(0)?;
        let full = super::exit::exit_to_wait(vmas)?;
        Ok(Teardown {
            time: full.saturating_sub(base),
            rcu_callbacks: None,
        })
    }
}

/// One live mapping of a [`HostThread`].
#[derive(Debug)]
struct Mapping {
    base: NonNull<u8>,
    len: usize,
    /// Sub-ranges `(offset, len)` made read-only by [`Thread::protect`].
    read_only: Vec<(usize, usize)>,
    /// Made by [`Thread::reserve`]: never loaded from or stored to.
    reserved: bool,
    /// Loans of pages of this mapping not yet dropped (made on the first loan).
    loans: Option<Arc<AtomicUsize>>,
}

impl Mapping {
    fn start(&self) -> u64 {
        self.base.as_ptr() as u64
    }

    /// Whether another thread may still load from this mapping (see the module doc).
    fn lent(&self) -> bool {
        // Acquire: pairs with the Release of `HostLoan::drop`: the borrower's loads
        // happen before what the owner does once it sees the count at zero.
        self.loans
            .as_ref()
            .is_some_and(|l| l.load(Ordering::Acquire) > 0)
    }
}

/// A page of a [`HostThread`]'s mapping lent to another thread ([`Thread::lend`]).
#[derive(Debug)]
pub(crate) struct HostLoan {
    page: NonNull<u8>,
    loans: Arc<AtomicUsize>,
}

// SAFETY: the loan only lets its holder load from a page that stays mapped while the
// loan lives (module doc); no reference to that memory exists.
unsafe impl Send for HostLoan {}

impl Drop for HostLoan {
    fn drop(&mut self) {
        // Release: the loads made through this loan happen before the owner's next
        // store or unmap (it checks with Acquire, `Mapping::lent`).
        self.loans.fetch_sub(1, Ordering::Release);
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
    /// `write`, outside its read-only ranges and in a mapping with no loan out.
    fn ptr(
        &self,
        op: &'static str,
        addr: u64,
        len: usize,
        write: bool,
    ) -> Result<*mut u8, OpError> {
        let (i, off) = self.find(addr).ok_or_else(|| not_mapped(op, addr))?;
        let m = &self.maps[i];
        let fits = off + len <= m.len && !m.reserved && !(write && m.lent());
        let writable = !m
            .read_only
            .iter()
            .any(|&(o, l)| off < o + l && o < off + len);
        if !fits || (write && !writable) {
            return Err(not_mapped(op, addr));
        }
        Ok(m.base.as_ptr().wrapping_add(off))
    }

    /// A pointer to `len` bytes at `addr`, all inside one of our reservations, unless
    /// that range is a whole mapping (which `unmap` drops from the list).
    fn in_reservation(&self, op: &'static str, addr: u64, len: usize) -> Result<*mut u8, OpError> {
        match self.find(addr) {
            Some((i, off)) if self.maps[i].reserved && off + len <= self.maps[i].len => {
                Ok(self.maps[i].base.as_ptr().wrapping_add(off))
            }
            _ => Err(not_mapped(op, addr)),
        }
    }

    /// Whether `[addr, addr + len)` is exactly one of our mappings.
    fn is_whole(&self, addr: u64, len: u64) -> Option<usize> {
        match self.find(addr) {
            Some((i, 0)) if self.maps[i].len == len as usize => Some(i),
            _ => None,
        }
    }

    fn mmap(&mut self, len: usize, prot: i32, flags: i32) -> Result<NonNull<u8>, OpError> {
        // SAFETY: a fresh private anonymous mapping at an address the kernel chooses
        // (no MAP_FIXED) cannot alias any memory Rust knows about; the arguments are
        // valid.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, -1, 0) };
        if p == libc::MAP_FAILED {
            return Err(os_err("mmap"));
        }
        NonNull::new(p.cast::<u8>()).ok_or_else(|| os_err("mmap"))
    }
}

impl Thread for HostThread {
    type Loan = HostLoan;

    fn map(&mut self, len: u64) -> Result<u64, OpError> {
        let len = len as usize;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        let base = self.mmap(len, libc::PROT_READ | libc::PROT_WRITE, flags)?;
        // A single page cannot hold a larger folio: the advice (a syscall) is skipped.
        if len > PAGE {
            // SAFETY: advice on the mapping just made; it changes no contents.
            let r = unsafe { libc::madvise(base.as_ptr().cast(), len, libc::MADV_NOHUGEPAGE) };
            if r != 0 {
                return Err(os_err("madvise(MADV_NOHUGEPAGE)"));
            }
        }
        self.maps.push(Mapping {
            base,
            len,
            read_only: Vec::new(),
            reserved: false,
            loans: None,
        });
        Ok(base.as_ptr() as u64)
    }

    fn reserve(&mut self, len: u64) -> Result<u64, OpError> {
        let len = len as usize;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        let base = self.mmap(len, libc::PROT_NONE, flags)?;
        self.maps.push(Mapping {
            base,
            len,
            read_only: Vec::new(),
            reserved: true,
            loans: None,
        });
        Ok(base.as_ptr() as u64)
    }

    fn map_fixed(&mut self, addr: u64, len: u64) -> Result<(), OpError> {
        let p = self.in_reservation("mmap(MAP_FIXED)", addr, len as usize)?;
        let flags = libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: MAP_FIXED replaces only pages of one of our reservations (checked by
        // `in_reservation`), which no load, store or reference ever reaches.
        let q = unsafe { libc::mmap(p.cast(), len as usize, prot, flags, -1, 0) };
        if q == libc::MAP_FAILED {
            return Err(os_err("mmap(MAP_FIXED)"));
        }
        Ok(())
    }

    fn unmap(&mut self, addr: u64, len: u64) -> Result<(), OpError> {
        let Some(i) = self.is_whole(addr, len) else {
            let p = self.in_reservation("munmap", addr, len as usize)?;
            // SAFETY: pages inside one of our reservations (checked above), which nothing
            // ever loads from or stores to; the reservation's record stays for its end.
            if unsafe { libc::munmap(p.cast(), len as usize) } != 0 {
                return Err(os_err("munmap"));
            }
            return Ok(());
        };
        if self.maps[i].lent() {
            return Err(OpError {
                machine: HOST,
                op: "munmap",
                detail: format!("{addr:#x}: a page of the mapping is still lent"),
            });
        }
        let m = self.maps.swap_remove(i);
        // SAFETY: the whole mapping, made by `map` or `reserve`, is dropped from our list
        // first, so nothing of ours can reach it afterwards, and no loan of it is out
        // (checked above; a new one needs the mapping in our list).
        if unsafe { libc::munmap(m.base.as_ptr().cast(), m.len) } != 0 {
            return Err(os_err("munmap"));
        }
        Ok(())
    }

    fn protect(&mut self, addr: u64, len: u64, writable: bool) -> Result<(), OpError> {
        let prot = libc::PROT_READ | if writable { libc::PROT_WRITE } else { 0 };
        if let Ok(p) = self.in_reservation("mprotect", addr, len as usize) {
            // SAFETY: inside one of our reservations, which nothing loads from or stores
            // to whatever its protection (so nothing needs recording).
            if unsafe { libc::mprotect(p.cast(), len as usize, prot) } != 0 {
                return Err(os_err("mprotect"));
            }
            return Ok(());
        }
        let p = self.ptr("mprotect", addr, len as usize, false)?;
        let (i, off) = self
            .find(addr)
            .ok_or_else(|| not_mapped("mprotect", addr))?;
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

    fn load_u64(&mut self, addr: u64) -> Result<(), OpError> {
        let p = self.ptr("load", addr, 8, false)?;
        // SAFETY: `p` is inside a live, readable mapping of ours (checked by `ptr`), and
        // 8-byte aligned (the workload's addresses are).
        std::hint::black_box(unsafe { (p as *const u64).read_volatile() });
        Ok(())
    }

    fn store_u64(&mut self, addr: u64, v: u64) -> Result<(), OpError> {
        let p = self.ptr("store", addr, 8, true)?;
        // SAFETY: `p` is inside a live, writable mapping of ours (checked by `ptr`), and
        // 8-byte aligned; no reference to that memory exists.
        unsafe { (p as *mut u64).write_volatile(v) };
        Ok(())
    }

    fn lookup(&mut self, addr: u64) -> Result<(), OpError> {
        let (i, off) = self.find(addr).ok_or_else(|| not_mapped("msync", addr))?;
        let page = self.maps[i].base.as_ptr().wrapping_add(off & !(PAGE - 1));
        // SAFETY: a page of one of our own private anonymous mappings; MS_ASYNC on it
        // changes nothing (no file to write back) and reads or writes no memory.
        if unsafe { libc::msync(page.cast(), PAGE, libc::MS_ASYNC) } != 0 {
            return Err(os_err("msync"));
        }
        Ok(())
    }

    fn lend(&mut self, addr: u64) -> Result<HostLoan, OpError> {
        let page = addr & !(PAGE as u64 - 1);
        let p = self.ptr("lend", page, PAGE, false)?;
        let (i, _) = self.find(page).ok_or_else(|| not_mapped("lend", page))?;
        let loans = Arc::clone(self.maps[i].loans.get_or_insert_with(Arc::default));
        // Relaxed: this thread reads the count next in program order; the borrower
        // gets the loan through a lock, which orders this before its decrement.
        loans.fetch_add(1, Ordering::Relaxed);
        let page = NonNull::new(p).ok_or_else(|| not_mapped("lend", addr))?;
        Ok(HostLoan { page, loans })
    }

    fn load_lent(&mut self, loan: &HostLoan) -> Result<(), OpError> {
        // SAFETY: the page stays mapped and readable while the loan lives (its owner
        // neither unmaps nor protects it away, and leaks it if dropped first) and
        // nobody stores to it meanwhile (the owner refuses to); a page start is 8-byte
        // aligned.
        std::hint::black_box(unsafe { loan.page.as_ptr().cast::<u64>().read_volatile() });
        Ok(())
    }

    fn populate(&mut self, addr: u64, len: u64) -> Result<(), OpError> {
        (addr..addr + len)
            .step_by(PAGE)
            .try_for_each(|p| self.touch(p))
    }

    fn zero_frame(&mut self, scratch: u64, _keep: bool) -> Result<(), OpError> {
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
        // A mapping with a loan still out is leaked: its borrower may still load.
        for m in self.maps.drain(..).filter(|m| !m.lent()) {
            // SAFETY: a whole mapping of ours, unreachable once drained, and not lent.
            unsafe { libc::munmap(m.base.as_ptr().cast(), m.len) };
        }
    }
}
