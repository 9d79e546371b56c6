//! Running the cells: machines, threads, warm-up, interleaved repetitions.

use std::sync::Barrier;

use indicatif::{ProgressBar, ProgressStyle};

use super::{
    HOST,
    host::Host,
    machine::{Machine, OpError, Thread},
    report::{Report, ResultRow},
    soft::Soft,
    stats::{Recorder, Summary},
    variant_name, variants,
    workload::Workload,
};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The workloads, in table order.
    pub workloads: Vec<Workload>,
    /// Timed repetitions of every cell (after one warm-up run).
    pub reps: u32,
    /// Small regions and few operations (tests, CI).
    pub quick: bool,
    /// Thread counts every workload is run at.
    pub threads: Vec<usize>,
}

/// The machine of a cell.
#[derive(Debug)]
enum CellMachine {
    Host(Host),
    Soft(Soft),
}

/// One (workload, variant, threads) triple and its pooled samples.
#[derive(Debug)]
struct Cell {
    workload: Workload,
    variant: &'static str,
    threads: usize,
    machine: CellMachine,
    summary: Summary,
}

impl Cell {
    fn run(&self, quick: bool) -> Result<Vec<Recorder>, OpError> {
        match &self.machine {
            CellMachine::Host(m) => run_once(m, self.workload, self.threads, quick),
            CellMachine::Soft(m) => run_once(m, self.workload, self.threads, quick),
        }
    }

    fn row(mut self) -> ResultRow {
        ResultRow {
            workload: self.workload.name().to_string(),
            case: self.workload.case().map(str::to_string),
            variant: self.variant.to_string(),
            threads: self.threads,
            ops: self.summary.ops(),
            ns_per_op: self.summary.ns_per_op(),
            p50_ns: self.summary.quantile(0.50),
            p99_ns: self.summary.quantile(0.99),
            ops_per_s: self.summary.ops_per_s(),
        }
    }
}

/// The cells of `w`: per thread count, the host, then each softmm variant.
fn cells(w: Workload, threads: &[usize]) -> Result<Vec<Cell>, OpError> {
    let mut out = Vec::new();
    for &n in threads {
        out.push(Cell {
            workload: w,
            variant: HOST,
            threads: n,
            machine: CellMachine::Host(Host),
            summary: Summary::default(),
        });
        for v in variants() {
            out.push(Cell {
                workload: w,
                variant: variant_name(v),
                threads: n,
                machine: CellMachine::Soft(Soft::new(v, n)?),
                summary: Summary::default(),
            });
        }
    }
    Ok(out)
}

/// Run every selected workload; progress goes to stderr when it is a terminal.
pub fn run(opts: &Options) -> Result<Report, OpError> {
    let per_workload = opts.threads.len() * (1 + variants().len());
    let total = opts.workloads.len() * per_workload * (opts.reps as usize + 1);
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:28} [{bar:30}] {pos}/{len} runs, {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut rows = Vec::new();
    for &w in &opts.workloads {
        let mut cells = cells(w, &opts.threads)?;
        bar.set_message(format!("{} (warm-up)", w.label()));
        for c in &cells {
            c.run(opts.quick)?;
            bar.inc(1);
        }
        bar.set_message(w.label());
        let n = cells.len();
        for rep in 0..opts.reps as usize {
            // Interleave: every cell once per repetition, from a rotating start.
            for k in 0..n {
                let c = &mut cells[(rep + k) % n];
                let recs = c.run(opts.quick)?;
                c.summary.add_run(&recs);
                bar.inc(1);
            }
        }
        rows.extend(cells.into_iter().map(Cell::row));
    }
    bar.finish_and_clear();
    Ok(Report::new(opts, rows))
}

/// One run of `w` on `m` with `threads` threads: their recorders.
fn run_once<M: Machine>(
    m: &M,
    w: Workload,
    threads: usize,
    quick: bool,
) -> Result<Vec<Recorder>, OpError> {
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let barrier = &barrier;
                s.spawn(move || thread_run(m, w, i, quick, barrier))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// One thread: untimed setup, barrier, timed batches, barrier, untimed teardown. The
/// barriers keep one thread's setup and teardown out of the other's timed phase; every
/// path reaches both, so an error in one thread cannot strand the other.
fn thread_run<M: Machine>(
    m: &M,
    w: Workload,
    index: usize,
    quick: bool,
    barrier: &Barrier,
) -> Result<Recorder, OpError> {
    let mut t = m.thread();
    let setup = w.setup(&mut t, index, quick);
    barrier.wait();
    let (ops, b) = (w.ops(quick), w.batch());
    let mut rec = Recorder::with_capacity((ops / b) as usize);
    let timed = setup
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|r| timed(&mut t, w, r, ops, b, &mut rec));
    barrier.wait();
    let down = setup.and_then(|r| w.teardown(&mut t, r));
    timed.and(down).map(|()| rec)
}

fn timed<T: Thread>(
    t: &mut T,
    w: Workload,
    r: &super::workload::Region,
    ops: u64,
    b: u64,
    rec: &mut Recorder,
) -> Result<(), OpError> {
    let mut i = 0;
    while i < ops {
        rec.batch(b, || (i..i + b).try_for_each(|k| w.op(t, r, k)))?;
        i += b;
    }
    Ok(())
}
