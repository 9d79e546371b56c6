//! `softmm bench`: the same memory-management workloads run on softmm and on the host
//! kernel, side by side, in one process.
//!
//! Design:
//! * A [`Workload`] is written once, generically, against `Machine`/`Thread`
//!   (`machine.rs`): map, unmap, protect, DONTNEED, touch a byte, translate, zero a
//!   frame. softmm implements them with an [`AddressSpace`](softmm::AddressSpace) and
//!   one [`Cpu`](softmm::Cpu) per thread; the host with real `mmap`/`munmap`/`mprotect`/
//!   `madvise` through libc and real loads and stores (`host.rs`, the only unsafe code of
//!   the CLI). Both run the same monomorphised loop, so the harness costs both the same.
//! * A *cell* is one (workload, variant, threads) triple; a variant is `host` or a softmm
//!   [`Config`](softmm::Config) variant ([`variants`] enumerates them from one place).
//!   Each cell keeps its machine (softmm's frames stay committed) for the whole workload.
//! * Runs are interleaved: after one warm-up run per cell, every repetition runs every
//!   cell of the workload once, starting from a rotating cell, so drift (frequency,
//!   neighbours, page cache) spreads over all variants rather than biasing one.
//! * In a run, every thread sets up its own disjoint region untimed, waits on a barrier,
//!   then times its operations in batches ([`stats::Recorder`]); teardown is untimed.
//!   The per-batch mean is one sample for p50/p99.
//! * Some workloads are organised otherwise (`workload::Kind`): `fault-churn` times one
//!   faulting thread while a second churns VMAs, keeps busy on memory of its own (the
//!   control) or idles (`churn.rs`); `vma-lookup` (random pages, or a hot set of 64),
//!   `mmap-at-scale` and `exit-many-vmas` run one thread among 1k to 1M VMAs, a cell per
//!   VMA count (`scale.rs`; the host's exit is a forked child, `exit.rs`). Host cells
//!   whose VMAs do not fit under `vm.max_map_count` are reported as skipped.
//!   `shootdown` times one thread's munmaps of pages that 0, 1, 2 or 4 other threads
//!   have just read, while those keep reading (`shootdown.rs`): a cell per reader count.
//! * softmm is driven through its public API only (`AddressSpace`, `Cpu`,
//!   `sync::rcu`), so a new VMA tree or lock scheme needs no change here.

mod churn;
#[expect(unsafe_code, reason = "fork, and the timing of a child's exit")]
mod exit;
#[expect(unsafe_code, reason = "real mmap, loads and stores on host memory")]
mod host;
mod machine;
pub mod plot;
pub mod report;
mod run;
mod scale;
mod shootdown;
mod soft;
pub mod stats;
mod workload;

pub use report::{Machine as MachineInfo, Report, ResultRow, Skipped, TlbFlushes};
pub use run::{Options, run};
pub use workload::{Workload, parse_workloads};

/// The softmm `Config` variants every workload is run in, with their names.
///
/// This is the single list: a new `FaultLocking` (or other policy) variant is added here,
/// and the exhaustive `match` in [`variant_name`] makes the compiler point at it.
pub fn variants() -> Vec<softmm::config::FaultLocking> {
    vec![
        softmm::config::FaultLocking::PerVma,
        softmm::config::FaultLocking::Global,
    ]
}

/// The name a softmm variant has in tables, JSON and plots.
pub fn variant_name(v: softmm::config::FaultLocking) -> &'static str {
    match v {
        softmm::config::FaultLocking::Global => "Global",
        softmm::config::FaultLocking::PerVma => "PerVma",
    }
}

/// The variant name of the host kernel.
pub const HOST: &str = "host";

/// Every variant name `--variants` accepts: the host, then the softmm variants.
pub fn variant_names() -> Vec<&'static str> {
    std::iter::once(HOST)
        .chain(variants().into_iter().map(variant_name))
        .collect()
}
