//! Replay speed: traced calls per second on a long synthetic trace (1M calls of an
//! allocator's mix, `replay::synth`), parse included. `cargo bench -p softmm-cli --bench
//! replay`; the figure is in BENCHMARKS.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use indicatif::ProgressBar;
use softmm::Config;
use softmm_cli::replay::{run::replay_text, synth};

const CALLS: usize = 1_000_000;

fn replay(c: &mut Criterion) {
    let text = synth::trace(CALLS, 42);
    let mut g = c.benchmark_group("replay");
    g.sample_size(10);
    g.throughput(Throughput::Elements(CALLS as u64));
    g.bench_function("synthetic-1M-calls", |b| {
        b.iter(|| {
            let out = replay_text(&text, Config::default(), true, &ProgressBar::hidden())
                .expect("the synthetic trace parses");
            assert_eq!(out.replay.summary().diverged, 0);
            out.replay.summary().calls
        })
    });
    g.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
