//! `softmm`: the command-line front end of the softmm memory manager.
//!
//! One subcommand per job; each lives in `softmm_cli::cmd`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use softmm_cli::cmd;

/// mimalloc frees memory another thread allocated without taking that thread's arena
/// lock: RCU frees can run in another thread than the allocation (a thread's exit hands
/// its pending callbacks to whichever thread collects next), and glibc's arena locks then
/// stalled faults for 100 µs and more (BENCHMARKS.md, fault-churn). Not in ThreadSanitizer
/// builds (`scripts/tsan.sh` sets `--cfg softmm_tsan`): TSan sees a free and the reuse of
/// the memory only through the malloc it intercepts, so memory that uninstrumented
/// mimalloc hands from one thread to another looks like a race.
#[cfg(not(softmm_tsan))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// softmm: a software virtual-memory manager with Linux x86-64 semantics.
#[derive(Debug, Parser)]
#[command(name = "softmm", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a script of memory-management calls and check its expectations.
    Run(cmd::run::RunArgs),
    /// Replay the memory-management calls of a real program (an strace -f -y log).
    Replay(cmd::replay::ReplayArgs),
    /// Random concurrent mm calls and accesses, checked by a content oracle.
    Stress(cmd::stress::StressArgs),
    /// Benchmark workloads on softmm and on the host kernel, side by side.
    Bench(cmd::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Run(args) => cmd::run::main(args),
        Command::Replay(args) => cmd::replay::main(args),
        Command::Stress(args) => cmd::stress::main(args),
        Command::Bench(args) => cmd::bench::main(args),
    }
}
