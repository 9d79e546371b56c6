//! Unit tests of the system calls through the library API.

use std::sync::Arc;

use super::*;
use crate::abi::*;

/// Physical memory of the test address spaces (shrunk under Miri, which models every
/// byte).
const PHYS: u64 = if cfg!(miri) { 8 << 20 } else { 64 << 20 };

fn mm() -> Arc<AddressSpace> {
    AddressSpace::new(Config {
        phys_mem_bytes: PHYS,
        ..Config::default()
    })
    .unwrap()
}

const RW: u64 = PROT_READ | PROT_WRITE;
const ANON: u64 = MAP_PRIVATE | MAP_ANONYMOUS;

fn layout(mm: &AddressSpace) -> Vec<(u64, u64, String)> {
    mm.vmas()
        .into_iter()
        .map(|v| (v.start, v.end, v.perms))
        .collect()
}

mod placement {
    use super::*;

    #[test]
    fn top_down_below_mmap_base() {
        let mm = mm();
        let a = mm.mmap(0, 8192, RW, ANON, -1, 0).unwrap();
        assert_eq!(a, crate::addr::MMAP_BASE - 8192);
        let b = mm.mmap(0, 4096, PROT_READ, ANON, -1, 0).unwrap();
        assert_eq!(b, a - 4096);
    }

    #[test]
    fn hint_is_used_when_free() {
        let mm = mm();
        assert_eq!(mm.mmap(0x1000_0000, 4096, RW, ANON, -1, 0), Ok(0x1000_0000));
        // Occupied: placed elsewhere.
        let c = mm.mmap(0x1000_0000, 4096, RW, ANON, -1, 0).unwrap();
        assert_ne!(c, 0x1000_0000);
    }

    #[test]
    fn fixed_below_min_addr_is_eperm() {
        let mm = mm();
        assert_eq!(
            mm.mmap(0x1000, 4096, RW, ANON | MAP_FIXED, -1, 0),
            Err(Errno::EPERM)
        );
    }
}

mod merge_split {
    use super::*;

    #[test]
    fn adjacent_anon_merges_and_mprotect_splits() {
        let mm = mm();
        let a = mm
            .mmap(0x2000_0000, 4096, RW, ANON | MAP_FIXED, -1, 0)
            .unwrap();
        mm.mmap(a + 4096, 4096, RW, ANON | MAP_FIXED, -1, 0)
            .unwrap();
        assert_eq!(layout(&mm), vec![(a, a + 8192, "rw-p".into())]);
        mm.mprotect(a, 4096, PROT_READ).unwrap();
        assert_eq!(
            layout(&mm),
            vec![
                (a, a + 4096, "r--p".into()),
                (a + 4096, a + 8192, "rw-p".into())
            ]
        );
    }

    #[test]
    fn max_map_count_is_enomem() {
        let mm = AddressSpace::new(Config {
            phys_mem_bytes: PHYS,
            max_map_count: 10,
            ..Config::default()
        })
        .unwrap();
        let base = 0x3000_0000u64;
        let mut n = 0;
        let err = loop {
            let prot = if n % 2 == 0 { PROT_READ } else { RW };
            match mm.mmap(base + n * 4096, 4096, prot, ANON | MAP_FIXED, -1, 0) {
                Ok(_) => n += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err, Errno::ENOMEM);
        assert_eq!(
            mm.map_count(),
            11,
            "Linux allows map_count == max + 1 through mmap"
        );
        assert_eq!(mm.munmap(base + 4096, 4096), Ok(0));
    }
}

mod contents {
    use super::*;

    #[test]
    fn zero_fill_write_read_and_dontneed() {
        let mm = mm();
        let cpu = mm.cpu();
        let a = mm.mmap(0, 3 * 4096, RW, ANON, -1, 0).unwrap();
        let mut buf = [1u8; 16];
        cpu.read(a + 4000, &mut buf).unwrap();
        assert_eq!(buf, [0u8; 16]);
        cpu.write(a + 4090, b"crossing pages").unwrap();
        cpu.read(a + 4090, &mut buf[..14]).unwrap();
        assert_eq!(&buf[..14], b"crossing pages");
        mm.madvise(a, 3 * 4096, MADV_DONTNEED).unwrap();
        cpu.read(a + 4090, &mut buf[..14]).unwrap();
        assert_eq!(&buf[..14], &[0u8; 14]);
    }

