use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering::SeqCst},
};

use super::*;

fn pages(s: u64, n: u64) -> FlushRange {
    let s = PageAddr::down(s);
    FlushRange::Pages(s, s.add_pages(n))
}

/// A frame the tests pretend to map (never dereferenced).
fn hit() -> Hit {
    Hit {
        pfn: crate::frame::Pfn(7),
        host: std::ptr::NonNull::dangling(),
        zero: false,
    }
}

/// Cache a translation of the page at `va`, as a walk in a window would.
fn cache(cpu: &CpuTlb, va: u64) {
    let w = cpu.enter();
    assert!(w.fill(PageAddr::down(va), hit(), Perm::READ, || true));
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
    // The same slot, another page: not in the range.
    sd.flush(pages(0x1000 + 4096 * entries::ENTRIES as u64, 1));
    assert_eq!(sd.skipped.load(SeqCst), 4);
    sd.flush(pages(0x1000, FLUSH_CEILING_PAGES));
    assert!(cpu.peek(0x1000, Perm::READ).is_none(), "invalidated");
    cache(&cpu, 0x1000);
    sd.flush(pages(0x1000, FLUSH_CEILING_PAGES + 1));
    cache(&cpu, 0x1000);
    sd.flush(FlushRange::All);
    assert_eq!(
        [&sd.targeted, &sd.full, &sd.skipped].map(|c| c.load(SeqCst)),
        [1, 2, 4]
    );
    assert!(cpu.peek(0x1000, Perm::READ).is_none());
    sd.flush(FlushRange::All);
    assert_eq!(sd.skipped.load(SeqCst), 5);
    // A dropped CPU is no longer flushed.
    cache(&cpu, 0x2000);
    drop(cpu);
    sd.flush(FlushRange::All);
    assert_eq!(sd.skipped.load(SeqCst), 6);
}

#[test]
fn a_hit_needs_the_permission_and_the_page() {
    let sd = Shootdown::new();
    let cpu = CpuTlb::new(&sd);
    let w = cpu.enter();
    assert!(w.fill(
        PageAddr::down(0x5000),
        hit(),
        Perm::READ | Perm::EXEC,
        || true
    ));
    assert!(w.lookup(0x5ff8, Perm::READ).is_some());
    assert!(w.lookup(0x5000, Perm::EXEC).is_some());
    assert!(w.lookup(0x5000, Perm::WRITE).is_none(), "not writable");
    let alias = 0x5000 + 4096 * entries::ENTRIES as u64;
    assert!(
        w.lookup(alias, Perm::READ).is_none(),
        "same slot, other page"
    );
    // A fill whose entry changed before the re-check is dropped.
    assert!(!w.fill(PageAddr::down(0x6000), hit(), Perm::READ, || false));
    assert!(w.lookup(0x6000, Perm::READ).is_none());
}

#[test]
fn an_idle_cpu_never_delays_a_flush() {
    let sd = Shootdown::new();
    let cpus: Vec<_> = (0..4).map(|_| CpuTlb::new(&sd)).collect();
    // Translations cached, windows closed: every CPU is idle. The flushes return (a
    // flusher that waited for an idle CPU would hang here).
    for _ in 0..100 {
        for c in &cpus {
            cache(c, 0x4000);
        }
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
    // The translation was dropped before the flush waited.
    assert!(cpu.peek(0x1000, Perm::READ).is_none());
}
