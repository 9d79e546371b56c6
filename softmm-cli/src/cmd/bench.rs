//! `softmm bench [--quick] [--reps N] [--json FILE] [--plot DIR] [--workloads A,B]
//! [--variants A,B] [WORKLOAD...]`: run the named workloads (all when none is named) on softmm in every
//! `Config` variant and on the host kernel, and print a table with the softmm/host
//! ratios.
//!
//! Exit status (the convention of every subcommand): 0 after a complete run, 1 when a
//! benchmarked operation failed, 2 for an unknown workload, bad arguments or an I/O error
//! (an output file that cannot be written). `--json -` writes the JSON to stdout instead
//! of the table.

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use crate::{
    bench::{self, Options, plot::write_plots},
    input::io_message,
};

/// Arguments of `softmm bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Exit status: 0 a complete run; 1 a benchmarked operation failed; 2 bad arguments or an
I/O error (an output that cannot be written), as in every softmm command.")]
pub struct BenchArgs {
    /// Short run with small regions (tests, CI); the numbers are noisy.
    #[arg(long)]
    pub quick: bool,
    /// Timed repetitions of every cell, after one warm-up run [default: 10, quick: 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub reps: Option<u32>,
    /// Write the results as JSON to FILE (`-`: to stdout, instead of the table).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write one SVG chart per workload into DIR.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// Workloads, comma-separated (added to the positional ones).
    #[arg(long = "workloads", value_name = "A,B", value_delimiter = ',')]
    pub workload_list: Vec<String>,
    /// Variants to run, comma-separated: host, PerVma, Global (all when not given).
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pub variants: Vec<String>,
    /// Workloads: fault4k, zero4k, mmap-munmap, mmap-touch-munmap, mprotect-split-merge,
    /// dontneed, zap, translate, access, shootdown, fault-churn, vma-lookup,
    /// mmap-at-scale, exit-many-vmas (all when none is given; commas work too).
    #[arg(value_name = "WORKLOAD", value_delimiter = ',')]
    pub workloads: Vec<String>,
}

/// Runs the command; see the module doc for the exit status.
pub fn main(args: &BenchArgs) -> ExitCode {
    let names: Vec<String> = args
        .workloads
        .iter()
        .chain(&args.workload_list)
        .cloned()
        .collect();
    let workloads = match bench::parse_workloads(&names) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("softmm bench: {e}");
            return ExitCode::from(2);
        }
    };
    let known = bench::variant_names();
    if let Some(bad) = args
        .variants
        .iter()
        .find(|v| !known.iter().any(|k| k.eq_ignore_ascii_case(v)))
    {
        eprintln!(
            "softmm bench: unknown variant {bad:?} (known: {})",
            known.join(", ")
        );
        return ExitCode::from(2);
    }
    let opts = Options {
        workloads,
        reps: args.reps.unwrap_or(if args.quick { 2 } else { 10 }),
        quick: args.quick,
        threads: vec![1, 2],
        variants: args.variants.clone(),
    };
    let report = match bench::run(&opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("softmm bench: {e}");
            return ExitCode::from(1);
        }
    };
    let to_stdout = args.json.as_deref() == Some(Path::new("-"));
    if !to_stdout {
        print!("{}", report.table());
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).expect("a report serialises") + "\n";
        let written = if to_stdout {
            io::stdout().write_all(text.as_bytes())
        } else {
            std::fs::write(path, text)
        };
        if let Err(e) = written {
            eprintln!("softmm bench: {}: {}", path.display(), io_message(&e));
            return ExitCode::from(2);
        }
    }
    if let Some(dir) = &args.plot
        && let Err(e) = write_plots(&report, dir)
    {
        eprintln!("softmm bench: {e}");
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