    #[test]
    fn mremap_moves_frames_not_bytes() {
        let mm = mm();
        let cpu = mm.cpu();
        let blocker = mm.mmap(0, 4096, PROT_READ, ANON, -1, 0).unwrap();
        let a = mm.mmap(0, 2 * 4096, RW, ANON, -1, 0).unwrap();
        assert_eq!(a + 8192, blocker, "top-down: right below");
        cpu.write(a, b"hello").unwrap();
        let before = cpu
            .translate(a, crate::mm::fault::Access::Read)
            .unwrap()
            .pfn();
        let b = mm.mremap(a, 8192, 8192 * 4, MREMAP_MAYMOVE, 0).unwrap();
        assert_ne!(a, b);
        assert_eq!(
            cpu.translate(b, crate::mm::fault::Access::Read)
                .unwrap()
                .pfn(),
            before
        );
        let mut buf = [0u8; 5];
        cpu.read(b, &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        assert!(cpu.read(a, &mut buf).is_err());
    }

    #[test]
    fn segv_codes() {
        let mm = mm();
        let cpu = mm.cpu();
        let a = mm.mmap(0, 4096, PROT_READ, ANON, -1, 0).unwrap();
        let e = cpu.write(a, b"x").unwrap_err();
        assert_eq!(
            e.fault,
            crate::mm::fault::Fault::Segv {
                addr: a,
                code: crate::mm::fault::SegvCode::AccErr
            }
        );
        mm.munmap(a, 4096).unwrap();
        let e = cpu.write(a, b"x").unwrap_err();
        assert_eq!(
            e.fault,
            crate::mm::fault::Fault::Segv {
                addr: a,
                code: crate::mm::fault::SegvCode::MapErr
            }
        );
    }

    /// A first write fault chooses its anon identity under a `mmap_lock` trylock without
    /// leaving the fast path (`vmf_anon_prepare`), shares a mergeable neighbour's, and
    /// falls back to `mmap_lock` read while a writer holds it.
    #[test]
    fn first_write_fault_takes_its_anon_identity_on_the_fast_path() {
        let mm = mm();
        let cpu = mm.cpu();
        let (hits, falls) = (
            || mm.counters.vma_lock_faults.sum(),
            || mm.counters.vma_lock_fallbacks.sum(),
        );
        let anon_at = |x: u64| {
            let g = crate::sync::rcu::read_lock();
            mm.tree.find(x, &g).and_then(|v| v.anon())
        };
        // Two VMAs side by side that differ only in PROT_EXEC: not merged, but the
        // second may share the first's identity (`find_mergeable_anon_vma`).
        let a = mm.mmap(0, 2 * 4096, RW, ANON, -1, 0).unwrap();
        let rwx = RW | PROT_EXEC;
        assert_eq!(
            mm.mmap(a + 4096, 4096, rwx, ANON | MAP_FIXED, -1, 0),
            Ok(a + 4096)
        );
        cpu.write(a, b"1").unwrap();
        assert_eq!((hits(), falls()), (1, 0));
        let first = anon_at(a);
        assert!(first.is_some());
        cpu.write(a + 4096, b"2").unwrap();
        assert_eq!(anon_at(a + 4096), first, "the neighbour's identity");
        assert_eq!((hits(), falls()), (2, 0));

        // With `mmap_lock` held for write, the trylock fails: fall back, wait, succeed.
        let b = mm.mmap(0, 4096, rwx, ANON, -1, 0).unwrap();
        assert_eq!(anon_at(b), None);
        let held = std::sync::Barrier::new(2);
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let w = mm.write_lock();
                held.wait();
                // Hold it until the fault has fallen back (or finished without).
                while falls() == 0 && !done.load(std::sync::atomic::Ordering::SeqCst) {
                    std::thread::yield_now();
                }
                drop(w);
            });
            held.wait();
            cpu.write(b, b"3").unwrap();
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        assert_eq!(falls(), 1, "the writer held mmap_lock: fall back");
        let mut r = [0u8; 1];
        cpu.read(b, &mut r).unwrap();
        assert_eq!(r, *b"3");
    }

