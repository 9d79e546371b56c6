//! Frame allocator microbenchmarks: allocate and free one 4 KiB frame (the lock-free
//! shard stacks), with and without zeroing, and a burst of 512 allocations then frees.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use softmm::{PhysMem, testing};

fn frames(c: &mut Criterion) {
    let pm = PhysMem::new(64 << 20).expect("physical memory");
    // Commit the frames once, so no benchmark pays the host's first-touch fault.
    let warm: Vec<_> = (0..4096)
        .map_while(|_| testing::alloc_zeroed(&pm))
        .collect();
    drop(warm);
    let mut g = c.benchmark_group("frame");
    g.bench_function("alloc+put", |b| {
        b.iter(|| drop(black_box(testing::alloc(&pm).expect("frame"))))
    });
    g.bench_function("alloc_zeroed+put", |b| {
        b.iter(|| drop(black_box(testing::alloc_zeroed(&pm).expect("frame"))))
    });
    g.bench_function("alloc-512-then-put", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(512),
            |v| {
                for _ in 0..512 {
                    v.push(testing::alloc(&pm).expect("frame"));
                }
                v.clear();
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
