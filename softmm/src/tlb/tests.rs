use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering::SeqCst},
};

use super::*;

fn pages(s: u64, n: u64) -> FlushRange {
    let s = PageAddr::down(s);
    FlushRange::Pages(s, s.add_pages(n))
}

/// Cache a translation of the page at `va`, as a walk in a window would.
fn cache(cpu: &CpuTlb, va: u64) {
    let w = cpu.enter();
    let page = PageAddr::down(va);
    w.reserve(page);
    w.fill(page, crate::frame::Pfn(7), Perm::READ);
}

#[test]
fn flushes_are_counted_by_kind() {
    let sd = Shootdown::new();
    sd.flush(pages(0x1000, 1));
    assert_eq!(sd.skipped.load(SeqCst), 1, "no CPU: nothing to flush");
    let cpu = CpuTlb::new(&sd);
    sd.flush(pages(0x1000, 1));
    assert_eq!(
        sd.skipped.load(SeqCst),
        2,
        "a CPU holding nothing is not asked"
    );
    cache(&cpu, 0x1000);
    assert!(cpu.enter().lookup(0x1000, Perm::READ).is_some());
    sd.flush(pages(0x9000, 4));
    assert_eq!(
        sd.skipped.load(SeqCst),
        3,
        "nor one holding nothing in the range"
    );
    sd.flush(pages(0x1000, FLUSH_CEILING_PAGES));
    sd.flush(pages(0x1000, FLUSH_CEILING_PAGES + 1));
    sd.flush(FlushRange::All);
    assert_eq!(
        [&sd.targeted, &sd.full, &sd.skipped].map(|c| c.load(SeqCst)),
        [1, 2, 3]
    );
    // The CPU takes the requests at its next window, and holds nothing after.
    assert_eq!(cpu.shared.requested.load(SeqCst), 3);
    let w = cpu.enter();
    assert!(w.lookup(0x1000, Perm::READ).is_none());
    drop(w);
    assert_eq!(cpu.handled.get(), 3);
    assert!(cpu.shared.pending.lock().ranges.is_empty());
    sd.flush(FlushRange::All);
    assert_eq!(sd.skipped.load(SeqCst), 4);
    // A dropped CPU is no longer flushed.
    cache(&cpu, 0x2000);
    drop(cpu);
    sd.flush(FlushRange::All);
    assert_eq!(sd.skipped.load(SeqCst), 5);
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
    // Translations cached, windows closed: every CPU is idle. The flushes return (a
    // flusher that waited for an idle CPU would hang here).
    for c in &cpus {
        cache(c, 0x4000);
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
    cache(&cpu, 0x1000);
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
