//! The emulator-facing access API of `Cpu`: typed loads and stores in both byte
//! orders, guest atomics, instruction fetch, probing, forced (debugger) writes, and the
//! `siginfo` of the faults they deliver.
#![cfg(not(any(loom, shuttle)))]

use std::sync::Arc;

use softmm::{Access, AddressSpace, Config, Errno, Machine, SigInfo, abi::*};

const RW: u64 = PROT_READ | PROT_WRITE;
const ANON: u64 = MAP_PRIVATE | MAP_ANONYMOUS;

fn space() -> Arc<AddressSpace> {
    AddressSpace::new(Config::default()).unwrap()
}

/// `(si_signo, si_code, si_addr)` of a failed access.
fn info<T: std::fmt::Debug>(r: Result<T, softmm::AccessFault>) -> (i32, i32, u64) {
    let i = r.unwrap_err().siginfo();
    (i.signo, i.code, i.addr)
}

#[test]
fn typed_loads_and_stores_keep_the_byte_order_asked_for() {
    let mm = space();
    let cpu = mm.cpu();
    let a = mm.mmap(0, 8192, RW, ANON, -1, 0).unwrap();
    cpu.write_u32_le(a, 0x1122_3344).unwrap();
    cpu.write_u32_be(a + 4, 0x1122_3344).unwrap();
    let mut raw = [0u8; 8];
    cpu.read(a, &mut raw).unwrap();
    assert_eq!(raw, [0x44, 0x33, 0x22, 0x11, 0x11, 0x22, 0x33, 0x44]);
    assert_eq!(cpu.read_u32_be(a + 4).unwrap(), 0x1122_3344);
    assert_eq!(cpu.read_u16_le(a).unwrap(), 0x3344);
    assert_eq!(cpu.read_u16_be(a).unwrap(), 0x4433);
    cpu.write_u8(a + 9, 0xab).unwrap();
    assert_eq!(cpu.read_u8(a + 9).unwrap(), 0xab);
    // A u64 across the page boundary, and one that runs off the end of the mapping:
    // the first page's bytes land, the fault names the second page.
    cpu.write_u64_le(a + 4092, 0x0807_0605_0403_0201).unwrap();
    assert_eq!(cpu.read_u64_le(a + 4092).unwrap(), 0x0807_0605_0403_0201);
    assert_eq!(cpu.read_u64_be(a + 4092).unwrap(), 0x0102_0304_0506_0708);
    let e = cpu.write_u64_le(a + 8190, u64::MAX).unwrap_err();
    assert_eq!((e.addr, e.done), (a + 8192, 2));
    assert_eq!(cpu.read_u16_le(a + 8190).unwrap(), 0xffff);
    assert_eq!(
        e.siginfo(),
        SigInfo {
            signo: SigInfo::SIGSEGV,
            code: SigInfo::SEGV_MAPERR,
            addr: a + 8192
        }
    );
    assert_eq!(Errno::from(e), Errno::EFAULT);
}

