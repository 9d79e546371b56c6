//! Page-table microbenchmarks: the lockless walk (`PageTable::lookup`) over a populated
//! table, on one hot address and over 16384 pages, and taking a leaf's PTL
//! (`pte_lock`, the locked walk every fault does).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use softmm::{
    PhysMem,
    addr::PageAddr,
    testing::{AssumeLayoutHeld, PageTable, Pte, PteFlags, sync::rcu},
};

const BASE: u64 = 0x7f00_0000_0000;
const PAGES: u64 = 16384;

/// A table mapping `PAGES` pages from `BASE` to the zero frame.
fn populated() -> (std::sync::Arc<PhysMem>, PageTable) {
    let pm = PhysMem::new(64 << 20).expect("physical memory");
    let pt = PageTable::new(&pm).expect("root table");
    // SAFETY: one thread, no table is ever unlinked.
    let layout = unsafe { AssumeLayoutHeld::new() };
    for i in 0..PAGES {
        let l = pt
            .locked(&layout)
            .pte_lock(PageAddr::down(BASE + i * 4096), true)
            .expect("tables")
            .expect("no huge leaf");
        l.set(Pte::leaf(
            pm.zero_pfn(),
            PteFlags::P | PteFlags::U | PteFlags::SPECIAL,
        ));
    }
    (pm, pt)
}

fn walk(c: &mut Criterion) {
    let (_pm, pt) = populated();
    let mut g = c.benchmark_group("pgtable");
    g.bench_function("lookup/hot", |b| {
        let guard = rcu::read_lock();
        b.iter(|| black_box(pt.lockless(&guard).lookup(black_box(BASE + 4096))))
    });
    g.bench_function("lookup/16k-pages", |b| {
        let guard = rcu::read_lock();
        let mut i = 0u64;
        b.iter(|| {
            // A stride co-prime with PAGES visits every page in a scattered order.
            i = (i + 4099) % PAGES;
            black_box(pt.lockless(&guard).lookup(BASE + i * 4096))
        })
    });
    g.bench_function("lookup+rcu_pin", |b| {
        b.iter(|| {
            let guard = rcu::read_lock();
            black_box(pt.lockless(&guard).lookup(black_box(BASE + 4096)))
        })
    });
    g.bench_function("pte_lock", |b| {
        // SAFETY: as in `populated`.
        let layout = unsafe { AssumeLayoutHeld::new() };
        b.iter(|| {
            let l = pt
                .locked(&layout)
                .pte_lock(black_box(PageAddr::down(BASE + 4096)), false)
                .expect("tables");
            black_box(l.map(|l| l.get()))
        })
    });
    g.finish();
}

criterion_group!(benches, walk);
criterion_main!(benches);
