//! A long synthetic trace for measuring replay speed: one process doing the calls an
//! allocator makes (map 64 KiB regions, protect, DONTNEED, map over, unmap, move the
//! break), in strace's syntax, with results consistent with Linux.
//!
//! Regions live in 1024 slots 128 KiB apart, so the layout stays bounded (at most 16 VMAs
//! a slot) however long the trace; non-fixed `mmap`s return the slot's address (a replay
//! places mappings where the trace says).

use std::fmt::Write;

const BASE: u64 = 0x7f00_0000_0000;
const SLOTS: usize = 1024;
const SLOT_SPAN: u64 = 128 << 10;
const REGION: u64 = 64 << 10;
const HEAP: u64 = 0x5555_5600_0000;

fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// A trace of `calls` memory-management calls (plus its `execve` line), from `seed`.
pub fn trace(calls: usize, seed: u64) -> String {
    let mut s = String::with_capacity(calls * 90);
    let mut rng = seed | 1;
    let pid = 4242;
    let _ = writeln!(
        s,
        "{pid}  execve(\"/usr/bin/synthetic\", [\"synthetic\"], 0x7ffd0000 /* 1 var */) = 0"
    );
    let _ = writeln!(s, "{pid}  brk(NULL) = {HEAP:#x}");
    let mut mapped = [false; SLOTS];
    for _ in 1..calls {
        let r = next(&mut rng);
        let slot = (r % SLOTS as u64) as usize;
        let addr = BASE + slot as u64 * SLOT_SPAN;
        let page = (r >> 16) % 16;
        let pages = 1 + (r >> 24) % (16 - page);
        let (at, len) = (addr + page * 4096, pages * 4096);
        if r % 50 == 7 {
            // The break moves up and down within 1 MiB.
            let target = HEAP + ((r >> 32) % 256) * 4096;
            let _ = writeln!(s, "{pid}  brk({target:#x}) = {target:#x}");
            continue;
        }
        if !mapped[slot] {
            mapped[slot] = true;
            let _ = writeln!(
                s,
                "{pid}  mmap(NULL, {REGION}, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = {addr:#x}"
            );
            continue;
        }
        match (r >> 40) % 10 {
            0..=2 => {
                mapped[slot] = false;
                let _ = writeln!(s, "{pid}  munmap({addr:#x}, {REGION}) = 0");
            }
            3..=5 => {
                let prot =
                    ["PROT_READ", "PROT_READ|PROT_WRITE", "PROT_NONE"][(r >> 48) as usize % 3];
                let _ = writeln!(s, "{pid}  mprotect({at:#x}, {len}, {prot}) = 0");
            }
            6..=7 => {
                let _ = writeln!(s, "{pid}  madvise({at:#x}, {len}, MADV_DONTNEED) = 0");
            }
            _ => {
                let _ = writeln!(
                    s,
                    "{pid}  mmap({at:#x}, {len}, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = {at:#x}"
                );
            }
        }
    }
    s
}

/// Replay speed on a synthetic trace of `calls` calls, in seconds: parsing alone,
/// replaying parsed records alone, and [`replay_text`](super::run::replay_text) end to end
/// (parsing in a second thread beside the replay).
pub fn measure(calls: usize) -> (f64, f64, f64) {
    use std::time::Instant;

    use indicatif::ProgressBar;
    use softmm::Config;

    use super::{
        engine::Replay,
        run::{parse_trace, replay_text},
    };
    let text = trace(calls, 42);
    let t0 = Instant::now();
    let (records, _, _) = parse_trace(&text, true, &ProgressBar::hidden()).unwrap_or_default();
    let t1 = Instant::now();
    if let Ok(mut r) = Replay::new(Config::default()) {
        let last = records.last().map_or(0, |rec| rec.line);
        for rec in records {
            r.push(rec);
        }
        r.finish(last);
    }
    let t2 = Instant::now();
    let _ = replay_text(&text, Config::default(), true, &ProgressBar::hidden());
    let t3 = Instant::now();
    (
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        (t3 - t2).as_secs_f64(),
    )
}

#[cfg(test)]
mod tests {
    use indicatif::ProgressBar;
    use softmm::Config;

    use super::*;
    use crate::replay::run::replay_text;

    #[test]
    fn synthetic_trace_replays_without_divergence() {
        let text = trace(20_000, 7);
        assert_eq!(text.lines().count(), 20_001);
        let out = replay_text(&text, Config::default(), true, &ProgressBar::hidden()).unwrap();
        let s = out.replay.summary();
        assert_eq!(s.calls, 20_000);
        assert_eq!(s.diverged, 0, "{:?}", s.divergences);
        assert_eq!(s.matched, 20_000);
    }

    /// `cargo test --release -p softmm-cli --lib replay_speed -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a test"]
    fn replay_speed() {
        let n = 1_000_000;
        let (parse, replay, end_to_end) = measure(n);
        eprintln!(
            "parse {:.0} lines/s, replay {:.0} calls/s, end to end {:.0} calls/s",
            n as f64 / parse,
            n as f64 / replay,
            n as f64 / end_to_end
        );
    }
}
