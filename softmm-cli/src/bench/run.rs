//! Running the cells: machines, threads, warm-up, interleaved repetitions.

use std::sync::Barrier;

use indicatif::{ProgressBar, ProgressStyle};
use softmm::config::FaultLocking;

use super::{
    HOST, churn,
    host::{self, Host, HostThread},
    machine::{Machine, OpError, Thread},
    report::{Report, ResultRow, Skipped, TlbFlushes},
    scale::{self, Filled},
    shootdown,
    soft::{Soft, SoftThread},
    stats::{Recorder, Summary, median},
    variant_name, variants,
    workload::{Kind, Workload},
};

/// VMAs a host cell needs besides the workload's: the process's threads, the workload's
/// own mapping, a margin for libraries that map lazily.
const HOST_VMA_SLACK: u64 = 256;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The workloads, in table order.
    pub workloads: Vec<Workload>,
    /// Timed repetitions of every cell (after one warm-up run).
    pub reps: u32,
    /// Small regions and few operations (tests, CI).
    pub quick: bool,
    /// Thread counts every per-thread workload is run at (`fault-churn` always runs at
    /// 2, the many-VMA workloads at 1, `shootdown` at 1, 2, 3 and 5).
    pub threads: Vec<usize>,
    /// Variant names to run (`host`, `PerVma`, `Global`); empty: all of them.
    pub variants: Vec<String>,
}

impl Options {
    /// Whether the variant named `name` is to be run.
    fn runs(&self, name: &str) -> bool {
        self.variants.is_empty() || self.variants.iter().any(|v| v.eq_ignore_ascii_case(name))
    }
}

/// What a cell is: (workload, variant, threads, VMAs), before its machine exists.
#[derive(Debug, Clone, Copy)]
struct Spec {
    workload: Workload,
    /// `None`: the host.
    variant: Option<FaultLocking>,
    threads: usize,
    vmas: Option<u64>,
}

/// The cells of `w` (per thread count and VMA count: the host, then each softmm
/// variant), and the host cells left out because the host cannot hold their VMAs.
fn plan(w: Workload, opts: &Options) -> (Vec<Spec>, Vec<Skipped>) {
    let counts: Vec<Option<u64>> = match w.vma_counts(opts.quick) {
        [] => vec![None],
        c => c.iter().copied().map(Some).collect(),
    };
    let (mut specs, mut skipped) = (Vec::new(), Vec::new());
    for threads in w.threads(&opts.threads) {
        for &vmas in &counts {
            let spec = |variant| Spec {
                workload: w,
                variant,
                threads,
                vmas,
            };
            match vmas.and_then(|n| host::vmas_do_not_fit(n, HOST_VMA_SLACK)) {
                Some(reason) => skipped.push(Skipped {
                    workload: w.name().to_string(),
                    case: w.case_at(threads),
                    variant: HOST.to_string(),
                    threads,
                    vmas,
                    reason,
                }),
                None if opts.runs(HOST) => specs.push(spec(None)),
                None => {}
            }
            specs.extend(
                variants()
                    .into_iter()
                    .filter(|&v| opts.runs(variant_name(v)))
                    .map(|v| spec(Some(v))),
            );
        }
    }
    (specs, skipped)
}

/// The machine of a cell, with the VMAs a many-VMA workload keeps between runs.
#[derive(Debug)]
enum CellMachine {
    Host(Host, Option<Filled<HostThread>>),
    Soft(Soft, Option<Filled<SoftThread>>),
}

/// What one run of a cell measured.
#[derive(Debug, Default)]
struct RunOut {
    /// The timed threads' recorders.
    recs: Vec<Recorder>,
    /// `fault-churn`: thread 1's rounds per second.
    churn_rate: Option<f64>,
    /// `exit-many-vmas`: the RCU callbacks the teardown queued.
    rcu_callbacks: Option<u64>,
    /// Many-VMA workloads, softmm: nodes a VMA lookup visits.
    tree_levels: Option<u32>,
    /// `shootdown`, softmm: the TLB flushes of the timed phase.
    tlb_flushes: Option<TlbFlushes>,
}

/// One cell and its pooled samples.
#[derive(Debug)]
struct Cell {
    spec: Spec,
    machine: CellMachine,
    summary: Summary,
    churn_rates: Vec<f64>,
    rcu_callbacks: Option<u64>,
    tree_levels: Option<u32>,
    /// Summed over the timed runs.
    tlb_flushes: Option<TlbFlushes>,
}

