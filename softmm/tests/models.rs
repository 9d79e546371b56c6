//! Concurrency models of softmm's protocols, run on the production code under a model
//! checker: loom (`RUSTFLAGS="--cfg loom --cfg crossbeam_loom"`, exhaustive within a
//! preemption bound) or shuttle (`RUSTFLAGS="--cfg shuttle"`, randomized schedules).
//! Every atomic, lock and spawn of the library goes through `softmm::sync`, which both
//! checkers replace; in these builds page tables use the 4-entry `Model` geometry and
//! physical memory is a few 16-frame chunks, so a model tracks a few hundred atomics.
//!
//! Each model has a mutant: `--cfg mutant="NAME"` removes one protocol step from the
//! library, and the model must then fail (`scripts/check-models.sh` runs both ways):
//!
//! | model | protocol | mutant |
//! |---|---|---|
//! | `rcu_synchronize_waits_for_reader` | a grace period outlasts every reader that began before it | `rcu_no_grace_period` |
//! | `table_free_waits_for_walker` | unlinked page tables are freed only after RCU | `early_table_free` |
//! | `racing_faults_install_one_frame` | a fault re-checks the PTE under the PTL | `fault_skip_pte_recheck` |
//! | `cow_copy_holds_its_source` | a copy-on-write copy holds a reference to its source until the PTE is re-checked | `cow_copy_without_ref` |
//! | `vma_read_lock_excludes_the_epoch_writer` | no reader holds a VMA its writer locked in this epoch | `vma_lock_skip_seq`, `vma_lock_seen_inclusive` |
//! | `write_unlock_ends_the_epoch` | releasing `mmap_lock` releases every VMA write lock of its epoch | `vma_lock_no_epoch_end` |
//! | `fault_under_vma_lock_vs_munmap` | munmap write-locks the VMA: no page is left mapped after it returns | `munmap_skip_vma_lock` |
//! | `tree_readers_see_old_or_new` | VMA-tree nodes replaced by a commit are freed only after RCU | `tree_early_free` |
//! | `tlb_flush_waits_for_the_access_window` | a TLB flush returns only when no CPU can still use a translation it dropped | `tlb_flush_no_wait` |
//! | `tlb_fill_rechecks_its_entry` | a CPU re-reads the entry after caching a translation, before using it: no stale fill survives a flush | `tlb_fill_no_recheck` |
//! | `table_free_waits_for_tlb_walkers` | unlinked tables are freed only after the access windows that may be walking them closed | `tlb_table_free_no_wait` |
//! | `zap_frees_only_after_the_tlb_flush` | a zap frees what it unmapped only after every CPU's TLB dropped it (a whole munmap against a CPU's miss, walk, fill and hit; freed tables poisoned) | `tlb_free_before_flush` |
//! | `zap_drops_the_reference_only_after_clearing` | a zap clears an entry before it drops the entry's reference: a lockless reader holds the frame or finds the entry gone | `zap_put_before_clear` |
#![cfg(any(loom, shuttle))]

use std::sync::Arc;

use softmm::{
    Access, AddressSpace, Config, PageAddr, PhysMem,
    abi::*,
    config::FaultLocking,
    testing::{
        self, AssumeLayoutHeld, Backing, CpuTlb, FlushRange, FrameStash, Gather, Hit, Level, Model,
        PageTable, Perm, Pte, PteFlags, Shootdown, Vma, VmaLock, VmaTree,
        sync::{AtomicBool, AtomicU64, Ordering, rcu, spawn},
    },
    vma::VM_READ,
};

