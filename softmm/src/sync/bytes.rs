//! Racy-but-defined access to guest bytes (design decision 9).
//!
//! Frame memory can be reached by several threads at once (two `Cpu`s on one page, a
//! shared mapping, a pin). Plain `&[u8]` over it would be a data race in Rust's model, so
//! every access to a frame that another thread may see goes through these helpers, which
//! use `Relaxed` atomic loads and stores: word-sized where the address is aligned (they
//! compile to plain moves), byte-sized at the edges. `Relaxed` is enough: guest memory
//! has no ordering contract of its own beyond what the guest builds with its own atomics,
//! and page-level publication (a frame zeroed before its PTE is stored) is ordered by the
//! PTE's Release store / Acquire load.
//!
//! These use host atomics (`core::sync::atomic`) even under loom/shuttle: the models
//! check page-table and lock protocols, never guest bytes.

use core::sync::atomic::{AtomicU8 as HostU8, AtomicU64 as HostU64, Ordering::Relaxed};

const WORD: usize = 8;

/// Copy `dst.len()` bytes out of shared frame memory at `src`.
///
/// # Safety
/// 1. `src .. src + dst.len()` lies inside one live frame region and is valid for reads.
/// 2. Every concurrent access to that memory is atomic (goes through this module).
pub unsafe fn read(src: *const u8, dst: &mut [u8]) {
    let mut i = 0;
    let n = dst.len();
    while i < n {
        let p = src.wrapping_add(i);
        if (p as usize).is_multiple_of(WORD) && n - i >= WORD {
            // SAFETY: (1) in bounds and aligned to 8; (2) all accesses are atomic.
            let w = unsafe { HostU64::from_ptr(p as *mut u64) }.load(Relaxed);
            dst[i..i + WORD].copy_from_slice(&w.to_ne_bytes());
            i += WORD;
        } else {
            // SAFETY: (1) in bounds; (2) all accesses are atomic.
            dst[i] = unsafe { HostU8::from_ptr(p as *mut u8) }.load(Relaxed);
            i += 1;
        }
    }
}

/// Copy `src` into shared frame memory at `dst`.
///
/// # Safety
/// 1. `dst .. dst + src.len()` lies inside one live frame region and is valid for writes.
/// 2. Every concurrent access to that memory is atomic (goes through this module).
pub unsafe fn write(dst: *mut u8, src: &[u8]) {
    let mut i = 0;
    let n = src.len();
    while i < n {
        let p = dst.wrapping_add(i);
        if (p as usize).is_multiple_of(WORD) && n - i >= WORD {
            let mut w = [0u8; WORD];
            w.copy_from_slice(&src[i..i + WORD]);
            // SAFETY: (1) in bounds and aligned to 8; (2) all accesses are atomic.
            unsafe { HostU64::from_ptr(p as *mut u64) }.store(u64::from_ne_bytes(w), Relaxed);
            i += WORD;
        } else {
            // SAFETY: (1) in bounds; (2) all accesses are atomic.
            unsafe { HostU8::from_ptr(p) }.store(src[i], Relaxed);
            i += 1;
        }
    }
}

/// Store `len` copies of `byte` into shared frame memory at `dst`.
///
/// # Safety
/// As for [`write`], for `dst .. dst + len`.
pub unsafe fn fill(dst: *mut u8, byte: u8, len: usize) {
    let word = u64::from_ne_bytes([byte; WORD]);
    let mut i = 0;
    while i < len {
        let p = dst.wrapping_add(i);
        if (p as usize).is_multiple_of(WORD) && len - i >= WORD {
            // SAFETY: (1) in bounds and aligned; (2) all accesses are atomic.
            unsafe { HostU64::from_ptr(p as *mut u64) }.store(word, Relaxed);
            i += WORD;
        } else {
            // SAFETY: (1) in bounds; (2) all accesses are atomic.
            unsafe { HostU8::from_ptr(p) }.store(byte, Relaxed);
            i += 1;
        }
    }
}

/// Copy a whole frame from shared memory `src` into a frame `dst` that the caller owns
/// exclusively (the destination of a copy-on-write, not yet published).
///
/// # Safety
/// 1. `src` and `dst` are valid for `len` bytes and 8-byte aligned, and do not overlap.
/// 2. Concurrent accesses to `src` are atomic; nobody else can reach `dst`.
pub unsafe fn copy_to_exclusive(dst: *mut u8, src: *const u8, len: usize) {
    let mut i = 0;
    while i + WORD <= len {
        // SAFETY: (1) aligned, in bounds; (2) src is only accessed atomically.
        let w = unsafe { HostU64::from_ptr(src.wrapping_add(i) as *mut u64) }.load(Relaxed);
        // SAFETY: (1) aligned, in bounds; (2) dst is exclusively ours.
        unsafe { (dst.wrapping_add(i) as *mut u64).write(w) };
        i += WORD;
    }
}

/// Zero memory that the caller owns exclusively (a fresh frame, not yet published).
///
/// # Safety
/// 1. `dst` is valid for writes of `len` bytes.
/// 2. No other thread can reach this memory until it is published by a Release store.
pub unsafe fn zero_exclusive(dst: *mut u8, len: usize) {
    // SAFETY: (1) and (2) from the caller.
    unsafe { core::ptr::write_bytes(dst, 0, len) };
}

/// The naturally aligned guest word of `N` bytes (4 or 8) at `p`, for a guest atomic
/// operation.
///
/// # Safety
/// 1. `p .. p + N` lies inside one live frame region, is valid for reads and writes for
///    `'a`, and `p` is aligned to `N`.
/// 2. Every concurrent access to that memory is atomic (goes through this module).
pub unsafe fn word_u64<'a>(p: *mut u8) -> &'a HostU64 {
    debug_assert!((p as usize).is_multiple_of(8));
    // SAFETY: (1) valid and aligned for 'a; (2) all accesses are atomic.
    unsafe { HostU64::from_ptr(p as *mut u64) }
}

/// As [`word_u64`], for a 4-byte word.
///
/// # Safety
/// As [`word_u64`] with `N` = 4.
pub unsafe fn word_u32<'a>(p: *mut u8) -> &'a core::sync::atomic::AtomicU32 {
    debug_assert!((p as usize).is_multiple_of(4));
    // SAFETY: (1) valid and aligned for 'a; (2) all accesses are atomic.
    unsafe { core::sync::atomic::AtomicU32::from_ptr(p as *mut u32) }
}