#[test]
fn guest_atomics_operate_on_aligned_little_endian_words() {
    let mm = space();
    let cpu = mm.cpu();
    let a = mm.mmap(0, 4096, RW, ANON, -1, 0).unwrap();
    cpu.write_u64_le(a, 5).unwrap();
    assert_eq!(
        cpu.cmpxchg_u64(a, 4, 9).unwrap(),
        5,
        "no store on a mismatch"
    );
    assert_eq!(cpu.cmpxchg_u64(a, 5, 9).unwrap(), 5);
    assert_eq!(cpu.read_u64_le(a).unwrap(), 9);
    assert_eq!(cpu.xchg_u64(a, u64::MAX).unwrap(), 9);
    assert_eq!(cpu.fetch_add_u64(a, 2).unwrap(), u64::MAX);
    assert_eq!(cpu.read_u64_le(a).unwrap(), 1, "wrapping add");
    cpu.write_u32_le(a + 8, 0b1100).unwrap();
    assert_eq!(cpu.fetch_and_u32(a + 8, 0b1010).unwrap(), 0b1100);
    assert_eq!(cpu.fetch_or_u32(a + 8, 0b0001).unwrap(), 0b1000);
    assert_eq!(cpu.read_u32_le(a + 8).unwrap(), 0b1001);
    assert_eq!(cpu.xchg_u32(a + 12, 0x0102_0304).unwrap(), 0);
    assert_eq!(
        cpu.read_u8(a + 12).unwrap(),
        0x04,
        "little-endian in memory"
    );
    assert_eq!(
        cpu.cmpxchg_u32(a + 12, 0x0102_0304, 7).unwrap(),
        0x0102_0304
    );
    assert_eq!(cpu.fetch_add_u32(a + 12, 1).unwrap(), 7);
    assert_eq!(cpu.fetch_and_u64(a, 0).unwrap(), 1);
    assert_eq!(cpu.fetch_or_u64(a, 0x30).unwrap(), 0);
    // Misaligned: SIGBUS/BUS_ADRALN, nothing stored.
    let r = cpu.fetch_add_u64(a + 4, 1);
    assert_eq!(info(r), (SigInfo::SIGBUS, SigInfo::BUS_ADRALN, a + 4));
    assert_eq!(cpu.read_u64_le(a).unwrap(), 0x30);
    // A locked instruction needs write permission even when it would store nothing.
    let ro = mm.mmap(0, 4096, PROT_READ, ANON, -1, 0).unwrap();
    let r = cpu.cmpxchg_u32(ro, 1, 2);
    assert_eq!(info(r), (SigInfo::SIGSEGV, SigInfo::SEGV_ACCERR, ro));
}

