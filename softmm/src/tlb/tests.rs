use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering::SeqCst},
};

use super::*;

fn pages(s: u64, n: u64) -> FlushRange {
    let s = PageAddr::down(s);
    FlushRange::Pages(s, s.add_pages(n))
}

#[test]
fn flushes_are_counted_by_kind() {
    let sd = Shootdown::new();
    sd.flush(pages(0x1000, 1));
    assert_eq!(sd.skipped.load(SeqCst), 1, "no CPU: nothing to flush");
    let cpu = CpuTlb::new(&sd);
    sd.flush(pages(0x1000, FLUSH_CEILING_PAGES));
    sd.flush(pages(0x1000, FLUSH_CEILING_PAGES + 1));
    sd.flush(FlushRange::All);
    assert_eq!(
        [&sd.targeted, &sd.full, &sd.skipped].map(|c| c.load(SeqCst)),
        [1, 2, 1]
    );
    // The CPU takes the requests at its next window.
    assert_eq!(cpu.shared.requested.load(SeqCst), 3);
    drop(cpu.enter());
    assert_eq!(cpu.handled.get(), 3);
    assert!(cpu.shared.pending.lock().ranges.is_empty());
    // A dropped CPU is no longer flushed.
    drop(cpu);
    sd.flush(FlushRange::All);
    assert_eq!(sd.skipped.load(SeqCst), 2);
}

#[test]
fn pending_ranges_collapse_to_all_past_the_ceiling() {
    let mut p = Pending::default();
    p.push(pages(0x1000, 2));
    p.push(pages(0x9000, 1));
    assert_eq!(p.ranges.len(), 2);
    p.push(pages(0x10000, FLUSH_CEILING_PAGES + 1));
    assert!(p.all && p.ranges.is_empty());
    p.push(pages(0x1000, 1));
    assert!(p.all && p.ranges.is_empty(), "everything covers any range");
}

#[test]
fn an_idle_cpu_never_delays_a_flush() {
    let sd = Shootdown::new();
    let cpus: Vec<_> = (0..4).map(|_| CpuTlb::new(&sd)).collect();
    // Windows opened and closed: every CPU is idle. The flushes return (a flusher that
    // waited for an idle CPU would hang here).
    for c in &cpus {
        drop(c.enter());
    }
    for _ in 0..100 {
        sd.flush(pages(0x4000, 1));
    }
    assert_eq!(sd.targeted.load(SeqCst), 100);
}

#[test]
fn a_flush_returns_only_after_the_open_window_closes() {
    let sd = Arc::new(Shootdown::new());
    let cpu = CpuTlb::new(&sd);
    let closed = Arc::new(AtomicBool::new(false));
    let window = cpu.enter();
    let flusher = {
        let (sd, closed) = (Arc::clone(&sd), Arc::clone(&closed));
        std::thread::spawn(move || {
            sd.flush(pages(0x1000, 1));
            assert!(closed.load(SeqCst), "returned while the window was open");
        })
    };
    // Give the flusher every chance to return early.
    for _ in 0..1000 {
        std::thread::yield_now();
    }
    closed.store(true, SeqCst);
    drop(window);
    flusher.join().unwrap();
    // The next window takes the request.
    drop(cpu.enter());
    assert_eq!(cpu.handled.get(), 1);
}
