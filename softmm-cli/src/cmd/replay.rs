//! `softmm replay TRACE`: run a real program's memory-management calls (an `strace -f -y`
//! log, as `tools/capture-trace.sh` records it) on a softmm machine.
//!
//! Prints the summary (calls replayed, processes, matched / diverged / outside view,
//! placement agreement, replay speed), the first divergences, and on request a process's
//! maps or smaps at its dump marker, next to Linux's `maps.PID` when the capture saved one.
//! `--compare` compares every `maps.PID` next to the trace page by page. `--json` prints
//! the same as one JSON object. The `maps.PID` files also tell the replay where each dump
//! was read among the calls other threads had in flight. Exit status: 0; 1 with `--check`
//! when a call diverged or a page or VMA of a `maps.PID` differs (`--check` compares every
//! one); 2 when the trace cannot be read (see [`input`](crate::input) for the limits), holds
//! no memory-management call at all, `--maps`/`--smaps` names a process it does not have,
//! or (with `--strict`) a line is malformed or not UTF-8. Without `--strict`, a malformed
//! or non-UTF-8 line is skipped and reported on stderr.

use std::{path::PathBuf, process::ExitCode, time::Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use softmm::Config;

use crate::{
    config::{Format, load_config},
    input::{TRACE, Text, read_text},
    replay::{
        maps_cmp::PageCompare,
        run::{MapsCompare, Outcome, Report, compare_pid, dump_files, maps_files, replay_against},
        strace::ParseError,
    },
};

/// Arguments of `softmm replay`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Limits: a trace of at most 1 GiB with lines of at most 1 MiB; a --config file of at most
1 MiB. A line that is not UTF-8 is skipped (reported with its column) unless --strict.

Exit status: 0 replayed; 1 with --check when a call diverged or a page or VMA of a
maps.PID differs;
2 the trace cannot be read, breaks a limit, holds no memory-management call, --maps or
--smaps names a process it lacks, or (--strict) a line is malformed (I/O errors are 2 in
every softmm command).")]
pub struct ReplayArgs {
    /// The trace (`strace -f -y` output).
    pub trace: PathBuf,
    /// Print `/proc/PID/maps` of this process at its first dump marker (or exit, or the end
    /// of the trace), and Linux's `maps.PID` from the trace's directory if there is one.
    #[arg(long, value_name = "PID")]
    pub maps: Option<u64>,
    /// Print `/proc/PID/smaps` of this process (same moment as `--maps`).
    #[arg(long, value_name = "PID")]
    pub smaps: Option<u64>,
    /// Compare every `maps.PID` next to the trace with softmm's maps, page by page.
    #[arg(long)]
    pub compare: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when a call diverged or a page or VMA of any `maps.PID` differs.
    #[arg(long)]
    pub check: bool,
    /// Fail (exit 2) at the first malformed line instead of skipping it.
    #[arg(long)]
    pub strict: bool,
    /// A `Config` as TOML (defaults otherwise).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

fn progress_bar(len: u64) -> ProgressBar {
    // Only long traces, and only on a terminal, get a bar.
    if len < 200_000 {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec})") {
        pb.set_style(style);
    }
    pb.set_message("replaying");
    pb
}

/// The replay of the trace named by `args`, with the time it took (seconds); the error is
/// the message to print (exit 2). Lines skipped for invalid UTF-8 join the malformed ones.
fn replay(args: &ReplayArgs) -> Result<(Outcome, f64), String> {
    let shown = args.trace.display().to_string();
    // Without --strict a line that is not UTF-8 is read as empty, and listed.
    let trace = read_text(&args.trace, TRACE, !args.strict)
        .map_err(|e| format!("softmm: {}", e.at(&shown)))?;
    let config = match &args.config {
        None => Config::default(),
        Some(path) => load_config(path, Format::Toml).map_err(|e| format!("softmm: {e}"))?,
    };
    let pb = progress_bar(trace.text.len() as u64 / 80);
    let t0 = Instant::now();
    let dumps = dump_files(&args.trace);
    let mut out = replay_against(&trace.text, config, args.strict, &pb, &dumps)
        .map_err(|e| format!("softmm: {shown}:{e}"))?;
    let secs = t0.elapsed().as_secs_f64();
    out.malformed
        .extend(trace.invalid.iter().map(|bad| ParseError {
            line: bad.line,
            message: format!("invalid UTF-8 at column {}", bad.col),
        }));
    out.malformed.sort_by_key(|e| e.line);
    Ok((out, secs))
}

/// Refuses a replay that cannot answer the arguments: a file in which nothing was
/// replayed, or `--maps`/`--smaps` of a process the trace lacks.
fn check_usable(args: &ReplayArgs, out: &Outcome) -> Result<(), String> {
    let shown = args.trace.display();
    if out.replay.summary().calls == 0 {
        return Err(format!(
            "softmm: {shown}: not an strace log: none of its {} lines is a memory-management \
             call (nothing was replayed)",
            out.lines
        ));
    }
    let missing = [args.maps, args.smaps]
        .into_iter()
        .flatten()
        .find(|&pid| out.replay.snapshot(pid).is_none());
    match missing {
        Some(pid) => Err(format!("softmm: {shown}: no process {pid} in this trace")),
        None => Ok(()),
    }
}

