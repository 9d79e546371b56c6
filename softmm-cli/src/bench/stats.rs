//! Timing samples and their summary.
//!
//! A [`Recorder`] times batches of operations: each batch gives one sample, its mean
//! time per operation. [`Summary`] gathers the runs (repetitions) of a cell:
//! * `ns_per_op`: per run, timed nanoseconds over operations of all its threads (the
//!   mean latency one thread sees); the median over runs;
//! * `ops_per_s`: per run, the sum over threads of each thread's rate during its timed
//!   phase (aggregate throughput); the median over runs;
//! * `p50`/`p99`: nearest-rank percentiles of all samples of all runs;
//! * `preemptions`: per run, the involuntary context switches of the timed threads
//!   during their timed phases (another process took the CPU); the median over runs;
//! * `ops_per_s_on_cpu`: as `ops_per_s`, but each thread's timed time less the time it
//!   spent runnable yet waiting for a CPU (`/proc/thread-self/schedstat`): preempted, or
//!   woken and not yet running. Time asleep on a lock still counts, but the wait for a
//!   CPU after the wake-up does not, so for a thread that blocks (Global under churn)
//!   it understates what blocking costs on a busy machine; for paths that never block
//!   it tells another process's CPU use apart from the workload's own interference.
//!
//! Medians over runs keep one disturbed repetition (another process, a migration) from
//! moving the result; the percentiles show the spread inside runs.

use std::time::{Duration, Instant};

use super::host;

/// The samples of one thread in one run.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    /// Mean nanoseconds per operation of each batch.
    pub samples: Vec<f64>,
    /// Operations timed.
    pub ops: u64,
    /// Time spent in timed batches.
    pub busy: Duration,
    /// Involuntary context switches during the timed phase, where counted
    /// ([`Recorder::watch_preemptions`]).
    pub preempted: Option<u64>,
    /// Time spent waiting for a CPU during the timed phase, where the kernel reports it.
    pub waited: Option<Duration>,
}

impl Recorder {
    /// A recorder expecting about `batches` samples.
    pub fn with_capacity(batches: usize) -> Self {
        Self {
            samples: Vec::with_capacity(batches),
            ..Self::default()
        }
    }

    /// Run `timed` (the timed phase of this thread) and count the involuntary context
    /// switches it suffered.
    pub fn watch_preemptions<R>(&mut self, timed: impl FnOnce(&mut Self) -> R) -> R {
        let (switches, waited) = (host::involuntary_switches(), host::runqueue_wait());
        let r = timed(self);
        self.preempted = Some(host::involuntary_switches().saturating_sub(switches));
        self.waited = waited
            .zip(host::runqueue_wait())
            .map(|(a, b)| b.saturating_sub(a));
        r
    }

    /// Time `f`, which performs `n` operations, as one sample.
    #[inline]
    pub fn batch<E>(&mut self, n: u64, f: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        let t0 = Instant::now();
        f()?;
        let dt = t0.elapsed();
        self.samples.push(dt.as_nanos() as f64 / n as f64);
        self.ops += n;
        self.busy += dt;
        Ok(())
    }

    /// As [`Recorder::batch`], and count the involuntary context switches and the CPU
    /// waits of this batch alone, with a few system calls outside the timed part: for
    /// workloads with untimed work between batches, which
    /// [`Recorder::watch_preemptions`] would count too.
    pub fn batch_watched<E>(&mut self, n: u64, f: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        let (switches, waited) = (host::involuntary_switches(), host::runqueue_wait());
        let r = self.batch(n, f);
        let more = host::involuntary_switches().saturating_sub(switches);
        self.preempted = Some(self.preempted.unwrap_or(0) + more);
        self.waited = waited
            .zip(host::runqueue_wait())
            .map(|(a, b)| self.waited.unwrap_or_default() + b.saturating_sub(a));
        r
    }
}

/// The pooled result of one cell.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    samples: Vec<f64>,
    ops: u64,
    /// Per run: mean ns per operation.
    run_ns: Vec<f64>,
    /// Per run: the sum of the threads' rates in ops/s.
    run_rate: Vec<f64>,
    /// Per run where every thread counted them: the threads' involuntary switches.
    run_preempted: Vec<f64>,
    /// Per run where every thread measured its CPU waits: the sum of the threads' rates
    /// on their time less those waits.
    run_rate_on_cpu: Vec<f64>,
}

