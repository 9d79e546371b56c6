//! `softmm stress`: random concurrent mm calls and accesses checked by an oracle.
//!
//! Exit status: 0 when no mismatch and no leak, 1 otherwise, 2 for bad arguments (a
//! configuration file that cannot be read or parsed, a `Config` field the oracle does
//! not model, a machine too small for the run) or an I/O error.
//! With `--json` the summary is one JSON object on stdout; otherwise text. A failing run
//! prints the command that reproduces it (on stderr too, with `--json`).

use std::{
    io::{self, IsTerminal, Write},
    path::PathBuf,
    process::ExitCode,
};

use clap::ValueEnum;
use softmm::Config;

use crate::{
    config::{Format, load_config},
    stress::{self, Breakage, Limit, Settings},
};

/// Arguments of `softmm stress`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
A --config file (at most 1 MiB) may not change mmap_base, mmap_min_addr or brk_start, nor
set a max_map_count the run could reach: the oracle does not model them.

Exit status: 0 no mismatch and no leak; 1 a mismatch or a leak; 2 bad arguments, a
configuration the oracle does not model, or an I/O error (as in every softmm command).")]
pub struct StressArgs {
    /// Worker threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: u32,
    /// Address spaces; threads are spread over them round robin.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub spaces: u32,
    /// Run for this many seconds (10 when neither --seconds nor --ops is given).
    #[arg(long, conflicts_with = "ops")]
    pub seconds: Option<f64>,
    /// Operations per thread.
    #[arg(long)]
    pub ops: Option<u64>,
    /// Seed of the per-thread RNGs (decimal or 0x-hex); random when not given.
    #[arg(long, value_parser = parse_seed)]
    pub seed: Option<u64>,
    /// A softmm Config, as JSON or (for a .toml file) TOML; unset fields keep defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Physical memory in MiB (overrides the configuration's phys_mem_bytes).
    #[arg(long, value_name = "MIB")]
    pub phys_mb: Option<u64>,
    /// Pages in each thread's address window.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(16..=65536))]
    pub window_pages: u32,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Test hook: flip one written byte behind the oracle's back (the run must fail).
    #[arg(long)]
    pub inject_bug: bool,
    /// Test hook: run with a deliberately wrong oracle (the run must fail).
    #[arg(long, hide = true, value_enum)]
    pub break_oracle: Option<Breakage>,
    /// Print every operation and its result on stderr (`[thread] call = result`).
    #[arg(long)]
    pub trace: bool,
    /// Also use MADV_REMOVE (hole punch) on shared mappings, checked in every mapping of
    /// the punched page. Off by default so that a seed draws the same operations as
    /// before the option existed.
    #[arg(long)]
    pub madv_remove: bool,
}

fn parse_seed(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|e| e.to_string())
}

/// The most VMAs a run can make in one address space: one per page of the window and
/// heap of each thread there (every page its own VMA at worst), plus slack.
fn max_vmas(threads: usize, spaces: usize, window_pages: usize) -> usize {
    threads.div_ceil(spaces) * (window_pages + stress::runner::HEAP_PAGES + 16) + 64
}

/// Refuses the `Config` fields the stress oracle does not model: the oracle predicts
/// every call's result and layout from the default address-space layout (`mmap_base`,
/// `mmap_min_addr`, `brk_start`) and never expects `ENOMEM` from the map count limit, so
/// a changed layout, or a `max_map_count` the run could reach, would show as false
/// mismatches. (The default `max_map_count` is allowed whatever the run: no run of
/// realistic size comes near it.)
fn check_modelled(
    config: &Config,
    threads: usize,
    spaces: usize,
    pages: usize,
) -> Result<(), String> {
    let default = Config::default();
    let layout = [
        ("mmap_base", config.mmap_base, default.mmap_base),
        ("mmap_min_addr", config.mmap_min_addr, default.mmap_min_addr),
        ("brk_start", config.brk_start, default.brk_start),
    ];
    for (name, value, want) in layout {
        if value != want {
            return Err(format!(
                "{name} {value:#x}: the stress oracle models only the default layout \
                 ({name} {want:#x}); leave it unset"
            ));
        }
    }
    let need = max_vmas(threads, spaces, pages);
    if config.max_map_count != default.max_map_count && config.max_map_count < need {
        return Err(format!(
            "max_map_count {}: the stress oracle does not model the map count limit; \
             this run may make {need} VMAs, so it must be at least that",
            config.max_map_count
        ));
    }
    Ok(())
}