    /// The CPU's cached VMA (`VmaCache`) must never outlive the layout it came from: a
    /// replaced VMA is detached and its read lock fails, so the fault sees the new one.
    #[test]
    fn a_cached_vma_never_outlives_its_layout() {
        let mm = mm();
        let cpu = mm.cpu();
        let a = mm.mmap(0, 4 * 4096, RW, ANON, -1, 0).unwrap();
        cpu.write(a, b"1").unwrap(); // cached: the RW VMA
        // Replaced by a read-only VMA over the same range: the next page's write fault
        // must see PROT_READ.
        mm.mprotect(a, 4 * 4096, PROT_READ).unwrap();
        let e = cpu.write(a + 4096, b"2").unwrap_err();
        assert_eq!(
            e.fault,
            crate::mm::fault::Fault::Segv {
                addr: a + 4096,
                code: crate::mm::fault::SegvCode::AccErr
            }
        );
        // Writable again, then unmapped and mapped anew as a file-less shared mapping:
        // the page faulted now is a fresh zero page of the new VMA, not the old one.
        mm.mprotect(a, 4 * 4096, RW).unwrap();
        cpu.write(a + 2 * 4096, b"3").unwrap();
        mm.munmap(a, 4 * 4096).unwrap();
        let e = cpu.write(a + 3 * 4096, b"4").unwrap_err();
        assert_eq!(
            e.fault,
            crate::mm::fault::Fault::Segv {
                addr: a + 3 * 4096,
                code: crate::mm::fault::SegvCode::MapErr
            }
        );
        let fixed = MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED;
        assert_eq!(mm.mmap(a, 4 * 4096, RW, fixed, -1, 0), Ok(a));
        let mut b = [9u8; 1];
        cpu.read(a + 2 * 4096, &mut b).unwrap();
        assert_eq!(b, [0]);
    }
}

mod teardown {
    use super::*;

    #[test]
    fn dropping_the_address_space_frees_every_frame() {
        let pm = crate::frame::PhysMem::new(PHYS).unwrap();
        let base = pm.frames_in_use();
        {
            let mm = AddressSpace::with_phys(&pm, Config::default()).unwrap();
            let cpu = mm.cpu();
            let a = mm.mmap(0, 64 * 4096, RW, ANON, -1, 0).unwrap();
            cpu.fill(a, 0x5a, 64 * 4096).unwrap();
            let s = mm
                .mmap(0, 4 * 4096, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
                .unwrap();
            cpu.fill(s, 1, 4 * 4096).unwrap();
            mm.mremap(a, 64 * 4096, 128 * 4096, MREMAP_MAYMOVE, 0)
                .unwrap();
            mm.brk(mm.heap().1 + 3 * 4096).unwrap();
            assert!(pm.frames_in_use() > base + 68);
        }
        rcu::barrier();
        rcu::barrier();
        assert_eq!(pm.frames_in_use(), base);
    }

    #[test]
    fn out_of_frames_is_an_error_not_a_panic() {
        let pm = crate::frame::PhysMem::new(2 << 20).unwrap();
        let mm = AddressSpace::with_phys(&pm, Config::default()).unwrap();
        let cpu = mm.cpu();
        let a = mm.mmap(0, 4 << 20, RW, ANON, -1, 0).unwrap();
        let e = cpu.fill(a, 1, 4 << 20).unwrap_err();
        assert!(matches!(e.fault, crate::mm::fault::Fault::Oom { .. }));
        assert_eq!(e.signal, crate::mm::fault::Signal::Bus);
        // MAP_POPULATE beyond memory still succeeds (populate is best effort).
        assert!(mm.munmap(a, 4 << 20).is_ok());
    }
}

mod concurrency {
    use super::*;
    use crate::mm::fault::Access;