/// The median of `v` (the mean of the middle two for an even count); 0 when empty.
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Summary {
    /// Add one run: the recorders of its threads.
    pub fn add_run(&mut self, threads: &[Recorder]) {
        let (mut ops, mut busy, mut rate) = (0u64, 0.0, 0.0);
        for r in threads {
            self.samples.extend_from_slice(&r.samples);
            ops += r.ops;
            let ns = r.busy.as_nanos() as f64;
            busy += ns;
            if ns > 0.0 {
                rate += r.ops as f64 * 1e9 / ns;
            }
        }
        self.ops += ops;
        if let Some(p) = threads.iter().map(|r| r.preempted).sum::<Option<u64>>() {
            self.run_preempted.push(p as f64);
        }
        let on_cpu = threads
            .iter()
            .map(|r| {
                let ns = r.busy.saturating_sub(r.waited?).as_nanos() as f64;
                Some(if ns > 0.0 {
                    r.ops as f64 * 1e9 / ns
                } else {
                    0.0
                })
            })
            .sum::<Option<f64>>();
        if let Some(rate) = on_cpu.filter(|_| ops > 0) {
            self.run_rate_on_cpu.push(rate);
        }
        if ops > 0 {
            self.run_ns.push(busy / ops as f64);
            self.run_rate.push(rate);
        }
    }

    /// Aggregate operations per second of each run, in run order.
    pub fn run_rates(&self) -> &[f64] {
        &self.run_rate
    }

    /// The same on CPU time, where measured for every run.
    pub fn run_rates_on_cpu(&self) -> &[f64] {
        &self.run_rate_on_cpu
    }

    /// Operations timed in all.
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// Mean nanoseconds per operation per thread (median over runs).
    pub fn ns_per_op(&self) -> f64 {
        median(&self.run_ns)
    }

    /// Aggregate operations per second, all threads (median over runs).
    pub fn ops_per_s(&self) -> f64 {
        median(&self.run_rate)
    }

    /// Aggregate operations per second on CPU time (median over runs), where measured.
    pub fn ops_per_s_on_cpu(&self) -> Option<f64> {
        (!self.run_rate_on_cpu.is_empty()).then(|| median(&self.run_rate_on_cpu))
    }

    /// Involuntary context switches of the timed threads per run (median over runs),
    /// where counted.
    pub fn preemptions(&self) -> Option<f64> {
        (!self.run_preempted.is_empty()).then(|| median(&self.run_preempted))
    }

    /// The `q`-quantile (0 < q ≤ 1) of the samples, nearest rank.
    pub fn quantile(&mut self, q: f64) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        self.samples.sort_unstable_by(f64::total_cmp);
        let rank = (q * self.samples.len() as f64).ceil() as usize;
        self.samples[rank.clamp(1, self.samples.len()) - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(samples: &[f64], busy_ns: u64) -> Recorder {
        Recorder {
            samples: samples.to_vec(),
            ops: samples.len() as u64,
            busy: Duration::from_nanos(busy_ns),
            preempted: Some(1),
            waited: Some(Duration::from_nanos(busy_ns / 2)),
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut s = Summary::default();
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        s.add_run(&[rec(&v, 5050)]);
        assert_eq!(s.quantile(0.5), 50.0);
        assert_eq!(s.quantile(0.99), 99.0);
        assert_eq!(s.quantile(1.0), 100.0);
        assert_eq!(s.ns_per_op(), 50.5);
    }

    #[test]
    fn rates_add_over_threads_and_take_the_median_run() {
        let mut s = Summary::default();
        // Two threads, each 10 ops in 1 µs: 2e7 ops/s together.
        s.add_run(&[rec(&[100.0; 10], 1000), rec(&[100.0; 10], 1000)]);
        s.add_run(&[rec(&[100.0; 10], 1000), rec(&[100.0; 10], 1000)]);
        // A disturbed run does not move the medians.
        s.add_run(&[rec(&[900.0; 10], 9000), rec(&[900.0; 10], 9000)]);
        assert_eq!(s.ops(), 60);
        assert!((s.ops_per_s() - 2e7).abs() < 1.0);
        assert_eq!(s.ns_per_op(), 100.0);
        // One switch per thread per run, and half of each thread's time waiting.
        assert_eq!(s.preemptions(), Some(2.0));
        assert!((s.ops_per_s_on_cpu().unwrap() - 4e7).abs() < 1.0);
    }

    #[test]
    fn median_of_even_counts_is_the_middle_mean() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn empty_summary_is_zero() {
        let mut s = Summary::default();
        assert_eq!(
            (s.ns_per_op(), s.ops_per_s(), s.quantile(0.5)),
            (0.0, 0.0, 0.0)
        );
    }
}