#[test]
fn guest_atomics_from_two_threads_lose_no_update() {
    let mm = space();
    let a = mm.mmap(0, 4096, RW, ANON, -1, 0).unwrap();
    let n = 20_000u64;
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let cpu = mm.cpu();
            std::thread::spawn(move || {
                for _ in 0..n {
                    cpu.fetch_add_u64(a, 1).unwrap();
                    // A compare-exchange loop on the second word.
                    let mut cur = cpu.read_u64_le(a + 8).unwrap();
                    loop {
                        match cpu.cmpxchg_u64(a + 8, cur, cur + 3).unwrap() {
                            seen if seen == cur => break,
                            seen => cur = seen,
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let cpu = mm.cpu();
    assert_eq!(cpu.read_u64_le(a).unwrap(), 2 * n);
    assert_eq!(cpu.read_u64_le(a + 8).unwrap(), 6 * n);
}

#[test]
fn fetch_needs_execute_permission() {
    let mm = space();
    let cpu = mm.cpu();
    let code = mm.mmap(0, 4096, RW | PROT_EXEC, ANON, -1, 0).unwrap();
    let data = mm.mmap(0, 4096, RW, ANON, -1, 0).unwrap();
    cpu.write(code, &[0x90, 0xc3]).unwrap();
    cpu.write(data, &[0x90, 0xc3]).unwrap();
    let mut insn = [0u8; 2];
    cpu.fetch(code, &mut insn).unwrap();
    assert_eq!(insn, [0x90, 0xc3]);
    let r = cpu.fetch(data, &mut insn);
    assert_eq!(info(r), (SigInfo::SIGSEGV, SigInfo::SEGV_ACCERR, data));
    // After mprotect the same page fetches.
    mm.mprotect(data, 4096, PROT_READ | PROT_EXEC).unwrap();
    cpu.fetch(data, &mut insn).unwrap();
    assert_eq!(insn, [0x90, 0xc3]);
}

#[test]
fn probe_faults_pages_in_and_transfers_nothing() {
    let mm = space();
    let cpu = mm.cpu();
    let a = mm.mmap(0, 3 * 4096, RW, ANON, -1, 0).unwrap();
    assert_eq!(mm.resident(a, 3 * 4096).unwrap(), 0);
    cpu.probe(a + 4096, 2 * 4096, Access::Write).unwrap();
    assert_eq!(mm.resident(a, 3 * 4096).unwrap(), 2);
    assert_eq!(cpu.read_u64_le(a + 4096).unwrap(), 0);
    let r = cpu.probe(a + 2 * 4096, 2 * 4096, Access::Read);
    let e = r.unwrap_err();
    assert_eq!((e.addr, e.done), (a + 3 * 4096, 4096));
    mm.mprotect(a, 4096, PROT_READ).unwrap();
    cpu.probe(a, 4096, Access::Read).unwrap();
    let r = cpu.probe(a, 1, Access::Write);
    assert_eq!(info(r), (SigInfo::SIGSEGV, SigInfo::SEGV_ACCERR, a));
}

#[test]
fn a_forced_write_gets_private_memory_its_own_copy() {
    let mm = space();
    let cpu = mm.cpu();
    // Read-only private anonymous memory: the guest cannot write, a debugger can.
    let ro = mm.mmap(0, 4096, PROT_READ, ANON, -1, 0).unwrap();
    let r = cpu.write(ro, b"bp");
    assert_eq!(info(r), (SigInfo::SIGSEGV, SigInfo::SEGV_ACCERR, ro));
    cpu.write_forced(ro + 16, &[0xcc]).unwrap();
    assert_eq!(cpu.read_u8(ro + 16).unwrap(), 0xcc);
    assert!(
        cpu.write(ro, b"bp").is_err(),
        "still read-only to the guest"
    );
    // Twice on the same page: the copy it owns is written in place.
    cpu.write_forced(ro + 17, &[0xcd]).unwrap();
    assert_eq!(cpu.read_u16_le(ro + 16).unwrap(), 0xcdcc);
    // PROT_NONE private memory too; the guest sees the bytes once it may read.
    let none = mm.mmap(0, 4096, PROT_NONE, ANON, -1, 0).unwrap();
    cpu.write_forced(none, b"loader").unwrap();
    assert!(cpu.read_u8(none).is_err());
    mm.mprotect(none, 4096, PROT_READ).unwrap();
    let mut b = [0u8; 6];
    cpu.read(none, &mut b).unwrap();
    assert_eq!(&b, b"loader");
    // Unmapped memory is still SEGV_MAPERR.
    mm.munmap(none, 4096).unwrap();
    let r = cpu.write_forced(none, b"x");
    assert_eq!(info(r), (SigInfo::SIGSEGV, SigInfo::SEGV_MAPERR, none));
}

#[test]
fn a_forced_write_leaves_the_file_and_shared_mappings_alone() {
    let m = Machine::new(Config::default()).unwrap();
    let pid = m.spawn(None).unwrap();
    let fd = m.memfd_create(pid, b"img", 0).unwrap();
    m.ftruncate(pid, fd, 4096).unwrap();
    let shared = m.mmap(pid, 0, 4096, RW, MAP_SHARED, fd, 0).unwrap();
    let private = m.mmap(pid, 0, 4096, PROT_READ, MAP_PRIVATE, fd, 0).unwrap();
    let shared_ro = m.mmap(pid, 0, 4096, PROT_READ, MAP_SHARED, fd, 0).unwrap();
    let cpu = m.cpu(pid).unwrap();
    cpu.write(shared, b"file").unwrap();
    // The private mapping gets a copy: the file (seen through the shared mapping) keeps
    // its bytes.
    cpu.write_forced(private, b"FILE").unwrap();
    let mut b = [0u8; 4];
    cpu.read(private, &mut b).unwrap();
    assert_eq!(&b, b"FILE");
    cpu.read(shared, &mut b).unwrap();
    assert_eq!(&b, b"file");
    // A shared mapping without write permission refuses a forced write.
    let r = cpu.write_forced(shared_ro, b"x");
    assert_eq!(info(r), (SigInfo::SIGSEGV, SigInfo::SEGV_ACCERR, shared_ro));
}
