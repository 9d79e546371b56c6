//! Timing samples and their summary.
//!
//! A [`Recorder`] times batches of operations: each batch gives one sample, its mean
//! time per operation. [`Summary`] gathers the runs (repetitions) of a cell:
//! * `ns_per_op`: per run, timed nanoseconds over operations of all its threads (the
//!   mean latency one thread sees); the median over runs;
//! * `ops_per_s`: per run, the sum over threads of each thread's rate during its timed
//!   phase (aggregate throughput); the median over runs;
//! * `p50`/`p99`: nearest-rank percentiles of all samples of all runs.
//!
//! Medians over runs keep one disturbed repetition (another process, a migration) from
//! moving the result; the percentiles show the spread inside runs.

use std::time::{Duration, Instant};

/// The samples of one thread in one run.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    /// Mean nanoseconds per operation of each batch.
    pub samples: Vec<f64>,
    /// Operations timed.
    pub ops: u64,
    /// Time spent in timed batches.
    pub busy: Duration,
}

impl Recorder {
    /// A recorder expecting about `batches` samples.
    pub fn with_capacity(batches: usize) -> Self {
        Self {
            samples: Vec::with_capacity(batches),
            ..Self::default()
        }
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
}

/// The median of `v` (the mean of the middle two for an even count); 0 when empty.
fn median(v: &[f64]) -> f64 {
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
        if ops > 0 {
            self.run_ns.push(busy / ops as f64);
            self.run_rate.push(rate);
        }
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
