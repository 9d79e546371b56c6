//! VMA-tree microbenchmarks over trees of 1k, 64k and 1M VMAs (16 KiB VMAs every
//! 64 KiB), through the public interface only, so that the same file measures any
//! tree implementation:
//!
//! * `find_random`: `VmaTree::find` of a random VMA of the whole tree (cache-cold at
//!   1M: the leaves alone are tens of MiB);
//! * `find_hot`: `find` cycling over 64 VMAs scattered over the tree (the nodes on
//!   their paths stay in L1/L2, as for a thread faulting in a few mappings);
//! * `find_one`: `find` of one address again and again (its path stays in L1): the
//!   cost of the search itself, per level;
//! * `edit_mmap`: an mmap + munmap pair as `AddressSpace` does them: edit, top-down gap
//!   search below the highest VMA, insert, commit; edit, find, remove, commit;
//! * `edit_random`: insert into a random hole and commit, then remove and commit.
//!
//! `cargo bench -p softmm --bench vma_tree`

use std::{hint::black_box, sync::Arc, time::Duration};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use softmm::{
    addr::PageAddr,
    testing::{Backing, Vma, VmaTree, sync::rcu},
    vma::VM_READ,
};

const BASE: u64 = 0x1000_0000;
const STRIDE: u64 = 0x1_0000;
const SIZE: u64 = 0x4000;
const SIZES: [u64; 3] = [1 << 10, 1 << 16, 1 << 20];

fn vma(start: u64, end: u64) -> Arc<Vma> {
    let (lo, hi) = (PageAddr::down(start), PageAddr::down(end));
    Arc::new(Vma::new(lo, hi, VM_READ, lo.vpn(), Backing::Anon))
}

/// A tree of `n` VMAs `[BASE + i * STRIDE, + SIZE)`.
fn tree(n: u64) -> VmaTree {
    let t = VmaTree::new();
    let mut e = t.edit();
    for i in 0..n {
        let s = BASE + i * STRIDE;
        e.insert(vma(s, s + SIZE));
    }
    e.commit();
    t
}

/// A cheap generator of indexes in `0..n` (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn label(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{}M", n >> 20),
        n => format!("{}k", n >> 10),
    }
}

fn lookups(c: &mut Criterion) {
    let mut g = c.benchmark_group("vma_tree");
    g.measurement_time(Duration::from_secs(3));
    for n in SIZES {
        let t = tree(n);
        let guard = rcu::read_lock();
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        g.bench_with_input(BenchmarkId::new("find_random", label(n)), &n, |b, &n| {
            b.iter(|| {
                let i = rng.below(n);
                black_box(t.find(BASE + i * STRIDE + 8, &guard))
            })
        });
        let one = BASE + rng.below(n) * STRIDE + 8;
        g.bench_with_input(BenchmarkId::new("find_one", label(n)), &n, |b, _| {
            b.iter(|| black_box(t.find(black_box(one), &guard)))
        });
        let hot: Vec<u64> = (0..64).map(|_| BASE + rng.below(n) * STRIDE + 8).collect();
        let mut k = 0;
        g.bench_with_input(BenchmarkId::new("find_hot", label(n)), &n, |b, _| {
            b.iter(|| {
                k = (k + 1) & 63;
                black_box(t.find(hot[k], &guard))
            })
        });
    }
    g.finish();
}

fn edits(c: &mut Criterion) {
    let mut g = c.benchmark_group("vma_tree");
    g.measurement_time(Duration::from_secs(3));
    for n in SIZES {
        let t = tree(n);
        let top = BASE + (n - 1) * STRIDE;
        g.bench_with_input(BenchmarkId::new("edit_mmap", label(n)), &n, |b, _| {
            b.iter(|| {
                let mut e = t.edit();
                let a = e
                    .find_gap_top_down(0x2000, BASE, top, |v| v.start.get())
                    .expect("a gap");
                e.insert(vma(a, a + 0x2000));
                e.commit();
                let mut e = t.edit();
                let v = e.find(a).expect("just mapped");
                e.remove(&v);
                e.commit();
            })
        });
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        g.bench_with_input(BenchmarkId::new("edit_random", label(n)), &n, |b, &n| {
            b.iter(|| {
                let s = BASE + rng.below(n) * STRIDE + SIZE;
                let v = vma(s, s + 0x2000);
                let mut e = t.edit();
                e.insert(Arc::clone(&v));
                e.commit();
                let mut e = t.edit();
                e.remove(&v);
                e.commit();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, lookups, edits);
criterion_main!(benches);
