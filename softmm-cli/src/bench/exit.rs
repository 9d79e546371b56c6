//! The host side of `exit-many-vmas`: fork a child that maps VMAs and exits, and time
//! the kernel's teardown from the parent.
//!
//! The child of a multi-threaded process may only call async-signal-safe functions until
//! it exits: it makes raw `mmap`/`mprotect`/`clock_gettime` calls (the same VMAs as
//! [`fill_vmas`](super::scale::fill_vmas) makes), allocates nothing, takes no lock and
//! leaves with `_exit`. Just before, it stores the time into a page it shares with the
//! parent (`MAP_SHARED`, made before the fork); the parent reads the clock when
//! `waitpid` returns. The interval holds the child's whole exit (`exit_mmap` among it)
//! and the parent's wake-up.

use std::{io, time::Duration};

use super::{HOST, machine::OpError, scale::reserve_pages};

const PAGE: usize = 4096;

fn os_err(op: &'static str) -> OpError {
    OpError {
        machine: HOST,
        op,
        detail: io::Error::last_os_error().to_string(),
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds (async-signal-safe).
fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// In the child: map `vmas` VMAs as `fill_vmas` does; false on failure.
fn fill_raw(vmas: u64) -> bool {
    if vmas == 0 {
        return true;
    }
    let (pages, skip) = reserve_pages(vmas);
    let (len, skip) = (pages as usize * PAGE, skip as usize * PAGE);
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    // SAFETY: a fresh mapping at an address the kernel chooses; nothing loads from or
    // stores to it.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_NONE, flags, -1, 0) };
    if p == libc::MAP_FAILED {
        return false;
    }
    let base = p.cast::<u8>().wrapping_add(skip);
    // SAFETY: the lowest pages of the reservation just made, never accessed.
    if skip > 0 && unsafe { libc::munmap(p, skip) } != 0 {
        return false;
    }
    let mut i = 1;
    while i < vmas as usize {
        let page = base.wrapping_add(i * PAGE).cast();
        // SAFETY: a page inside the reservation just made, never accessed.
        if unsafe { libc::mprotect(page, PAGE, libc::PROT_READ) } != 0 {
            return false;
        }
        i += 2;
    }
    true
}

/// Fork a child that maps `vmas` VMAs and exits; the time from just before its `_exit`
/// to the return of `waitpid` here.
pub(crate) fn exit_to_wait(vmas: u64) -> Result<Duration, OpError> {
    let flags = libc::MAP_SHARED | libc::MAP_ANONYMOUS;
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    // SAFETY: a fresh shared anonymous page; only the raw pointer below reaches it.
    let shared = unsafe { libc::mmap(std::ptr::null_mut(), PAGE, prot, flags, -1, 0) };
    if shared == libc::MAP_FAILED {
        return Err(os_err("mmap(MAP_SHARED)"));
    }
    let stamp = shared.cast::<u64>();
    // SAFETY: `stamp` is the start of the page just mapped, aligned and writable.
    unsafe { stamp.write_volatile(0) };
    // SAFETY: the child runs only `fill_raw`, `now_ns` and `_exit`: raw syscalls, no
    // allocation, no lock, nothing that another thread of ours could hold at the fork.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let ok = fill_raw(vmas);
        let t = now_ns();
        // SAFETY: (child) the shared page is mapped here too, aligned and writable; the
        // parent reads it only after `waitpid`.
        unsafe {
            stamp.write_volatile(t);
            libc::_exit(if ok { 0 } else { 1 })
        }
    }
    let result = if pid < 0 {
        Err(os_err("fork"))
    } else {
        wait(pid, vmas, stamp)
    };
    // SAFETY: the page mapped above; the child is gone (or was never made).
    unsafe { libc::munmap(shared, PAGE) };
    result
}

/// Wait for `pid` and return the time since the stamp it left.
fn wait(pid: libc::pid_t, vmas: u64, stamp: *const u64) -> Result<Duration, OpError> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid int to write; `pid` is our child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return Err(os_err("waitpid"));
        }
    }
    let end = now_ns();
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(OpError {
            machine: HOST,
            op: "fork",
            detail: format!("the child could not map {vmas} VMAs (status {status:#x})"),
        });
    }
    // SAFETY: the shared page is still mapped here; the child wrote it before exiting,
    // and its exit happened before `waitpid` returned.
    let start = unsafe { stamp.read_volatile() };
    Ok(Duration::from_nanos(end.saturating_sub(start)))
}