impl Cell {
    fn new(spec: Spec) -> Result<Self, OpError> {
        let vmas = spec.vmas.unwrap_or(0);
        let machine = match spec.variant {
            None => CellMachine::Host(Host, None),
            Some(v) => CellMachine::Soft(Soft::new(v, spec.threads, vmas)?, None),
        };
        Ok(Self {
            spec,
            machine,
            summary: Summary::default(),
            churn_rates: Vec::new(),
            rcu_callbacks: None,
            tree_levels: None,
            tlb_flushes: None,
        })
    }

    fn run(&mut self, quick: bool) -> Result<RunOut, OpError> {
        match &mut self.machine {
            CellMachine::Host(m, f) => run_cell(m, f, self.spec, quick),
            CellMachine::Soft(m, f) => run_cell(m, f, self.spec, quick),
        }
    }

    fn add(&mut self, out: RunOut) {
        self.summary.add_run(&out.recs);
        self.churn_rates.extend(out.churn_rate);
        self.rcu_callbacks = self.rcu_callbacks.max(out.rcu_callbacks);
        self.tree_levels = self.tree_levels.max(out.tree_levels);
        if let Some(f) = out.tlb_flushes {
            self.tlb_flushes = Some(self.tlb_flushes.unwrap_or_default() + f);
        }
    }

    fn row(mut self) -> ResultRow {
        let w = self.spec.workload;
        let variant = self.spec.variant.map_or(HOST, variant_name);
        let churn = (!self.churn_rates.is_empty()).then(|| median(&self.churn_rates));
        ResultRow {
            workload: w.name().to_string(),
            case: w.case_at(self.spec.threads),
            op: w.op_label(self.spec.variant.is_none()).map(str::to_string),
            variant: variant.to_string(),
            threads: self.spec.threads,
            vmas: self.spec.vmas,
            ops: self.summary.ops(),
            ns_per_op: self.summary.ns_per_op(),
            p50_ns: self.summary.quantile(0.50),
            p99_ns: self.summary.quantile(0.99),
            ops_per_s: self.summary.ops_per_s(),
            ops_per_s_on_cpu: self.summary.ops_per_s_on_cpu(),
            preemptions: self.summary.preemptions(),
            ratio_to_quiet: None,
            ratio_to_quiet_on_cpu: None,
            churn_ops_per_s: churn.filter(|&r| r > 0.0),
            rcu_callbacks: self.rcu_callbacks,
            tree_levels: self.tree_levels,
            tlb_flushes: self.tlb_flushes,
            run_rates: self.summary.run_rates().to_vec(),
            run_rates_on_cpu: self.summary.run_rates_on_cpu().to_vec(),
        }
    }
}

/// One run of a cell on `m`, by the workload's kind.
fn run_cell<M: Machine>(
    m: &M,
    filled: &mut Option<Filled<M::Thread>>,
    spec: Spec,
    quick: bool,
) -> Result<RunOut, OpError> {
    let (w, vmas) = (spec.workload, spec.vmas.unwrap_or(0));
    Ok(match w.kind() {
        Kind::PerThread => RunOut {
            recs: run_once(m, w, spec.threads, quick)?,
            ..RunOut::default()
        },
        Kind::Churn { neighbour } => {
            let r = churn::run(m, w, neighbour, quick)?;
            RunOut {
                recs: vec![r.faults],
                churn_rate: Some(r.churn_rate),
                ..RunOut::default()
            }
        }
        Kind::Scaled => {
            let rec = scale::run(m, filled, w, vmas, quick)?;
            RunOut {
                recs: vec![rec],
                tree_levels: filled.as_ref().and_then(Filled::tree_levels),
                ..RunOut::default()
            }
        }
        Kind::Teardown => {
            let (rec, td) = scale::teardown(m, vmas)?;
            RunOut {
                recs: vec![rec],
                rcu_callbacks: td.rcu_callbacks,
                ..RunOut::default()
            }
        }
        Kind::Shootdown => {
            let r = shootdown::run(m, w, spec.threads - 1, quick)?;
            RunOut {
                recs: vec![r.munmaps],
                tlb_flushes: r.tlb_flushes,
                ..RunOut::default()
            }
        }
    })
}