/// The comparisons with Linux's `maps.PID` files that the arguments ask for.
fn compare_maps(args: &ReplayArgs, out: &Outcome, files: &[(u64, PathBuf)]) -> Vec<MapsCompare> {
    let mut compares = Vec::new();
    for (pid, path) in files {
        if !args.compare && !args.check && args.maps != Some(*pid) {
            continue;
        }
        match read_text(path, TRACE, false)
            .map(|t| t.text)
            .map_err(|e| e.to_string())
            .and_then(|t| compare_pid(out, *pid, &t))
        {
            Ok(c) => compares.push(c),
            Err(e) => eprintln!("softmm: {}: {e}", path.display()),
        }
    }
    compares
}

/// Runs the command.
pub fn main(args: &ReplayArgs) -> ExitCode {
    let (out, secs) = match replay(args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let shown = args.trace.display();
    for e in &out.malformed {
        eprintln!("softmm: {shown}:{e} (skipped)");
    }
    if let Err(e) = check_usable(args, &out) {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    let summary = out.replay.summary();
    let calls_per_second = summary.records as f64 / secs.max(1e-9);
    let files = maps_files(&args.trace);
    let compares = compare_maps(args, &out, &files);
    if args.json {
        let report = Report {
            trace: shown.to_string(),
            lines: out.lines,
            malformed: out.malformed.len(),
            summary,
            calls_per_second,
            maps: compares.clone(),
        };
        match serde_json::to_string_pretty(&report) {
            Ok(j) => println!("{j}"),
            Err(e) => eprintln!("softmm: {e}"),
        }
    } else {
        print_text(args, &out, &files, &compares, calls_per_second);
    }
    let bad_pages = compares.iter().any(|c| {
        c.result
            .as_ref()
            .is_none_or(|r| r.matched != r.pages || r.vmas_identical != r.vmas)
    });
    if args.check && (summary.diverged > 0 || bad_pages) {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn print_text(
    args: &ReplayArgs,
    out: &Outcome,
    files: &[(u64, PathBuf)],
    compares: &[MapsCompare],
    calls_per_second: f64,
) {
    let s = out.replay.summary();
    for pid in [args.maps, args.smaps].into_iter().flatten() {
        match out.replay.snapshot(pid) {
            // `main` refuses a pid without a snapshot before printing anything.
            None => {}
            Some(snap) if Some(pid) == args.maps => {
                println!("== softmm /proc/{pid}/maps (trace line {})", snap.line);
                print!("{}", snap.maps);
                if let Some((_, path)) = files.iter().find(|(p, _)| *p == pid)
                    && let Ok(Text { text: linux, .. }) = read_text(path, TRACE, false)
                {
                    println!("== Linux {}", path.display());
                    print!("{linux}");
                }
            }
            Some(_) => {}
        }
        if Some(pid) == args.smaps
            && let Some(snap) = out.replay.snapshot(pid)
        {
            println!("== softmm /proc/{pid}/smaps (trace line {})", snap.line);
            print!("{}", snap.smaps);
        }
    }
    println!(
        "{} lines, {} records ({} malformed), {} processes",
        out.lines,
        s.records,
        out.malformed.len(),
        s.processes
    );
    println!(
        "calls: {} — matched {}, diverged {}, outside view {}, ignored {}",
        s.calls, s.matched, s.diverged, s.outside_view, s.ignored
    );
    if s.reordered > 0 {
        println!(
            "reordered: {} calls applied ahead of results printed before theirs",
            s.reordered
        );
    }
    let p = s.placement;
    println!(
        "placement agreement: {}/{} non-fixed mmaps ({:.1}%)",
        p.agreed,
        p.total,
        if p.total == 0 {
            100.0
        } else {
            p.agreed as f64 * 100.0 / p.total as f64
        }
    );
    println!("replay speed: {calls_per_second:.0} records/s");
    for d in &s.divergences {
        println!(
            "diverged: line {} (pid {}): expected {}, got {}",
            d.line, d.pid, d.expected, d.got
        );
    }
    for c in compares {
        match &c.result {
            None => println!("maps.{}: softmm has no such process", c.pid),
            Some(r) => print_compare(c.pid, r),
        }
    }
}

fn print_compare(pid: u64, r: &PageCompare) {
    println!(
        "maps.{pid}: {}/{} pages match Linux ({:.1}%); {}/{} VMAs identical",
        r.matched,
        r.pages,
        r.percent(),
        r.vmas_identical,
        r.vmas
    );
    if !r.left_out.is_empty() {
        println!(
            "  left out: {} of Linux's {} VMAs, outside the replay's view: {}",
            r.left_out_count(),
            r.linux_vmas,
            r.left_out_text()
        );
    }
    for m in &r.mismatches {
        println!(
            "  {:x}-{:x}: softmm {} | Linux {}",
            m.start, m.end, m.ours, m.linux
        );
    }
}
