//! Software TLBs with shootdown, checked with bytes: after munmap, mprotect,
//! MADV_DONTNEED, fork or a copy-on-write break returns, a CPU on another thread whose
//! TLB was warm uses no old translation; idle CPUs never hold a call up.
#![cfg(not(any(loom, shuttle)))]

use std::sync::{Arc, Barrier};

use softmm::{AddressSpace, Config, SigInfo, abi::*};

const RW: u64 = PROT_READ | PROT_WRITE;
const ANON: u64 = MAP_PRIVATE | MAP_ANONYMOUS;

/// Run `cpu_side` on another thread with its own CPU and `main_side` here, in lock
/// step: `step(n)` on either side waits for the other to reach its own `step(n)`.
fn lockstep(
    mm: &Arc<AddressSpace>,
    cpu_side: impl FnOnce(&softmm::Cpu, &dyn Fn()) + Send,
    main_side: impl FnOnce(&dyn Fn()),
) {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let cpu = mm.cpu();
        let b = &barrier;
        s.spawn(move || {
            cpu_side(&cpu, &|| {
                b.wait();
            })
        });
        main_side(&|| {
            barrier.wait();
        });
    });
}

#[test]
fn no_cpu_reads_a_page_after_munmap_returns() {
    let mm = AddressSpace::new(Config::default()).unwrap();
    let a = mm.mmap(0, 4096, RW, ANON, -1, 0).unwrap();
    mm.cpu().write(a, b"old").unwrap();
    lockstep(
        &mm,
        |cpu, step| {
            assert_eq!(cpu.read_u8(a).unwrap(), b'o', "TLB warm");
            step();
            step();
            let e = cpu.read_u8(a).unwrap_err().siginfo();
            assert_eq!((e.signo, e.code), (SigInfo::SIGSEGV, SigInfo::SEGV_MAPERR));
        },
        |step| {
            step();
            mm.munmap(a, 4096).unwrap();
            step();
        },
    );
}

#[test]
fn no_cpu_writes_through_a_permission_mprotect_removed() {
    let mm = AddressSpace::new(Config::default()).unwrap();
    let a = mm.mmap(0, 4096, RW, ANON, -1, 0).unwrap();
    lockstep(
        &mm,
        |cpu, step| {
            cpu.write_u64_le(a, 1).unwrap();
            step();
            step();
            let e = cpu.write_u64_le(a, 2).unwrap_err().siginfo();
            assert_eq!((e.signo, e.code), (SigInfo::SIGSEGV, SigInfo::SEGV_ACCERR));
            assert_eq!(cpu.read_u64_le(a).unwrap(), 1, "reads still allowed");
        },
        |step| {
            step();
            mm.mprotect(a, 4096, PROT_READ).unwrap();
            step();
        },
    );
}

#[test]
fn no_cpu_reads_old_bytes_after_dontneed() {
    let mm = AddressSpace::new(Config::default()).unwrap();
    let a = mm.mmap(0, 2 * 4096, RW, ANON, -1, 0).unwrap();
    mm.cpu().fill(a, 0x5a, 2 * 4096).unwrap();
    lockstep(
        &mm,
        |cpu, step| {
            assert_eq!(cpu.read_u64_le(a + 4096).unwrap(), 0x5a5a_5a5a_5a5a_5a5a);
            step();
            step();
            assert_eq!(
                cpu.read_u64_le(a + 4096).unwrap(),
                0,
                "discarded memory reads 0"
            );
        },
        |step| {
            step();
            mm.madvise(a, 2 * 4096, MADV_DONTNEED).unwrap();
            // Memory the call freed is reused and written at once.
            let b = mm.mmap(0, 64 * 4096, RW, ANON, -1, 0).unwrap();
            mm.cpu().fill(b, 0xee, 64 * 4096).unwrap();
            step();
        },
    );
}

#[test]
fn a_write_after_fork_returns_stays_in_the_parent() {
    let mm = AddressSpace::new(Config::default()).unwrap();
    let a = mm.mmap(0, 4096, RW, ANON, -1, 0).unwrap();
    let child = std::sync::Mutex::new(None);
    lockstep(
        &mm,
        |cpu, step| {
            cpu.write_u8(a, b'x').unwrap(); // a warm, writable translation
            step();
            step();
            cpu.write_u8(a, b'p').unwrap(); // after fork: must break COW
        },
        |step| {
            step();
            *child.lock().unwrap() = Some(mm.fork().unwrap());
            step();
        },
    );
    let child = child.into_inner().unwrap().unwrap();
    assert_eq!(child.cpu().read_u8(a).unwrap(), b'x');
    assert_eq!(mm.cpu().read_u8(a).unwrap(), b'p');
}

#[test]
fn every_cpu_sees_a_copy_on_write_break_made_by_another() {
    let mm = AddressSpace::new(Config::default()).unwrap();
    let a = mm.mmap(0, 4096, RW, ANON, -1, 0).unwrap();
    mm.cpu().write_u8(a, b'x').unwrap();
    let _child = mm.fork().unwrap(); // the page is now shared, read-only
    lockstep(
        &mm,
        |cpu, step| {
            assert_eq!(
                cpu.read_u8(a).unwrap(),
                b'x',
                "a warm read-only translation"
            );
            step();
            step();
            assert_eq!(
                cpu.read_u8(a).unwrap(),
                b'w',
                "the writer's copy, not the old"
            );
        },
        |step| {
            step();
            mm.cpu().write_u8(a, b'w').unwrap(); // copy-on-write on this thread
            step();
        },
    );
    // The zero page too: a read maps it, a write replaces it.
    let z = mm.mmap(0, 4096, RW, ANON, -1, 0).unwrap();
    lockstep(
        &mm,
        |cpu, step| {
            assert_eq!(cpu.read_u8(z).unwrap(), 0);
            step();
            step();
            assert_eq!(cpu.read_u8(z).unwrap(), 7);
        },
        |step| {
            step();
            mm.cpu().write_u8(z, 7).unwrap();
            step();
        },
    );
}

#[test]
fn idle_cpus_never_hold_up_a_munmap() {
    let mm = AddressSpace::new(Config::default()).unwrap();
    let a = mm.mmap(0, 16 * 4096, RW, ANON, -1, 0).unwrap();
    // Eight CPUs with warm TLBs, then idle (no access in progress) on parked threads.
    let cpus: Vec<_> = (0..8).map(|_| mm.cpu()).collect();
    for c in &cpus {
        c.fill(a, 1, 16 * 4096).unwrap();
    }
    let (targeted, _, _) = mm.tlb_flushes();
    for p in 0..16 {
        mm.munmap(a + p * 4096, 4096).unwrap();
    }
    assert_eq!(
        mm.tlb_flushes().0,
        targeted + 16,
        "one targeted flush per munmap"
    );
    for c in &cpus {
        assert!(c.read_u8(a).is_err());
    }
}