/// Run every selected workload; progress goes to stderr when it is a terminal.
pub fn run(opts: &Options) -> Result<Report, OpError> {
    let plans: Vec<_> = opts.workloads.iter().map(|&w| plan(w, opts)).collect();
    let runs: usize = plans.iter().map(|(s, _)| s.len()).sum();
    let bar = ProgressBar::new((runs * (opts.reps as usize + 1)) as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:28} [{bar:30}] {pos}/{len} runs, {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let (mut rows, mut skipped) = (Vec::new(), Vec::new());
    for (&w, (specs, left_out)) in opts.workloads.iter().zip(plans) {
        let mut cells = specs
            .into_iter()
            .map(Cell::new)
            .collect::<Result<Vec<_>, _>>()?;
        bar.set_message(format!("{} (warm-up)", w.label()));
        for c in &mut cells {
            c.run(opts.quick)?;
            bar.inc(1);
        }
        bar.set_message(w.label());
        let n = cells.len();
        for rep in 0..opts.reps as usize {
            // Interleave: every cell once per repetition, from a rotating start.
            for k in 0..n {
                let c = &mut cells[(rep + k) % n];
                let out = c.run(opts.quick)?;
                c.add(out);
                bar.inc(1);
            }
        }
        rows.extend(cells.into_iter().map(Cell::row));
        skipped.extend(left_out);
    }
    bar.finish_and_clear();
    set_ratios_to_quiet(&mut rows);
    Ok(Report::new(opts, rows, skipped))
}

/// `fault-churn` rows: `ratio_to_quiet` = fault throughput over that of the `quiet` row
/// of the same variant and threads (1 on the `quiet` rows themselves), and
/// `ratio_to_quiet_on_cpu` the same on CPU time: the median of the per-repetition
/// ratios where both rows have every repetition, else the ratio of the medians.
fn set_ratios_to_quiet(rows: &mut [ResultRow]) {
    let quiet: Vec<ResultRow> = rows
        .iter()
        .filter(|r| r.workload == Workload::FaultChurnQuiet.name())
        .filter(|r| r.case.as_deref() == Workload::FaultChurnQuiet.case())
        .cloned()
        .collect();
    let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b.filter(|&b| b > 0.0)?);
    for r in rows
        .iter_mut()
        .filter(|r| r.workload == Workload::FaultChurn.name())
    {
        let Some(q) = quiet
            .iter()
            .find(|q| q.variant == r.variant && q.threads == r.threads)
        else {
            continue;
        };
        r.ratio_to_quiet = paired(&r.run_rates, &q.run_rates)
            .or_else(|| ratio(Some(r.ops_per_s), Some(q.ops_per_s)));
        r.ratio_to_quiet_on_cpu = paired(&r.run_rates_on_cpu, &q.run_rates_on_cpu)
            .or_else(|| ratio(r.ops_per_s_on_cpu, q.ops_per_s_on_cpu));
    }
}

/// Median of `a[i] / b[i]` over repetitions, when both have the same (non-zero) number
/// of them and no zero rate.
fn paired(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.is_empty() || a.len() != b.len() || b.contains(&0.0) {
        return None;
    }
    let ratios: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    Some(median(&ratios))
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
    let mut phase = |rec: &mut Recorder| {
        setup
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|r| timed(&mut t, w, r, ops, b, rec))
    };
    // With untimed preparation, `timed` counts preemptions per batch instead.
    let timed = if w.prepares() {
        phase(&mut rec)
    } else {
        rec.watch_preemptions(phase)
    };
    barrier.wait();
    let down = setup.and_then(|r| w.teardown(&mut t, r));
    timed.and(down).map(|()| rec)
}

/// The timed phase of one thread: per batch of `b` operations, their untimed
/// preparation, then the batch as one sample of `b * units_per_op` operations (with its
/// preemptions counted, where there is preparation).
fn timed<T: Thread>(
    t: &mut T,
    w: Workload,
    r: &super::workload::Region,
    ops: u64,
    b: u64,
    rec: &mut Recorder,
) -> Result<(), OpError> {
    let (mut i, units) = (0, w.units_per_op());
    while i < ops {
        if w.prepares() {
            (i..i + b).try_for_each(|_| w.prepare(t, r))?;
            rec.batch_watched(b * units, || (i..i + b).try_for_each(|k| w.op(t, r, k)))?;
        } else {
            rec.batch(b * units, || (i..i + b).try_for_each(|k| w.op(t, r, k)))?;
        }
        i += b;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::paired;

    #[test]
    fn ratios_pair_repetitions() {
        // A machine twice as fast in the second repetition moves both rows.
        assert_eq!(
            paired(&[90.0, 180.0, 45.0], &[100.0, 200.0, 50.0]),
            Some(0.9)
        );
        assert_eq!(paired(&[1.0], &[1.0, 2.0]), None);
        assert_eq!(paired(&[], &[]), None);
        assert_eq!(paired(&[1.0], &[0.0]), None);
    }
}
