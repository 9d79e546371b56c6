use std::{collections::HashSet, sync::Arc};

use super::*;

fn small() -> Arc<PhysMem> {
    PhysMem::new(if cfg!(miri) {
        2 * HUGE_SIZE
    } else {
        4 * HUGE_SIZE
    })
    .expect("reserve")
}

mod allocation {
    use super::*;

    #[test]
    fn zero_frame_reads_zero_and_counts_as_used() {
        let pm = small();
        let mut buf = [1u8; 64];
        let zero = pm
            .try_get(pm.zero_pfn())
            .expect("the zero frame is never free");
        zero.read(100, &mut buf);
        assert_eq!(buf, [0u8; 64]);
        assert!(zero.is_zero_frame());
        assert_eq!(pm.frames_in_use(), 1);
        drop(zero.clone());
        drop(zero);
        assert_eq!(pm.frames_in_use(), 1, "the zero frame is never freed");
    }

    #[test]
    fn exhaustion_is_none_then_reuse_after_free() {
        let pm = small();
        let mut got = Vec::new();
        while let Some(p) = pm.alloc(PageFlags::empty()) {
            got.push(p);
        }
        assert_eq!(
            got.len() as u32 + 1,
            pm.nframes(),
            "every frame but the zero frame"
        );
        let distinct: HashSet<Pfn> = got.iter().map(FrameRef::pfn).collect();
        assert_eq!(distinct.len(), got.len(), "no frame handed out twice");
        assert!(pm.alloc_zeroed(PageFlags::empty()).is_none());
        assert!(pm.alloc_huge_zeroed(PageFlags::empty()).is_none());
        let victim = got.pop().unwrap();
        let pfn = victim.pfn();
        drop(victim);
        let again = pm.alloc(PageFlags::empty()).expect("the freed frame");
        assert_eq!(again.pfn(), pfn, "a freed frame is reused");
        drop(got);
        drop(again);
        assert_eq!(pm.frames_in_use(), 1);
    }

    #[test]
    fn alloc_zeroed_clears_old_contents() {
        let pm = small();
        let p = pm.alloc(PageFlags::empty()).unwrap();
        p.pin().fill(0, 0xab, 4096);
        let pfn = p.pfn();
        drop(p);
        let q = pm.alloc_zeroed(PageFlags::empty()).unwrap();
        assert_eq!(q.pfn(), pfn);
        let mut buf = [0xffu8; 4096];
        q.read(0, &mut buf);
        assert!(buf.iter().all(|&b| b == 0));
    }

    #[test]
    fn huge_frames_are_aligned_and_returned() {
        let pm = small();
        let h = pm.alloc_huge_zeroed(PageFlags::ANON).unwrap();
        assert_eq!(h.pfn().0 % HUGE_FRAMES, 0);
        assert!(pm.meta(h.pfn()).has(PageFlags::HEAD));
        assert!(pm.meta(Pfn(h.pfn().0 + 1)).has(PageFlags::TAIL));
        assert_eq!(pm.frames_in_use(), 1 + HUGE_FRAMES as u64);
        drop(h);
        assert_eq!(pm.frames_in_use(), 1);
    }

    #[test]
    fn references_own_their_count() {
        let pm = small();
        let p = pm.alloc(PageFlags::ANON).unwrap();
        let pfn = p.pfn();
        let m = pm.meta(pfn);
        let q = pm.try_get(pfn).expect("an allocated frame");
        assert_eq!(m.refcount(), 2);
        let r = q.clone();
        assert_eq!(m.refcount(), 3);
        drop((p, q));
        assert_eq!(m.refcount(), 1, "each drop puts one count");
        assert_eq!(pm.frames_in_use(), 2);
        drop(r);
        assert_eq!(m.refcount(), 0);
        assert!(
            pm.try_get(pfn).is_none(),
            "increment-unless-zero refuses a free frame"
        );
        assert_eq!(pm.frames_in_use(), 1);
    }

    #[test]
    fn a_count_moves_into_raw_and_back() {
        let pm = small();
        let p = pm.alloc_zeroed(PageFlags::ANON).unwrap();
        let pfn = p.into_raw();
        assert_eq!(pm.meta(pfn).refcount(), 1, "into_raw keeps the count");
        // SAFETY: (1) the count `into_raw` kept.
        drop(unsafe { FrameRef::from_raw(&pm, pfn) });
        assert_eq!(pm.frames_in_use(), 1);
    }
}

mod concurrency {
    use super::*;

    #[test]
    fn threads_allocate_disjoint_frames() {
        let pm = small();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let pm = Arc::clone(&pm);
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    for round in 0..if cfg!(miri) { 20 } else { 200 } {
                        if let Some(p) = pm.alloc(PageFlags::empty()) {
                            p.pin().fill(0, round as u8, 16);
                            mine.push(p.into_raw());
                        }
                        if round % 3 == 0
                            && let Some(p) = mine.pop()
                        {
                            // SAFETY: (1) the count `into_raw` kept.
                            drop(unsafe { FrameRef::from_raw(&pm, p) });
                        }
                    }
                    mine
                })
            })
            .collect();
        let all: Vec<Pfn> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let distinct: HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len());
        assert_eq!(pm.frames_in_use(), 1 + all.len() as u64);
        for p in all {
            // SAFETY: (1) the count `into_raw` kept in the thread that allocated it.
            drop(unsafe { FrameRef::from_raw(&pm, p) });
        }
        assert_eq!(pm.frames_in_use(), 1);
    }
}
