//! Frame allocator microbenchmarks: allocate and free one 4 KiB frame (the lock-free
//! shard stacks), with and without zeroing, and a burst of 512 allocations then frees.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use softmm::{PhysMem, frame::Pfn};

fn frames(c: &mut Criterion) {
    let pm = PhysMem::new(64 << 20).expect("physical memory");
    // Commit the frames once, so no benchmark pays the host's first-touch fault.
    let warm: Vec<Pfn> = (0..4096).map_while(|_| pm.alloc_zeroed(0)).collect();
    warm.into_iter().for_each(|p| pm.put(p));
    let mut g = c.benchmark_group("frame");
    g.bench_function("alloc+put", |b| {
        b.iter(|| pm.put(black_box(pm.alloc(0).expect("frame"))))
    });
    g.bench_function("alloc_zeroed+put", |b| {
        b.iter(|| pm.put(black_box(pm.alloc_zeroed(0).expect("frame"))))
    });
    g.bench_function("alloc-512-then-put", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(512),
            |v| {
                for _ in 0..512 {
                    v.push(pm.alloc(0).expect("frame"));
                }
                for p in v.drain(..) {
                    pm.put(p);
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
