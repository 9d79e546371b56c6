//! `Cpu::translate` microbenchmarks: the hit path (a present entry: RCU pin, walk,
//! speculative reference, re-walk, release) on one page and over 16384 faulted pages,
//! and a one-byte `Cpu::read`, which adds the copy.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use softmm::{
    Access, AddressSpace, Config,
    abi::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE},
};

const PAGES: u64 = 16384;

fn translate(c: &mut Criterion) {
    let mm = AddressSpace::new(Config {
        phys_mem_bytes: 128 << 20,
        ..Config::default()
    })
    .expect("address space");
    let len = PAGES * 4096;
    let a = mm
        .mmap(
            0,
            len,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            -1,
            0,
        )
        .expect("mmap");
    let cpu = mm.cpu();
    for i in 0..PAGES {
        cpu.write(a + i * 4096, &[1]).expect("fault in");
    }
    let mut g = c.benchmark_group("translate");
    g.bench_function("hit/read", |b| {
        b.iter(|| black_box(cpu.translate(black_box(a), Access::Read)))
    });
    g.bench_function("hit/write", |b| {
        b.iter(|| black_box(cpu.translate(black_box(a), Access::Write)))
    });
    g.bench_function("16k-pages/read", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i = (i + 4099) % PAGES;
            black_box(cpu.translate(a + i * 4096, Access::Read))
        })
    });
    g.bench_function("read-1-byte", |b| {
        let mut buf = [0u8; 1];
        b.iter(|| {
            cpu.read(black_box(a), &mut buf).expect("read");
            black_box(buf)
        })
    });
    g.finish();
}

criterion_group!(benches, translate);
criterion_main!(benches);
