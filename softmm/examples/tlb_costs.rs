//! The instruction cost of the TLB paths, for callgrind: each loop runs in a function
//! of its own, so `callgrind_annotate --inclusive=yes` gives its instructions, which
//! divided by `N` is the cost per call.
//!
//! ```sh
//! cargo build --release --example tlb_costs
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/examples/tlb_costs
//! callgrind_annotate --inclusive=yes cg.out | grep loop_
//! ```
use std::hint::black_box;

use softmm::{Access, AddressSpace, Config, Cpu, abi::*};

/// Calls per loop.
const N: u64 = 1 << 20;
/// Pages the walk loop cycles through: far more than the TLB holds, so every call
/// misses and walks four levels.
const PAGES: u64 = 4096;

#[inline(never)]
fn loop_translate_hit(cpu: &Cpu, a: u64) {
    for _ in 0..N {
        black_box(cpu.translate(black_box(a), Access::Read).unwrap());
    }
}

#[inline(never)]
fn loop_translate_walk(cpu: &Cpu, a: u64) {
    for i in 0..N {
        let va = a + (i % PAGES) * 4096;
        black_box(cpu.translate(black_box(va), Access::Read).unwrap());
    }
}

#[inline(never)]
fn loop_read_u64_hit(cpu: &Cpu, a: u64) {
    for _ in 0..N {
        black_box(cpu.read_u64_le(black_box(a + 8)).unwrap());
    }
}

#[inline(never)]
fn loop_write_u64_hit(cpu: &Cpu, a: u64) {
    for i in 0..N {
        cpu.write_u64_le(black_box(a + 16), i).unwrap();
    }
}

#[inline(never)]
fn loop_empty(a: u64) {
    for _ in 0..N {
        black_box(black_box(a));
    }
}

fn main() {
    let mm = AddressSpace::new(Config::default()).unwrap();
    let cpu = mm.cpu();
    let flags = MAP_PRIVATE | MAP_ANONYMOUS;
    let a = mm
        .mmap(0, PAGES * 4096, PROT_READ | PROT_WRITE, flags, -1, 0)
        .unwrap();
    cpu.fill(a, 1, PAGES * 4096).unwrap();
    loop_empty(a);
    loop_translate_hit(&cpu, a);
    loop_translate_walk(&cpu, a);
    loop_read_u64_hit(&cpu, a);
    loop_write_u64_hit(&cpu, a);
    println!("{N} calls per loop");
}
