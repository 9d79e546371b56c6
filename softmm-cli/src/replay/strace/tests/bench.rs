//! Throughput of [`parse`] on a synthetic million-line log (ignored by default; run it in
//! release mode):
//!
//! ```text
//! cargo test --release -p softmm-cli parse_throughput -- --ignored --nocapture
//! ```

use std::time::Instant;

use crate::replay::strace::parse;

/// Real lines, a third of them split over two lines by interleaving threads.
const LINES: &[&str] = &[
    "3351  mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f1ef2752000",
    "3351  mmap(0x7f1ef2044000, 1400832, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE, 3</usr/lib/x86_64-linux-gnu/libc.so.6>, 0x26000) = 0x7f1ef2044000",
    "3351  mprotect(0x7f1ef21ed000, 16384, PROT_READ) = 0",
    "3351  munmap(0x7f1ef2749000, 33699)     = 0",
    "4277  brk(0x55d84fa30000)               = 0x55d84fa30000",
    "3363  mremap(0x7f66c24a3000, 278528, 315392, MREMAP_MAYMOVE) = 0x7f66c2456000",
    "13333 mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0 <unfinished ...>",
    "13334 madvise(0x7f8cc5042000, 4096, MADV_DONTNEED) = 0",
    "13333 <... mmap resumed>)               = 0x7f8cc5042000",
    "13335 munmap(0x7f8cc503d000, 4096 <unfinished ...>",
    "13334 rt_sigprocmask(SIG_SETMASK, [], NULL, 8) = 0",
    "13335 <... munmap resumed>)             = 0",
];

#[test]
#[ignore = "a measurement: run in release mode with --nocapture"]
fn parse_throughput() {
    let n = 1_000_000;
    let mut text = String::with_capacity(n * 100);
    for i in 0..n {
        text.push_str(LINES[i % LINES.len()]);
        text.push('\n');
    }
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        let parsed = parse(&text);
        best = best.min(start.elapsed().as_secs_f64());
        assert!(parsed.errors.is_empty());
        assert_eq!(parsed.records.len(), n - n / 6);
    }
    println!(
        "parse: {n} lines, {:.1} MB in {:.3} s: {:.2} M lines/s, {:.0} MB/s",
        text.len() as f64 / 1e6,
        best,
        n as f64 / best / 1e6,
        text.len() as f64 / best / 1e6
    );
}