/// Run `f` under the configured checker (loom: at most `preemptions` preemptions per
/// execution; bounded exploration is what makes a whole page fault tractable).
fn check(preemptions: usize, f: impl Fn() + Send + Sync + 'static) {
    #[cfg(loom)]
    {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(preemptions);
        // A whole munmap (a tree commit, a page-table gather, their RCU batches, each
        // closed with a crossbeam flush) is thousands of modelled steps: loom's default
        // of 1000 per execution is too few for the fault models.
        b.max_branches = 20_000;
        b.check(f);
    }
    #[cfg(shuttle)]
    {
        let _ = preemptions;
        let iterations = std::env::var("SHUTTLE_ITERATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3000);
        // PCT finds bugs that need one thread delayed across many steps of another
        // (a walker paused between two levels while a table is freed and reused);
        // random scheduling covers the rest.
        let f = Arc::new(f);
        let g = Arc::clone(&f);
        shuttle::check_pct(move || g(), iterations, 3);
        shuttle::check_random(move || f(), iterations);
    }
}

/// An address space small enough for a model: a few 16-frame chunks, the mmap area in
/// the 4-level × 4-entry model geometry.
fn model_space(fault_locking: FaultLocking) -> Arc<AddressSpace> {
    let config = Config {
        phys_mem_bytes: 4 * 16 * 4096,
        mmap_base: 0x8_0000,
        mmap_min_addr: 0x1000,
        brk_start: 0x1_0000,
        fault_locking,
        ..Config::default()
    };
    AddressSpace::new(config).unwrap()
}

/// One private writable page at a fixed address.
fn map_one_page(mm: &AddressSpace) -> u64 {
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    mm.mmap(0x4_0000, 4096, PROT_READ | PROT_WRITE, flags, -1, 0)
        .unwrap()
}

const POISON: u64 = 0xdead;

/// What a reused frame's new owner writes into it.
const REUSED: u8 = 0xee;

#[test]
fn rcu_synchronize_waits_for_reader() {
    check(3, || {
        let published = Arc::new(AtomicBool::new(true));
        let data = Arc::new(AtomicU64::new(1));
        let reader = {
            let (published, data) = (Arc::clone(&published), Arc::clone(&data));
            spawn(move || {
                let g = rcu::read_lock();
                if published.load(Ordering::SeqCst) {
                    // Whoever saw the object published may use it until its read
                    // section ends: the writer must not have poisoned it yet.
                    assert_ne!(data.load(Ordering::SeqCst), POISON, "read after free");
                }
                drop(g);
            })
        };
        published.store(false, Ordering::SeqCst);
        rcu::synchronize();
        data.store(POISON, Ordering::SeqCst);
        reader.join().unwrap();
    });
}

#[test]
fn table_free_waits_for_walker() {
    check(2, || {
        let pm = PhysMem::new(4 * 16 * 4096).unwrap();
        let pt: Arc<PageTable<Model>> = Arc::new(PageTable::new(&pm).unwrap());
        let va = PageAddr::down(0x5000);
        // The entry owns the frame's count; the zap below hands it to the gather.
        let data = testing::alloc_zeroed(&pm).unwrap().into_raw();
        // SAFETY: the main thread is the only one that walks with the layout held; the
        // spawned walker is lockless.
        let layout = unsafe { AssumeLayoutHeld::new() };
        pt.locked(&layout)
            .pte_lock(va, true)
            .unwrap()
            .unwrap()
            .set(Pte::leaf(data, PteFlags::P | PteFlags::U));
        let walker = {
            let pt = Arc::clone(&pt);
            spawn(move || {
                let g = rcu::read_lock();
                // A lockless walk may see the mapping or nothing, never a table page
                // that was freed and reused (which would read as garbage).
                match pt.lockless(&g).lookup(va.get()) {
                    None => {}
                    Some((e, level)) => assert!(
                        level == Level::PTE && e.pfn() == data,
                        "walked into a reused table: {e:?}"
                    ),
                }
            })
        };
        // Unmap: zap, unlink the tables, free through the gather (RCU)...
        let mut gather = Gather::new(&pm);
        let (end, top) = (va.next_page(), PageAddr::down(1 << 20));
        let walk = pt.locked(&layout);
        walk.zap(va, end, |_, e| gather.add_page(e.pfn()));
        walk.free_tables(&layout, (va, end), (PageAddr::ZERO, top), &mut gather);
        gather.finish();
        // ...then reuse whatever the allocator hands out, writing junk into it as a new
        // owner would. A table freed too early is among these frames.
        let mut reused = Vec::new();
        while let Some(p) = testing::alloc(&pm) {
            let junk = Pte::table(testing::pfn(POISON as u32)).0;
            testing::scribble_table_slots(&pm, &p, junk);
            reused.push(p);
            if reused.len() == 8 {
                break;
            }
        }
        walker.join().unwrap();
        for p in reused {
            testing::scribble_table_slots(&pm, &p, 0);
        }
    });
}

#[test]
fn racing_faults_install_one_frame() {
    check(1, || {
        let mm = model_space(FaultLocking::default());
        let a = map_one_page(&mm);
        let before = mm.phys().frames_in_use();
        let t = {
            let cpu = mm.cpu();
            spawn(move || cpu.write(a + 1, &[2]).unwrap())
        };
        mm.cpu().write(a, &[1]).unwrap();
        t.join().unwrap();
        let mut buf = [0u8; 2];
        mm.cpu().read(a, &mut buf).unwrap();
        assert_eq!(buf, [1, 2], "a write went to a frame that lost the race");
        // One data frame and three tables (PUD, PMD, PTE levels of the model geometry).
        assert_eq!(
            mm.phys().frames_in_use(),
            before + 4,
            "a losing frame leaked"
        );
    });
}

/// A copy-on-write fault copies from a frame it holds a reference to: the zaps that drop
/// the frame's other references meanwhile (the parent unmapping it, the child's own
/// `MADV_DONTNEED`, which runs beside faults under `mmap_lock` read) cannot free it
/// under the copy (`PhysMem::alloc_copy` asserts it in model builds).
#[test]
fn cow_copy_holds_its_source() {
    check(2, || {
        let parent = model_space(FaultLocking::default());
        let a = map_one_page(&parent);
        parent.cpu().write(a, &[7]).unwrap();
        let child = parent.fork().unwrap();
        let t = {
            let cpu = child.cpu();
            spawn(move || cpu.write(a + 1, &[8]).unwrap())
        };
        parent.munmap(a, 4096).unwrap();
        child.madvise(a, 4096, MADV_DONTNEED).unwrap();
        t.join().unwrap();
        // Either the copy was zapped too, or the write came after the zap, to a zero
        // page; never the parent's byte without the child's.
        let mut buf = [0u8; 2];
        child.cpu().read(a, &mut buf).unwrap();
        assert!(buf == [0, 0] || buf == [0, 8], "{buf:?}");
    });
}

#[test]
fn vma_read_lock_excludes_the_epoch_writer() {
    check(3, || {
        // The VMA was write-locked once before, in epoch 1 (so that a reader compares
        // against the mm sequence and records what it saw).
        let mm_seq = Arc::new(AtomicU64::new(2));
        let lock = Arc::new(VmaLock::new());
        lock.start_write(1);
        let writer_in = Arc::new(AtomicBool::new(false));
        let reader_in = Arc::new(AtomicBool::new(false));
        let reader = {
            let (mm_seq, lock) = (Arc::clone(&mm_seq), Arc::clone(&lock));
            let (writer_in, reader_in) = (Arc::clone(&writer_in), Arc::clone(&reader_in));
            // Two faults: the first may record the mm sequence it saw (the VMA's `seen`,
            // rule 5), maybe the odd one of the writer's epoch; the second must not take
            // that for proof that the epoch is over.
            spawn(move || {
                for _ in 0..2 {
                    if lock.try_read(&mm_seq).is_ok() {
                        reader_in.store(true, Ordering::SeqCst);
                        assert!(
                            !writer_in.load(Ordering::SeqCst),
                            "read-locked a VMA write-locked in the current epoch"
                        );
                        reader_in.store(false, Ordering::SeqCst);
                        lock.end_read();
                    }
                }
            })
        };
        // mmap_write_lock opens epoch 3; the writer locks the VMA and works on it.
        mm_seq.fetch_add(1, Ordering::SeqCst);
        lock.start_write(3);
        writer_in.store(true, Ordering::SeqCst);
        assert!(
            !reader_in.load(Ordering::SeqCst),
            "the writer got a VMA a reader still holds"
        );
        writer_in.store(false, Ordering::SeqCst);
        // mmap_write_unlock: the epoch ends, every VMA lock of it with it.
        mm_seq.fetch_add(1, Ordering::SeqCst);
        reader.join().unwrap();
        assert!(
            lock.try_read(&mm_seq).is_ok(),
            "unlock must release the VMA"
        );
        lock.end_read();
    });
}

/// Releasing `mmap_lock` ends the writer's epoch, and with it every VMA write lock taken
/// in it: a VMA the writer locked and kept in the tree (fork write-locks every VMA of the
/// parent) takes faults on the per-VMA path again as soon as the call returns. A fault
/// racing the writer may fall back to `mmap_lock`; one that starts after it must not.
#[test]
fn write_unlock_ends_the_epoch() {
    check(2, || {
        let mm = model_space(FaultLocking::PerVma);
        let a = map_one_page(&mm);
        let cpu = mm.cpu();
        cpu.write(a, &[1]).unwrap();
        let t = {
            let cpu = cpu.clone();
            spawn(move || cpu.write(a, &[2]).unwrap())
        };
        let child = mm.fork().unwrap();
        t.join().unwrap();
        // Fork write-protected the page: unless the racing write broke copy-on-write
        // after the fork, this write faults.
        let before = mm.counters.vma_lock_fallbacks.sum();
        cpu.write(a, &[3]).unwrap();
        assert_eq!(
            mm.counters.vma_lock_fallbacks.sum(),
            before,
            "a fault after the writer returned found its VMA still write-locked"
        );
        drop(child);
    });
}

#[test]
fn fault_under_vma_lock_vs_munmap() {
    check(1, || {
        let mm = model_space(FaultLocking::PerVma);
        let baseline = mm.phys().frames_in_use();
        let a = map_one_page(&mm);
        // A first write gives the VMA its anon identity (and puts it in the CPU's VMA
        // cache); DONTNEED empties it again, so the racing write faults on the per-VMA
        // fast path, through the cached VMA.
        let cpu = mm.cpu();
        cpu.write(a, &[1]).unwrap();
        mm.madvise(a, 4096, MADV_DONTNEED).unwrap();
        // Either before munmap (then zapped) or after it (SIGSEGV).
        let t = spawn(move || {
            let _ = cpu.write(a, &[2]);
        });
        mm.munmap(a, 4096).unwrap();
        t.join().unwrap();
        rcu::barrier();
        assert_eq!(
            mm.phys().frames_in_use(),
            baseline,
            "a fault installed a page after munmap had zapped the range"
        );
    });
}

#[test]
fn tree_readers_see_old_or_new() {
    // Model builds give tree nodes 4 entries: five VMAs make two leaves under a root,
    // and the edit below copies the root and both leaves, splits nothing but refills
    // one leaf to the brim, then rebalances the other (entries move between leaves).
    // Nodes freed in model builds are poisoned (and leaked), and every node a reader
    // enters is checked for the poison.
    check(3, || {
        let vma = |s: u64, e: u64| {
            let (s, e) = (PageAddr::down(s), PageAddr::down(e));
            Arc::new(Vma::new(s, e, VM_READ, s.vpn(), Backing::Anon))
        };
        let tree = Arc::new(VmaTree::new());
        let mut e = tree.edit();
        for s in [0x2000, 0x6000, 0xa000, 0xe000, 0x12000] {
            e.insert(vma(s, s + 0x2000));
        }
        e.commit();
        let reader = {
            let tree = Arc::clone(&tree);
            spawn(move || {
                let g = rcu::read_lock();
                let at = |a: u64| tree.find(a, &g).map(|v| (v.start.get(), v.end.get()));
                // Replaced by its two halves: the old VMA or the new half.
                let r = at(0x2400);
                assert!(
                    matches!(r, Some((0x2000, 0x4000) | (0x2000, 0x3000))),
                    "{r:x?}"
                );
                // Untouched, though its entry moves to the other leaf.
                assert_eq!(at(0xa400), Some((0xa000, 0xc000)));
                // Removed: the old VMA or nothing.
                let r = at(0x12400);
                assert!(matches!(r, Some((0x12000, 0x14000)) | None), "{r:x?}");
                drop(g);
            })
        };
        let mut e = tree.edit();
        let old = e.find(0x2000).unwrap();
        e.remove(&old);
        e.insert(vma(0x2000, 0x3000));
        e.insert(vma(0x3000, 0x4000));
        let gone = e.find(0x12000).unwrap();
        e.remove(&gone);
        e.commit();
        assert!(old.is_detached() && gone.is_detached());
        // Let the batch run (after the reader's grace period).
        rcu::synchronize();
        reader.join().unwrap();
    });
}

#[test]
fn tlb_flush_waits_for_the_access_window() {
    // A CPU cached a translation of a frame; a flusher clears the entry, flushes and
    // frees the frame. A window of the CPU that finds the translation must never see
    // the frame freed: either the flusher waited for the window, or the window found
    // the translation invalidated.
    check(3, || {
        let sd = Arc::new(Shootdown::new());
        let cpu = CpuTlb::new(&sd);
        let page = PageAddr::down(0x1000);
        // The translation, cached by a walk in an earlier window.
        assert!(cpu.enter().fill(page, model_hit(), Perm::READ, || true));
        let freed = Arc::new(AtomicBool::new(false));
        let user = {
            let freed = Arc::clone(&freed);
            spawn(move || {
                for _ in 0..2 {
                    let window = cpu.enter();
                    if window.lookup(0x1000, Perm::READ).is_some() {
                        // SeqCst: the model's stand-in for reading the frame's bytes.
                        assert!(!freed.load(Ordering::SeqCst), "used a freed frame");
                    }
                    drop(window);
                }
            })
        };
        sd.flush(FlushRange::Pages(page, page.next_page()));
        // SeqCst: the frame's next owner may now write it.
        freed.store(true, Ordering::SeqCst);
        user.join().unwrap();
    });
}

#[test]
fn tlb_fill_rechecks_its_entry() {
    // A CPU walks (reads a leaf entry) and caches what it found while a flusher clears
    // the entry, flushes and frees the frame: the CPU must never use the translation
    // with the frame freed, in the window that cached it or a later one. Either its
    // re-read of the entry sees it cleared, or the flusher sees the tag and waits.
    check(3, || {
        let sd = Arc::new(Shootdown::new());
        let cpu = CpuTlb::new(&sd);
        let page = PageAddr::down(0x1000);
        let leaf = Arc::new(AtomicU64::new(1));
        let freed = Arc::new(AtomicBool::new(false));
        let user = {
            let (leaf, freed) = (Arc::clone(&leaf), Arc::clone(&freed));
            spawn(move || {
                {
                    let w = cpu.enter();
                    // Acquire: as a walk's loads.
                    let seen = leaf.load(Ordering::Acquire);
                    let still = || leaf.load(Ordering::Acquire) == seen;
                    if seen != 0 && w.fill(page, model_hit(), Perm::READ, still) {
                        // SeqCst: the model's stand-in for reading the frame's bytes.
                        assert!(!freed.load(Ordering::SeqCst), "used a freed frame");
                    }
                }
                let w = cpu.enter();
                if w.lookup(0x1000, Perm::READ).is_some() {
                    // SeqCst: as above.
                    assert!(!freed.load(Ordering::SeqCst), "a stale fill survived");
                }
            })
        };
        // Release: as a zap's swap.
        leaf.store(0, Ordering::Release);
        sd.flush(FlushRange::Pages(page, page.next_page()));
        // SeqCst: the frame's next owner may now write it.
        freed.store(true, Ordering::SeqCst);
        user.join().unwrap();
    });
}

#[test]
fn table_free_waits_for_tlb_walkers() {
    // A CPU walks inside its access window, with no RCU read section, through an upper
    // entry into a table; the writer unlinks the table, shoots down (no translation in
    // the range: none was cached) and frees it. The walk must never read the table
    // after it was freed: either the writer waited for the window, or the walk found
    // the table unlinked.
    check(3, || {
        let sd = Arc::new(Shootdown::new());
        let cpu = CpuTlb::new(&sd);
        let upper = Arc::new(AtomicU64::new(1));
        let freed = Arc::new(AtomicBool::new(false));
        let walker = {
            let (upper, freed) = (Arc::clone(&upper), Arc::clone(&freed));
            spawn(move || {
                let _w = cpu.enter();
                // Acquire: as a walk's loads.
                if upper.load(Ordering::Acquire) != 0 {
                    // SeqCst: the model's stand-in for reading the table's entries.
                    assert!(!freed.load(Ordering::SeqCst), "walked a freed table");
                }
            })
        };
        // Release: as the unlinking store.
        upper.store(0, Ordering::Release);
        sd.shoot(None, true);
        // SeqCst: the table's next owner may now write it.
        freed.store(true, Ordering::SeqCst);
        walker.join().unwrap();
    });
}

/// A translation for the TLB models (its bytes are never touched).
fn model_hit() -> Hit {
    Hit {
        pfn: testing::pfn(1),
        host: std::ptr::NonNull::dangling(),
        zero: false,
    }
}

#[test]
fn zap_frees_only_after_the_tlb_flush() {
    // A CPU reads a page twice (a TLB miss that walks and fills, then a hit) while
    // munmap zaps it and frees its tables: the frame must stay allocated for as long as
    // the CPU may still use the translation it cached (model builds check that a pinned
    // frame is allocated before and after each use), whether the flush found the CPU's
    // tag or the CPU's re-check found the entry cleared; and the tables its walk reads
    // must not be freed under it (model builds poison freed tables).
    check(2, || {
        let mm = model_space(FaultLocking::PerVma);
        let a = map_one_page(&mm);
        mm.cpu().write(a, &[7]).unwrap();
        let cpu = mm.cpu();
        let reader = spawn(move || {
            let mut b = [0u8; 1];
            for _ in 0..2 {
                if cpu.read(a, &mut b).is_ok() {
                    assert_eq!(b, [7]);
                }
            }
        });
        mm.munmap(a, 4096).unwrap();
        // Run the RCU callback that frees the unlinked tables (model builds poison
        // them): a walk still inside them then fails.
        rcu::synchronize();
        reader.join().unwrap();
    });
}

#[test]
fn zap_drops_the_reference_only_after_clearing() {
    // A reader takes a reference to a page without a lock (GUP-fast: increment unless
    // zero, then re-check the entry) while MADV_DONTNEED zaps it and a third thread
    // allocates a frame and fills it with its own bytes. Model builds have one allocator
    // shard, so the frame a zap frees is the one the reuser gets. The zap clears the
    // entry before it drops the entry's reference: the reader then either holds the
    // frame before it can be freed, or finds the entry gone and faults in the zero page;
    // never a frame freed while still mapped and already the reuser's. (The mutant's
    // failing schedule needs two preemptions: the zap paused between its put and its
    // clear, while the reuser and then the reader run.)
    check(3, || {
        let mm = model_space(FaultLocking::default());
        let a = map_one_page(&mm);
        mm.cpu().write(a, &[7]).unwrap();
        let cpu = mm.cpu();
        let reader = spawn(move || {
            let page = cpu.get_page(a, Access::Read).unwrap();
            let mut first = [0u8; 1];
            page.read(0, &mut first);
            assert!(
                first == [7] || first == [0],
                "read the reuser's bytes: {first:?}"
            );
            // The reference keeps the frame allocated: it is not reused while held.
            let mut second = [0u8; 1];
            page.read(0, &mut second);
            assert_eq!(second, first, "a held frame was reused");
        });
        let reuser = {
            let pm = Arc::clone(mm.phys());
            spawn(move || {
                // Held until the reader is done: freed again, the frame would fail the
                // reader's speculative reference instead of showing it these bytes.
                let mut stash = FrameStash::new(&pm);
                if let Some(f) = testing::alloc(&pm) {
                    testing::fill_frame(&f, REUSED);
                    stash.keep(f);
                }
                stash
            })
        };
        mm.madvise(a, 4096, MADV_DONTNEED).unwrap();
        reader.join().unwrap();
        drop(reuser.join().unwrap());
    });
}
