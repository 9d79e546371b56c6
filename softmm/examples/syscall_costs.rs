//! The instruction cost of the layout system calls, for callgrind: each loop runs in a
//! function of its own, so `callgrind_annotate --inclusive=yes` gives its instructions,
//! which divided by `N` is the cost per mmap + munmap pair.
//!
//! ```sh
//! cargo build --release -p softmm --example syscall_costs
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/examples/syscall_costs
//! callgrind_annotate --inclusive=yes cg.out | grep loop_
//! ```
//!
//! Arguments (`16k`, `1k`, `64k`) run only those loops: a profile of one path is then
//! `valgrind --tool=callgrind --toggle-collect='syscall_costs::loop_*' ... syscall_costs 16k`.
//!
//! * `loop_mmap_munmap_16k`: the `mmap-munmap` bench row, a 16 KiB anonymous mapping
//!   mapped and unmapped again in an otherwise empty address space.
//! * `loop_mmap_at_scale_1k` / `_64k`: the `mmap-at-scale` rows, a 4 KiB non-fixed
//!   mapping placed among 1,000 and 64,000 VMAs (made as `softmm bench` makes them:
//!   every second page of a reservation `PROT_READ`, so nothing merges), then unmapped.
//!
//! The filling and the first calls (which grow the caches and the RCU queue) run
//! outside the loops.
use std::hint::black_box;

use softmm::{AddressSpace, Config, abi::*};

/// Pairs per loop.
const N: u64 = 1 << 14;
const PAGE: u64 = 4096;
const FLAGS: u64 = MAP_PRIVATE | MAP_ANONYMOUS;

#[inline(never)]
fn loop_mmap_munmap_16k(mm: &AddressSpace) {
    for _ in 0..N {
        let a = mm
            .mmap(0, 4 * PAGE, PROT_READ | PROT_WRITE, FLAGS, -1, 0)
            .unwrap();
        mm.munmap(black_box(a), 4 * PAGE).unwrap();
    }
}

#[inline(never)]
fn loop_mmap_at_scale_1k(mm: &AddressSpace) {
    mmap_at_scale(mm, 1);
}

#[inline(never)]
fn loop_mmap_at_scale_64k(mm: &AddressSpace) {
    mmap_at_scale(mm, 64);
}

/// `tag` only keeps the compiler from folding the two loops into one function.
#[inline(always)]
fn mmap_at_scale(mm: &AddressSpace, tag: u64) {
    black_box(tag);
    for _ in 0..N {
        let a = mm
            .mmap(0, PAGE, PROT_READ | PROT_WRITE, FLAGS, -1, 0)
            .unwrap();
        mm.munmap(black_box(a), PAGE).unwrap();
    }
}

#[inline(never)]
fn loop_empty(a: u64) {
    for _ in 0..N {
        black_box(black_box(a));
    }
}

/// An address space holding `vmas` VMAs with no gap between them (`fill_vmas` of the
/// bench).
fn filled(vmas: u64) -> std::sync::Arc<AddressSpace> {
    let mm = AddressSpace::new(Config::default()).unwrap();
    // One page more when the length is a multiple of 2 MiB (which would be placed
    // 2 MiB-aligned), unmapped again, as the bench does.
    let extra = u64::from((vmas * PAGE).is_multiple_of(2 << 20));
    let r = mm
        .mmap(0, (vmas + extra) * PAGE, PROT_NONE, FLAGS, -1, 0)
        .unwrap();
    if extra > 0 {
        mm.munmap(r, PAGE).unwrap();
    }
    let base = r + extra * PAGE;
    for i in (1..vmas).step_by(2) {
        mm.mprotect(base + i * PAGE, PAGE, PROT_READ).unwrap();
    }
    mm
}

/// A few calls outside the measured loop.
fn warm(mm: &AddressSpace, len: u64) {
    for _ in 0..256 {
        let a = mm
            .mmap(0, len, PROT_READ | PROT_WRITE, FLAGS, -1, 0)
            .unwrap();
        mm.munmap(a, len).unwrap();
    }
}

fn main() {
    // With arguments, only the named loops run (`16k`, `1k`, `64k`): then callgrind's
    // call counts, which it keeps for the whole run, are those of one loop.
    let only: Vec<String> = std::env::args().skip(1).collect();
    let run = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    loop_empty(1);
    if run("16k") {
        let mm = AddressSpace::new(Config::default()).unwrap();
        warm(&mm, 4 * PAGE);
        loop_mmap_munmap_16k(&mm);
    }
    if run("1k") {
        let mm = filled(1000);
        warm(&mm, PAGE);
        loop_mmap_at_scale_1k(&mm);
    }
    if run("64k") {
        let mm = filled(64_000);
        warm(&mm, PAGE);
        loop_mmap_at_scale_64k(&mm);
    }
    println!("{N} pairs per loop");
}
