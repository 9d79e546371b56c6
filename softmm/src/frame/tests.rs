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
        pm.read(pm.zero_pfn(), 100, &mut buf);
        assert_eq!(buf, [0u8; 64]);
        assert_eq!(pm.frames_in_use(), 1);
        pm.put(pm.zero_pfn());
        assert_eq!(pm.frames_in_use(), 1, "the zero frame is never freed");
    }

    #[test]
    fn exhaustion_is_none_then_reuse_after_free() {
        let pm = small();
        let mut got = Vec::new();
        while let Some(p) = pm.alloc(0) {
            got.push(p);
        }
        assert_eq!(
            got.len() as u32 + 1,
            pm.nframes(),
            "every frame but the zero frame"
        );
        let distinct: HashSet<_> = got.iter().collect();
        assert_eq!(distinct.len(), got.len(), "no frame handed out twice");
        assert!(pm.alloc_zeroed(0).is_none());
        assert!(pm.alloc_huge_zeroed(0).is_none());
        let victim = got.pop().unwrap();
        pm.put(victim);
        assert_eq!(pm.alloc(0), Some(victim), "a freed frame is reused");
        for p in got.drain(..) {
            pm.put(p);
        }
        pm.put(victim);
        assert_eq!(pm.frames_in_use(), 1);
    }

    #[test]
    fn alloc_zeroed_clears_old_contents() {
        let pm = small();
        let p = pm.alloc(0).unwrap();
        pm.fill(p, 0, 0xab, 4096);
        pm.put(p);
        let q = pm.alloc_zeroed(0).unwrap();
        assert_eq!(q, p);
        let mut buf = [0xffu8; 4096];
        pm.read(q, 0, &mut buf);
        assert!(buf.iter().all(|&b| b == 0));
        pm.put(q);
    }

    #[test]
    fn huge_frames_are_aligned_and_returned() {
        let pm = small();
        let h = pm.alloc_huge_zeroed(flags::ANON).unwrap();
        assert_eq!(h.0 % HUGE_FRAMES, 0);
        assert!(pm.meta(h).has(flags::HEAD));
        assert!(pm.meta(Pfn(h.0 + 1)).has(flags::TAIL));
        assert_eq!(pm.frames_in_use(), 1 + HUGE_FRAMES as u64);
        pm.put(h);
        assert_eq!(pm.frames_in_use(), 1);
    }

    #[test]
    fn refcounts_and_try_get() {
        let pm = small();
        let p = pm.alloc(flags::ANON).unwrap();
        let m = pm.meta(p);
        assert!(m.try_get());
        assert_eq!(m.refcount(), 2);
        pm.put(p);
        pm.put(p);
        assert_eq!(m.refcount(), 0);
        assert!(!m.try_get(), "increment-unless-zero refuses a free frame");
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
                        if let Some(p) = pm.alloc(0) {
                            pm.fill(p, 0, round as u8, 16);
                            mine.push(p);
                        }
                        if round % 3 == 0
                            && let Some(p) = mine.pop()
                        {
                            pm.put(p);
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
            pm.put(p);
        }
        assert_eq!(pm.frames_in_use(), 1);
    }
}