    #[test]
    fn racing_write_faults_on_one_page_install_one_frame() {
        for round in 0..if cfg!(miri) { 3 } else { 50 } {
            let pm = crate::frame::PhysMem::new(16 << 20).unwrap();
            let mm = AddressSpace::with_phys(&pm, Config::default()).unwrap();
            let a = mm.mmap(0, 4096, RW, ANON, -1, 0).unwrap();
            let before = pm.frames_in_use();
            let hs: Vec<_> = (0..4u8)
                .map(|i| {
                    let cpu = mm.cpu();
                    std::thread::spawn(move || {
                        cpu.write(a + u64::from(i), &[i + 1]).unwrap();
                        cpu.translate(a, Access::Read).unwrap().pfn()
                    })
                })
                .collect();
            let pfns: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
            assert!(
                pfns.windows(2).all(|w| w[0] == w[1]),
                "round {round}: every thread sees the winner's frame"
            );
            let mut buf = [0u8; 4];
            mm.cpu().read(a, &mut buf).unwrap();
            assert_eq!(
                buf,
                [1, 2, 3, 4],
                "round {round}: no write was lost to a losing frame"
            );
            assert_eq!(pm.meta(pfns[0]).mapcount(), 1);
            // One data frame plus the PUD, PMD and PTE tables; losers' frames were freed.
            assert_eq!(pm.frames_in_use(), before + 4, "round {round}");
        }
    }

    #[test]
    fn faults_and_layout_changes_in_parallel_keep_contents() {
        let mm = mm();
        let a = mm.mmap(0, 64 * 4096, RW, ANON, -1, 0).unwrap();
        let writer = {
            let cpu = mm.cpu();
            std::thread::spawn(move || {
                for round in 0..20u8 {
                    for p in 0..64u64 {
                        cpu.fill(a + p * 4096, round, 4096).unwrap();
                    }
                    let mut buf = vec![0u8; 64 * 4096];
                    cpu.read(a, &mut buf).unwrap();
                    assert!(
                        buf.iter().all(|&b| b == round),
                        "round {round}: contents changed under us"
                    );
                }
            })
        };
        let churn = {
            let mm = Arc::clone(&mm);
            std::thread::spawn(move || {
                for _ in 0..200 {
                    let b = mm.mmap(0, 16384, RW, ANON, -1, 0).unwrap();
                    mm.cpu().write(b, b"churn").unwrap();
                    mm.mprotect(b, 4096, PROT_READ).unwrap();
                    mm.munmap(b, 16384).unwrap();
                }
            })
        };
        writer.join().unwrap();
        churn.join().unwrap();
        assert_eq!(mm.smaps_field(a, "Rss"), Ok(256));
    }
}

mod query {
    use super::*;

    #[test]
    fn is_unmapped_sees_every_vma_touching_the_range() {
        let mm = mm();
        let a = mm.mmap(0x1000_0000, 3 * 4096, RW, ANON, -1, 0).unwrap();
        mm.munmap(a + 4096, 4096).unwrap();
        assert!(mm.is_unmapped(a + 4096, a + 2 * 4096));
        assert!(!mm.is_unmapped(a + 4096, a + 2 * 4096 + 1));
        assert!(!mm.is_unmapped(a - 4096, a + 1));
        assert!(mm.is_unmapped(a - 4096, a));
        assert!(mm.is_unmapped(a + 3 * 4096, u64::MAX));
        assert!(!mm.is_unmapped(0, u64::MAX));
    }
}

mod fault_around {
    use super::*;

    /// Rss (kB) after a read of the first page of 16 shared pages whose first 4 are
    /// cached, with `fault_around_bytes` = `bytes`.
    fn rss_after_read(bytes: u64) -> u64 {
        let mm = AddressSpace::new(Config {
            phys_mem_bytes: PHYS,
            fault_around_bytes: bytes,
            ..Config::default()
        })
        .unwrap();
        let shared = MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED;
        let a = mm.mmap(0x1000_0000, 16 * 4096, RW, shared, -1, 0).unwrap();
        let cpu = mm.cpu();
        cpu.fill(a, 1, 4 * 4096).unwrap();
        mm.madvise(a, 16 * 4096, MADV_DONTNEED).unwrap();
        assert_eq!(mm.smaps_field(a, "Rss"), Ok(0));
        cpu.read(a, &mut [0u8; 1]).unwrap();
        mm.smaps_field(a, "Rss").unwrap()
    }

