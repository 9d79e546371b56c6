use super::*;
use crate::{addr::HUGE_SIZE, sync::rcu};

/// The page at `va` (test addresses are page aligned).
fn pa(va: u64) -> PageAddr {
    PageAddr::new(va).expect("a page-aligned test address")
}

fn pm() -> Arc<PhysMem> {
    PhysMem::new(if cfg!(miri) {
        2 * HUGE_SIZE
    } else {
        4 * HUGE_SIZE
    })
    .unwrap()
}

/// Zap everything (dropping the frames) so the table can be dropped.
fn clear<G: Geometry>(pt: &PageTable<G>) {
    let mut g = Gather::new(pt.phys());
    pt.zap(pa(0), pa(G::top()), |_, e| g.add_page(e.pfn()));
    g.finish();
}

fn map_one<G: Geometry>(pt: &PageTable<G>, va: u64) -> Pfn {
    // The entry set below owns the allocation's count.
    let pfn = pt.phys().alloc_zeroed(PageFlags::ANON).unwrap().into_raw();
    let l = pt.pte_lock(pa(va), true).unwrap().unwrap();
    assert!(l.get().is_none());
    l.set(Pte::leaf(pfn, PteFlags::P | PteFlags::U | PteFlags::W));
    pfn
}

mod install {
    use super::*;

    #[test]
    fn install_lookup_and_counts() {
        let pm = pm();
        let pt: PageTable = PageTable::new(&pm).unwrap();
        let pfn = map_one(&pt, 0x7fff_0000_1000);
        assert_eq!(pt.nr_tables(), 3, "PUD, PMD and PTE tables");
        let g = rcu::read_lock();
        let (e, level) = pt.lockless(&g).lookup(0x7fff_0000_1000).unwrap();
        assert_eq!((e.pfn(), level), (pfn, Level::PTE));
        assert!(pt.lockless(&g).lookup(0x7fff_0000_2000).is_none());
        assert!(pt.lockless(&g).lookup(0x1000).is_none());
        drop(g);
        clear(&pt);
    }

    #[test]
    fn racing_installers_link_one_table() {
        let pm = pm();
        let pt: Arc<PageTable> = Arc::new(PageTable::new(&pm).unwrap());
        let hs: Vec<_> = (0..4u64)
            .map(|i| {
                let pt = Arc::clone(&pt);
                std::thread::spawn(move || map_one(&*pt, 0x4000_0000 + i * 4096))
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(pt.nr_tables(), 3, "one table per level despite the race");
        let mut n = 0;
        pt.for_each_leaf(pa(0), pa(1 << 47), |_, _| n += 1);
        assert_eq!(n, 4);
        clear(&pt);
    }

    #[test]
    fn tiny_geometry_walks() {
        let pm = pm();
        let pt: PageTable<Tiny> = PageTable::new(&pm).unwrap();
        // Tiny maps 16 pages: 4 entries x 4 entries.
        assert_eq!(Tiny::top(), 16 * 4096);
        for i in 0..16 {
            map_one(&pt, i * 4096);
        }
        assert_eq!(pt.nr_tables(), 4);
        let mut seen = Vec::new();
        pt.for_each_leaf(pa(0), pa(Tiny::top()), |va, _| seen.push(va));
        assert_eq!(seen, (0..16).map(|i| i * 4096).collect::<Vec<_>>());
        let mut g = Gather::new(&pm);
        pt.zap(pa(0), pa(Tiny::top()), |_, e| g.add_page(e.pfn()));
        pt.free_tables(pa(0), pa(Tiny::top()), pa(0), pa(Tiny::top()), &mut g);
        g.finish();
        assert_eq!(pt.nr_tables(), 0);
    }
}

mod free {
    use super::*;

    #[test]
    fn tables_are_freed_only_after_a_grace_period() {
        let pm = pm();
        let pt: PageTable = PageTable::new(&pm).unwrap();
        let base = 0x5000_0000;
        map_one(&pt, base);
        let before = pm.frames_in_use();
        let reader = rcu::read_lock();
        let mut g = Gather::new(&pm);
        pt.zap(pa(base), pa(base + 4096), |_, e| g.add_page(e.pfn()));
        pt.free_tables(pa(base), pa(base + 4096), pa(0), pa(1 << 47), &mut g);
        assert_eq!(g.len(), (1, 3));
        g.finish();
        rcu::flush();
        // The data frame is back at once; the 3 tables wait for our read section.
        assert_eq!(pm.frames_in_use(), before - 1);
        drop(reader);
        rcu::barrier();
        assert_eq!(pm.frames_in_use(), before - 4);
    }

    #[test]
    fn floor_and_ceiling_keep_shared_tables() {
        let pm = pm();
        let pt: PageTable = PageTable::new(&pm).unwrap();
        let base = 0x6000_0000u64;
        let pages: Vec<Pfn> = (0..3).map(|i| map_one(&pt, base + i * 4096)).collect();
        // Unmap the middle page: its neighbours still use the PTE table.
        let mut g = Gather::new(&pm);
        pt.zap(pa(base + 4096), pa(base + 8192), |_, e| g.add_page(e.pfn()));
        pt.free_tables(
            pa(base + 4096),
            pa(base + 8192),
            pa(base + 4096),
            pa(base + 8192),
            &mut g,
        );
        assert_eq!(g.len(), (1, 0), "no table freed");
        g.finish();
        let guard = rcu::read_lock();
        assert_eq!(pt.lockless(&guard).lookup(base).unwrap().0.pfn(), pages[0]);
        assert_eq!(
            pt.lockless(&guard).lookup(base + 8192).unwrap().0.pfn(),
            pages[2]
        );
        assert!(pt.lockless(&guard).lookup(base + 4096).is_none());
        drop(guard);
        let mut g = Gather::new(&pm);
        pt.zap(pa(0), pa(1 << 47), |_, e| g.add_page(e.pfn()));
        pt.free_tables(pa(0), pa(1 << 47), pa(0), pa(1 << 47), &mut g);
        g.finish();
    }

    #[test]
    fn dropping_the_table_returns_every_frame() {
        let pm = pm();
        let base_use = pm.frames_in_use();
        {
            let pt: PageTable = PageTable::new(&pm).unwrap();
            let mut g = Gather::new(&pm);
            for i in 0..10 {
                map_one(&pt, (i << 30) + 0x1000);
            }
            pt.zap(pa(0), pa(1 << 47), |_, e| g.add_page(e.pfn()));
            g.finish();
        }
        rcu::barrier();
        assert_eq!(pm.frames_in_use(), base_use);
    }
}

mod change {
    use super::*;

    #[test]
    fn change_rewrites_flags_and_keeps_frames() {
        let pm = pm();
        let pt: PageTable = PageTable::new(&pm).unwrap();
        let pfn = map_one(&pt, 0x1000_0000);
        pt.change(pa(0), pa(1 << 47), |_, e| {
            e.with_flags((e.flags() & !PteFlags::P & !PteFlags::W) | PteFlags::PROTNONE)
        });
        let g = rcu::read_lock();
        let (e, _) = pt.lockless(&g).lookup(0x1000_0000).unwrap();
        assert!(!e.present() && e.has(PteFlags::PROTNONE) && e.pfn() == pfn);
        drop(g);
        let mut g = Gather::new(&pm);
        pt.zap(pa(0), pa(1 << 47), |_, e| g.add_page(e.pfn()));
        g.finish();
    }
}