/// Check the arguments and build the run's settings.
pub fn settings(args: &StressArgs) -> Result<Settings, String> {
    let mut config = match &args.config {
        Some(path) => load_config(path, Format::Json)?,
        None => Config::default(),
    };
    if let Some(mb) = args.phys_mb {
        config.phys_mem_bytes = mb.checked_mul(1 << 20).ok_or("--phys-mb is too large")?;
    }
    let limit = match (args.ops, args.seconds) {
        (Some(n), _) => Limit::Ops(n),
        (None, Some(s)) if s.is_finite() && s > 0.0 => Limit::Seconds(s),
        (None, Some(s)) => return Err(format!("--seconds {s}: must be a positive number")),
        (None, None) => Limit::Seconds(10.0),
    };
    let (threads, spaces) = (args.threads as usize, args.spaces as usize);
    let window_pages = args.window_pages as usize;
    check_modelled(&config, threads, spaces, window_pages)?;
    let need = stress::max_frames(threads, spaces, window_pages) * 4096;
    if config.phys_mem_bytes < need {
        return Err(format!(
            "{threads} threads with {window_pages}-page windows may need {} MiB of physical memory; \
             phys_mem_bytes is {} MiB",
            need.div_ceil(1 << 20),
            config.phys_mem_bytes >> 20
        ));
    }
    let mut repro = Vec::new();
    if spaces != 1 {
        repro.push(format!("--spaces {spaces}"));
    }
    if window_pages != 256 {
        repro.push(format!("--window-pages {window_pages}"));
    }
    if let Some(path) = &args.config {
        repro.push(format!("--config {}", path.display()));
    }
    if let Some(mb) = args.phys_mb {
        repro.push(format!("--phys-mb {mb}"));
    }
    if args.inject_bug {
        repro.push("--inject-bug".to_string());
    }
    if args.madv_remove {
        repro.push("--madv-remove".to_string());
    }
    if let Some(name) = args
        .break_oracle
        .and_then(|b| b.to_possible_value())
        .map(|v| v.get_name().to_string())
    {
        repro.push(format!("--break-oracle {name}"));
    }
    Ok(Settings {
        threads,
        spaces,
        limit,
        seed: args.seed.unwrap_or_else(rand::random),
        config,
        window_pages,
        inject_bug: args.inject_bug,
        breakage: args.break_oracle,
        progress: io::stderr().is_terminal() && !args.trace,
        trace: args.trace,
        madv_remove: args.madv_remove,
        repro,
    })
}

/// Runs the command; the exit status is the run's.
pub fn main(args: &StressArgs) -> ExitCode {
    let settings = match settings(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("softmm stress: {e}");
            return ExitCode::from(2);
        }
    };
    let summary = match stress::run(&settings) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("softmm stress: {e}");
            return ExitCode::from(2);
        }
    };
    let mut out = io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut out, &summary)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        summary.write_text(&mut out)
    };
    if let Err(e) = written.and_then(|()| out.flush()) {
        eprintln!("softmm stress: writing the summary: {e}");
        return ExitCode::from(2);
    }
    if args.json
        && let Some(cmd) = &summary.reproduce
    {
        eprintln!("softmm stress: FAILED; reproduce with: {cmd}");
    }
    ExitCode::from(if summary.ok { 0 } else { 1 })
}