    #[test]
    fn maps_the_cached_block_unless_turned_off() {
        assert_eq!(rss_after_read(64 << 10), 16);
        assert_eq!(rss_after_read(8192), 8);
        assert_eq!(rss_after_read(4096), 4);
        assert_eq!(rss_after_read(0), 4);
    }
}

mod commit {
    use super::*;
    use crate::config::Overcommit;

    const PAGE: u64 = 4096;

    /// An address space counting with 64 MiB of RAM and no swap.
    fn mm_with(mode: Overcommit) -> Arc<AddressSpace> {
        AddressSpace::new(Config {
            phys_mem_bytes: PHYS,
            overcommit_memory: mode,
            commit_ram_bytes: 64 << 20,
            commit_swap_bytes: 0,
            ..Config::default()
        })
        .unwrap()
    }

    #[test]
    fn committed_follows_accounted_mappings() {
        let mm = mm_with(Overcommit::Guess);
        let a = mm.mmap(0, 10 * PAGE, RW, ANON, -1, 0).unwrap();
        assert_eq!(mm.committed_pages(), 10);
        mm.munmap(a, 4 * PAGE).unwrap();
        assert_eq!(mm.committed_pages(), 6);
        // Read-only and never written: mprotect returns the charge; writable takes it.
        mm.mprotect(a + 4 * PAGE, 6 * PAGE, PROT_READ).unwrap();
        assert_eq!(mm.committed_pages(), 0);
        mm.mprotect(a + 4 * PAGE, 2 * PAGE, RW).unwrap();
        assert_eq!(mm.committed_pages(), 2);
        // MAP_NORESERVE and read-only memory are not charged; shared memory is, whole.
        mm.mmap(0, 8 * PAGE, RW, ANON | MAP_NORESERVE, -1, 0)
            .unwrap();
        mm.mmap(0, 8 * PAGE, PROT_READ, ANON, -1, 0).unwrap();
        assert_eq!(mm.committed_pages(), 2);
        let s = mm.mmap(0, 8 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_eq!(mm.committed_pages(), 10);
        mm.munmap(s.unwrap(), 8 * PAGE).unwrap();
        crate::sync::rcu::barrier();
        assert_eq!(mm.committed_pages(), 2);
        // brk is accounted; a fork charges the child's copies; exit returns them.
        let b = mm.brk(0).unwrap();
        mm.brk(b + 3 * PAGE).unwrap();
        assert_eq!(mm.committed_pages(), 5);
        let child = mm.fork().unwrap();
        assert_eq!(mm.committed_pages(), 10);
        drop(child);
        assert_eq!(mm.committed_pages(), 5);
        drop(mm);
    }

    #[test]
    fn heuristic_refuses_one_request_beyond_ram_and_swap() {
        let mm = mm_with(Overcommit::Guess);
        assert_eq!(mm.mmap(0, 65 << 20, RW, ANON, -1, 0), Err(Errno::ENOMEM));
        // Many requests each below the figure all pass.
        for _ in 0..3 {
            mm.mmap(0, 60 << 20, RW, ANON, -1, 0).unwrap();
        }
    }

    #[test]
    fn always_refuses_nothing() {
        let mm = mm_with(Overcommit::Always);
        mm.mmap(0, 1 << 40, RW, ANON, -1, 0).unwrap();
        assert_eq!(mm.committed_pages(), 1 << 28);
    }

    #[test]
    fn never_keeps_the_total_below_the_limit() {
        let mm = mm_with(Overcommit::Never);
        // 50% of 64 MiB: 8192 pages.
        assert_eq!(mm.commit_limit_pages(), 8192);
        mm.mmap(0, 16 << 20, RW, ANON, -1, 0).unwrap();
        // 4096 + 4096 is not below 8192 less the user reserve (4096 / 32 pages).
        assert_eq!(mm.mmap(0, 16 << 20, RW, ANON, -1, 0), Err(Errno::ENOMEM));
        // MAP_NORESERVE is not honoured: the mapping is accounted (no "nr") and refused.
        let nr = ANON | MAP_NORESERVE;
        assert_eq!(mm.mmap(0, 16 << 20, RW, nr, -1, 0), Err(Errno::ENOMEM));
        let a = mm.mmap(0, 15 << 20, RW, nr, -1, 0).unwrap();
        assert_eq!(mm.vmflags(a).unwrap(), "rd wr mr mw me ac");
        assert_eq!(mm.committed_pages(), 4096 + 3840);
        // mprotect and fork are checked too.
        mm.munmap(a, 15 << 20).unwrap();
        let r = mm.mmap(0, 16 << 20, PROT_READ, ANON, -1, 0).unwrap();
        assert_eq!(mm.mprotect(r, 16 << 20, RW), Err(Errno::ENOMEM));
        assert_eq!(mm.fork().map(|_| ()), Err(Errno::ENOMEM));
        // overcommit_kbytes replaces the ratio.
        let big = AddressSpace::new(Config {
            overcommit_kbytes: 1 << 20,
            ..mm.config().clone()
        })
        .unwrap();
        assert_eq!(big.commit_limit_pages(), 1 << 18);
        big.mmap(0, 512 << 20, RW, ANON, -1, 0).unwrap();
    }

    #[test]
    fn mremap_charges_growth_and_dontunmap_copies() {
        let mm = mm_with(Overcommit::Never);
        let a = mm.mmap(0, 2000 * PAGE, RW, ANON, -1, 0).unwrap();
        // The source keeps its charge: the copy is charged whole.
        let b = mm
            .mremap(
                a,
                2000 * PAGE,
                2000 * PAGE,
                MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
                0,
            )
            .unwrap();
        assert_eq!(mm.committed_pages(), 4000);
        // Growing is charged by the growth; a growth past the limit is refused and
        // changes nothing.
        mm.mremap(b, 2000 * PAGE, 3000 * PAGE, MREMAP_MAYMOVE, 0)
            .unwrap();
        assert_eq!(mm.committed_pages(), 5000);
        let grow = mm.mremap(a, 2000 * PAGE, 6000 * PAGE, MREMAP_MAYMOVE, 0);
        assert_eq!(grow, Err(Errno::ENOMEM));
        assert_eq!(mm.committed_pages(), 5000);
        // Shrinking returns the charge of the part unmapped.
        mm.mremap(a, 2000 * PAGE, 500 * PAGE, 0, 0).unwrap();
        assert_eq!(mm.committed_pages(), 3500);
    }
}

mod droppable {
    use super::*;

