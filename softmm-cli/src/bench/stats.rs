//! Timing samples and their summary.
//!
//! A [`Recorder`] times batches of operations: each batch gives one sample, its mean
//! time per operation. [`Summary`] pools the samples of every thread and repetition of a
//! cell: `ns_per_op` is total timed nanoseconds over total operations (the mean latency
//! one thread sees), `ops_per_s` the sum over threads of each thread's rate during its
//! timed phase (aggregate throughput), `p50`/`p99` nearest-rank percentiles of the
//! samples.

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
    busy_ns: f64,
    /// Sum over (run, thread) of that thread's rate in ops/s.
    rate_sum: f64,
    runs: u64,
}

impl Summary {
    /// Add one run: the recorders of its threads.
    pub fn add_run(&mut self, threads: &[Recorder]) {
        for r in threads {
            self.samples.extend_from_slice(&r.samples);
            self.ops += r.ops;
            let ns = r.busy.as_nanos() as f64;
            self.busy_ns += ns;
            if ns > 0.0 {
                self.rate_sum += r.ops as f64 * 1e9 / ns;
            }
        }
        self.runs += 1;
    }

    /// Operations timed in all.
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// Mean nanoseconds per operation per thread.
    pub fn ns_per_op(&self) -> f64 {
        if self.ops == 0 {
            return 0.0;
        }
        self.busy_ns / self.ops as f64
    }

    /// Aggregate operations per second (all threads), averaged over runs.
    pub fn ops_per_s(&self) -> f64 {
        if self.runs == 0 {
            return 0.0;
        }
        self.rate_sum / self.runs as f64
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
    fn rates_add_over_threads_and_average_over_runs() {
        let mut s = Summary::default();
        // Two threads, each 10 ops in 1 µs: 2e7 ops/s together.
        s.add_run(&[rec(&[100.0; 10], 1000), rec(&[100.0; 10], 1000)]);
        s.add_run(&[rec(&[100.0; 10], 1000), rec(&[100.0; 10], 1000)]);
        assert_eq!(s.ops(), 40);
        assert!((s.ops_per_s() - 2e7).abs() < 1.0);
        assert_eq!(s.ns_per_op(), 100.0);
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