    #[test]
    fn pressure_drops_droppable_pages_first() {
        let mm = AddressSpace::new(Config {
            phys_mem_bytes: 4 << 20,
            ..Config::default()
        })
        .unwrap();
        let cpu = mm.cpu();
        let dp = MAP_DROPPABLE | MAP_ANONYMOUS;
        let d = mm.mmap(0, 600 * 4096, RW, dp, -1, 0).unwrap();
        cpu.fill(d, 0x64, 600 * 4096).unwrap();
        // Not enough frames for both: the droppable pages make room.
        let a = mm.mmap(0, 600 * 4096, RW, ANON, -1, 0).unwrap();
        cpu.fill(a, 0x61, 600 * 4096).unwrap();
        let mut page = [0u8; 4096];
        cpu.read(a + 599 * 4096, &mut page).unwrap();
        assert!(page.iter().all(|&b| b == 0x61));
        cpu.read(d, &mut page).unwrap();
        assert!(page.iter().all(|&b| b == 0));
        // Plain memory is never dropped: with nothing droppable left, a fault fails.
        let b = mm.mmap(0, 600 * 4096, RW, ANON, -1, 0).unwrap();
        assert_eq!(
            cpu.fill(b, 0x62, 600 * 4096).map_err(|e| e.signal),
            Err(crate::mm::fault::Signal::Bus)
        );
        cpu.read(a, &mut page).unwrap();
        assert!(page.iter().all(|&b| b == 0x61));
    }
}
