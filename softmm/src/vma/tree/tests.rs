//! Tests of the VMA tree: behaviour, structure after many edits, a differential test
//! against the first tree (`v1.rs`), and a million VMAs.

use std::sync::Arc;

use super::{
    TreeEdit, VmaTree,
    node::{MIN, Summary},
    ptr::{Node, NodeRef},
};
use crate::{
    addr::PageAddr,
    sync::rcu,
    vma::{Backing, Vma, flags::*},
};

mod test_utils {
    use super::*;

    /// A one-off anonymous VMA.
    pub fn vma(start: u64, end: u64) -> Arc<Vma> {
        vma_flags(start, end, VM_READ | VM_MAYREAD)
    }

    /// A VMA with `flags`.
    pub fn vma_flags(start: u64, end: u64, flags: VmFlags) -> Arc<Vma> {
        let (lo, hi) = (PageAddr::down(start), PageAddr::down(end));
        Arc::new(Vma::new(lo, hi, flags, lo.vpn(), Backing::Anon))
    }

    /// A tree holding `ranges`, committed.
    pub fn tree_of(ranges: &[(u64, u64)]) -> VmaTree {
        let t = VmaTree::new();
        let mut e = t.edit();
        for &(s, en) in ranges {
            e.insert(vma(s, en));
        }
        e.commit();
        t
    }

    /// `(start, end)` of each VMA.
    pub fn bounds<'a>(vs: impl IntoIterator<Item = &'a Arc<Vma>>) -> Vec<(u64, u64)> {
        vs.into_iter()
            .map(|v| (v.start.get(), v.end.get()))
            .collect()
    }

    /// Check the structure of the pending tree of `e`: order, fill, heights, and that
    /// every summary a parent keeps is its child's; returns the height.
    #[track_caller]
    pub fn check_structure(e: &TreeEdit<'_>) -> u32 {
        let root = e.root_view().root();
        let (s, n, h) = check_node(root, true);
        assert_eq!(n, e.len(), "VMA count");
        assert_eq!(s.is_none(), e.is_empty());
        h
    }

    /// (summary, VMAs, height) of a subtree.
    #[track_caller]
    fn check_node(n: NodeRef<'_>, root: bool) -> (Option<Summary>, usize, u32) {
        let len = n.hdr().len();
        if !root {
            assert!(len >= MIN, "a non-root node holds {len} < MIN entries");
        }
        match n.get() {
            Node::Leaf(l) => {
                for i in 0..len {
                    let (s, e) = l.range(i);
                    assert!(s < e, "empty entry");
                    assert_eq!(
                        (l.vma(i).start.get(), l.vma(i).end.get()),
                        (s, e),
                        "inline bounds"
                    );
                    if i > 0 {
                        assert!(l.range(i - 1).1 <= s, "leaf entries overlap or unordered");
                    }
                    let guarded = (i..len).find(|&j| l.vma(j).flags.intersects(VM_GROWSDOWN));
                    assert_eq!(l.next_guarded(i), guarded, "guard mask of entry {i}");
                }
                assert_eq!(l.next_guarded(len), None, "guard mask past the end");
                (n.summary(), len, 0)
            }
            Node::Internal(x) => {
                assert!(len >= 2 || !root, "an internal root has one child");
                let mut count = 0;
                let mut height = None;
                for i in 0..len {
                    let (s, c, h) = check_node(x.child(i), false);
                    assert_eq!(s, Some(x.child_summary(i)), "stale summary of child {i}");
                    assert_eq!(*height.get_or_insert(h), h, "uneven heights");
                    if i > 0 {
                        assert!(x.child_summary(i - 1).last_end <= x.child_summary(i).first);
                    }
                    count += c;
                }
                let h = height.unwrap_or(0) + 1;
                assert_eq!(h, n.hdr().height(), "height field");
                (n.summary(), count, h)
            }
        }
    }
}

use test_utils::*;

mod lookups {
    use super::*;

    #[test]
    fn find_and_intersecting() {
        let t = tree_of(&[(0x1000, 0x3000), (0x5000, 0x6000), (0x8000, 0xa000)]);
        let g = rcu::read_lock();
        assert_eq!(t.find(0x1000, &g).map(|v| v.start.get()), Some(0x1000));
        assert_eq!(t.find(0x2fff, &g).map(|v| v.start.get()), Some(0x1000));
        assert!(t.find(0x3000, &g).is_none());
        assert!(t.find(0x0, &g).is_none());
        assert_eq!(t.find_from(0x3000, &g).map(|v| v.start.get()), Some(0x5000));
        assert!(t.find_from(0xa000, &g).is_none());
        let hits: Vec<u64> = t
            .intersecting(0x2000, 0x8001, &g)
            .iter()
            .map(|v| v.start.get())
            .collect();
        assert_eq!(hits, vec![0x1000, 0x5000, 0x8000]);
        assert!(t.intersecting(0x3000, 0x5000, &g).is_empty());
        assert_eq!(t.len(&g), 3);
    }

    #[test]
    fn edit_neighbour_queries() {
        let t = tree_of(&[(0x1000, 0x3000), (0x5000, 0x6000)]);
        let e = t.edit();
        assert_eq!(
            e.ending_at(PageAddr::down(0x3000)).map(|v| v.start.get()),
            Some(0x1000)
        );
        assert!(e.ending_at(PageAddr::down(0x4000)).is_none());
        assert_eq!(
            e.starting_at(PageAddr::down(0x5000)).map(|v| v.end.get()),
            Some(0x6000)
        );
        assert_eq!(e.prev(0x5000).map(|v| v.start.get()), Some(0x1000));
        assert_eq!(e.next(0x3000).map(|v| v.start.get()), Some(0x5000));
        let top = |v: &Vma| v.start.get();
        assert_eq!(
            e.find_gap_top_down(0x1000, 0x1000, 0x10000, top),
            Some(0xf000)
        );
        assert_eq!(
            e.find_gap_top_down(0x2000, 0x1000, 0x6000, top),
            Some(0x3000)
        );
        assert_eq!(e.find_gap_top_down(0x3000, 0x1000, 0x6000, top), None);
        assert_eq!(
            e.find_gap_bottom_up(0x1000, 0x1000, 0x10000, top),
            Some(0x3000)
        );
        assert_eq!(
            e.find_gap_bottom_up(0x3000, 0x1000, 0x10000, top),
            Some(0x6000)
        );
        e.commit();
        // A guard gap below the (grows-down) VMA at 0x5000 makes the 0x3000..0x5000
        // hole too small.
        let t = VmaTree::new();
        let mut e = t.edit();
        e.insert(vma(0x1000, 0x3000));
        e.insert(vma_flags(0x5000, 0x6000, VM_READ | VM_GROWSDOWN));
        let guarded = |v: &Vma| {
            if v.start.get() == 0x5000 {
                0x4000
            } else {
                v.start.get()
            }
        };
        assert_eq!(e.find_gap_top_down(0x2000, 0x1000, 0x6000, guarded), None);
        e.commit();
    }
}

mod publication {
    use super::*;

    #[test]
    fn replace_publishes_at_commit_and_detaches() {
        let t = tree_of(&[(0x1000, 0x4000)]);
        let g = rcu::read_lock();
        let old = Arc::clone(t.find(0x1000, &g).unwrap());
        let mut e = t.edit();
        e.remove(&old);
        e.insert(vma(0x1000, 0x2000));
        e.insert(vma(0x3000, 0x4000));
        // A reader sees the old layout until the commit.
        assert_eq!(t.find(0x2000, &g).map(|v| v.end.get()), Some(0x4000));
        assert!(!old.is_detached());
        e.commit();
        // The old snapshot borrowed by `g` is still valid; new lookups see the new one.
        let g2 = rcu::read_lock();
        assert!(t.find(0x2000, &g2).is_none());
        assert_eq!(t.len(&g2), 2);
        assert!(old.is_detached());
    }

    #[test]
    fn removed_vmas_are_freed_after_a_grace_period() {
        let t = tree_of(&[(0x1000, 0x2000)]);
        let weak = {
            let g = rcu::read_lock();
            Arc::downgrade(t.find(0x1000, &g).unwrap())
        };
        let reader = rcu::read_lock();
        let mut e = t.edit();
        e.remove(&weak.upgrade().unwrap());
        e.commit();
        rcu::flush();
        assert!(weak.upgrade().is_some(), "a reader is still pinned");
        drop(reader);
        rcu::barrier();
        assert!(weak.upgrade().is_none(), "freed after the grace period");
    }
}

mod publication_batches {
    use super::*;

    #[test]
    fn one_callback_per_commit_however_many_removed() {
        let ranges: Vec<(u64, u64)> = (0..64).map(|i| (i * 0x2000, i * 0x2000 + 0x1000)).collect();
        let t = tree_of(&ranges);
        let all = {
            let g = rcu::read_lock();
            t.iter(&g).cloned().collect::<Vec<_>>()
        };
        let before = rcu::callbacks_queued();
        let mut e = t.edit();
        for v in &all[8..56] {
            e.remove(v);
        }
        e.commit();
        assert_eq!(rcu::callbacks_queued() - before, 1);
        assert!(all[8..56].iter().all(|v| v.is_detached()));
        assert!(!all[7].is_detached() && !all[56].is_detached());
        // A commit that changed nothing publishes and frees nothing.
        let before = rcu::callbacks_queued();
        t.edit().commit();
        assert_eq!(rcu::callbacks_queued() - before, 0);
        let weak: Vec<_> = all[8..56].iter().map(Arc::downgrade).collect();
        drop(all);
        rcu::barrier();
        assert!(
            weak.iter().all(|w| w.upgrade().is_none()),
            "removed VMAs freed"
        );
    }

    #[test]
    fn aborted_edit_frees_only_its_copies() {
        let ranges: Vec<(u64, u64)> = (0..20).map(|i| (i * 0x2000, i * 0x2000 + 0x1000)).collect();
        let t = tree_of(&ranges);
        let first = {
            let g = rcu::read_lock();
            Arc::clone(t.find(0, &g).unwrap())
        };
        let refs = Arc::strong_count(&first);
        let new = vma(0x1_0000_0000, 0x1_0000_1000);
        let weak_new = Arc::downgrade(&new);
        let before = rcu::callbacks_queued();
        {
            let mut e = t.edit();
            e.remove(&first);
            e.insert(new);
            e.insert(vma(0x100_1000, 0x100_2000));
            // The copied leaf holds a second reference to its VMAs.
            assert!(Arc::strong_count(&first) >= refs);
        }
        assert_eq!(rcu::callbacks_queued() - before, 0, "nothing deferred");
        assert!(
            weak_new.upgrade().is_none(),
            "the unpublished VMA is gone at once"
        );
        assert_eq!(
            Arc::strong_count(&first),
            refs,
            "copies dropped their references"
        );
        assert!(!first.is_detached());
        let g = rcu::read_lock();
        assert_eq!(t.len(&g), 20);
        assert_eq!(bounds(t.iter(&g)), ranges);
    }

    #[test]
    #[should_panic(expected = "two edits of one VMA tree overlapped")]
    fn overlapping_edits_are_caught_at_commit() {
        // Against the rules (one writer under mmap_lock write), yet memory-safe: the
        // second commit finds another root than the one it started from.
        let t = tree_of(&[(0x1000, 0x2000)]);
        let mut a = t.edit();
        let mut b = t.edit();
        a.insert(vma(0x3000, 0x4000));
        b.insert(vma(0x5000, 0x6000));
        a.commit();
        b.commit();
    }

    #[test]
    fn reinserted_vma_stays_attached() {
        let t = tree_of(&[(0x1000, 0x2000), (0x3000, 0x4000)]);
        let v = t.edit().find(0x1000).unwrap();
        let mut e = t.edit();
        e.remove(&v);
        assert!(e.find(0x1000).is_none());
        e.insert(Arc::clone(&v));
        e.commit();
        assert!(!v.is_detached());
        let g = rcu::read_lock();
        assert!(Arc::ptr_eq(t.find(0x1000, &g).unwrap(), &v));
    }

    #[test]
    fn readers_keep_their_version() {
        let ranges: Vec<(u64, u64)> = (0..40).map(|i| (i * 0x2000, i * 0x2000 + 0x1000)).collect();
        let t = tree_of(&ranges);
        let g = rcu::read_lock();
        let mut e = t.edit();
        for v in e.all() {
            e.remove(&v);
        }
        e.insert(vma(0x10_0000, 0x20_0000));
        // The pending state is the edit's alone.
        assert_eq!(bounds(&e.all()), vec![(0x10_0000, 0x20_0000)]);
        assert_eq!(t.len(&g), 40);
        let it = t.iter(&g);
        e.commit();
        // An iterator made before the commit walks the old version to the end.
        assert_eq!(bounds(it), ranges);
        assert_eq!(t.len(&g), 1);
        assert_eq!(bounds(t.iter(&g)), vec![(0x10_0000, 0x20_0000)]);
    }
}

mod structure {
    use super::*;

    /// A small deterministic generator (xorshift), so the test needs no proptest.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    #[test]
    fn random_inserts_and_removes_keep_it_balanced() {
        let n = if cfg!(miri) { 60 } else { 2000 };
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut order: Vec<u64> = (0..n).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let t = VmaTree::new();
        let mut e = t.edit();
        for (k, &i) in order.iter().enumerate() {
            e.insert(vma(i * 0x3000, i * 0x3000 + 0x1000));
            if k % 97 == 0 {
                check_structure(&e);
            }
            if k % 7 == 0 {
                e.commit();
                e = t.edit();
            }
        }
        let h = check_structure(&e);
        assert!(h >= 3, "a deep tree (height {h})");
        for (k, &i) in order.iter().enumerate().rev() {
            let v = e.find(i * 0x3000).unwrap();
            e.remove(&v);
            if k % 89 == 0 {
                check_structure(&e);
            }
            if k % 5 == 0 {
                e.commit();
                e = t.edit();
            }
        }
        assert_eq!(check_structure(&e), 0);
        assert!(e.is_empty());
        e.commit();
        assert!(t.is_empty(&rcu::read_lock()));
    }

    #[test]
    fn carving_a_vma_from_its_low_end_fills_nodes() {
        // `mprotect` of every second page of a large VMA, low to high, as `mprotect`
        // edits: the VMA goes, its two ends come back, then the changed middle page
        // goes between them, just before the leaf's last entry.
        let n = if cfg!(miri) { 41 } else { 1001 };
        let t = VmaTree::new();
        let page = |i: u64| vma(i * 0x1000, (i + 1) * 0x1000);
        let rest = |i: u64| vma(i * 0x1000, n * 0x1000);
        let mut e = t.edit();
        e.insert(rest(0));
        e.commit();
        for i in (0..n - 1).step_by(2) {
            let mut e = t.edit();
            let old = e.find(i * 0x1000).unwrap();
            e.remove(&old);
            e.insert(page(i));
            e.insert(rest(i + 2));
            e.insert(page(i + 1));
            e.commit();
        }
        let g = rcu::read_lock();
        let shape = t.shape(&g);
        assert_eq!(shape.vmas, n);
        assert_eq!(t.find_bounds(0x5fff, &g), Some((0x5000, 0x6000)));
        assert!(
            shape.leaf_fill() >= 0.7,
            "leaves {:.0}% full: {shape:?}",
            shape.leaf_fill() * 100.0
        );
    }

    #[test]
    fn in_order_inserts_fill_nodes() {
        // Fork copies VMAs in address order: biased splits leave full leaves behind.
        let n = if cfg!(miri) { 40 } else { 1000 };
        let t = VmaTree::new();
        let mut e = t.edit();
        for i in 0..n {
            e.insert(vma(i * 0x2000, i * 0x2000 + 0x1000));
        }
        let h = check_structure(&e);
        // Height of a tree of nearly full nodes: at most one more than the ideal.
        let ideal = (n as f64).log(super::super::node::CAP as f64).ceil() as u32;
        assert!(
            h <= ideal,
            "height {h} for {n} VMAs in order (ideal {ideal})"
        );
        e.commit();
    }
}

mod gaps {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn stack_gap(v: &Vma) -> u64 {
        if v.flags.intersects(VM_GROWSDOWN) {
            v.start.get().saturating_sub(MIB)
        } else {
            v.start.get()
        }
    }

    #[test]
    fn top_down_takes_the_highest_fit_below_high() {
        let t = tree_of(&[(0x10000, 0x20000), (0x30000, 0x32000), (0x40000, 0x50000)]);
        let e = t.edit();
        let s = |v: &Vma| v.start.get();
        assert_eq!(e.find_gap_top_down(0x1000, 0, 0x60000, s), Some(0x5f000));
        assert_eq!(e.find_gap_top_down(0x1000, 0, 0x45000, s), Some(0x3f000));
        assert_eq!(e.find_gap_top_down(0xe000, 0, 0x45000, s), Some(0x32000));
        assert_eq!(e.find_gap_top_down(0xf000, 0, 0x45000, s), Some(0x21000));
        assert_eq!(e.find_gap_top_down(0x10000, 0, 0x45000, s), Some(0x20000));
        assert_eq!(e.find_gap_top_down(0x10000, 0x21000, 0x45000, s), None);
        assert_eq!(e.find_gap_top_down(0x10000, 0, 0x1f000, s), Some(0));
        assert_eq!(
            e.find_gap_bottom_up(0x1000, 0x10000, 0x60000, s),
            Some(0x20000)
        );
        assert_eq!(
            e.find_gap_bottom_up(0xe000, 0x10000, 0x60000, s),
            Some(0x20000)
        );
        assert_eq!(
            e.find_gap_bottom_up(0x11000, 0x10000, 0x61000, s),
            Some(0x50000)
        );
        assert_eq!(e.find_gap_bottom_up(0x11000, 0x10000, 0x60fff, s), None);
        e.commit();
    }

    #[test]
    fn guard_gaps_push_placement_down() {
        // A stack at 4 MiB with its 1 MiB guard, a small VMA right below the guard.
        let t = VmaTree::new();
        let mut e = t.edit();
        e.insert(vma_flags(4 * MIB, 5 * MIB, VM_READ | VM_GROWSDOWN));
        e.insert(vma(2 * MIB, 2 * MIB + 0x1000));
        // Raw gap 2 MiB+4K..4 MiB, but the guard leaves 2 MiB+4K..3 MiB.
        assert_eq!(
            e.find_gap_top_down(MIB, 0, 5 * MIB, stack_gap),
            Some(2 * MIB - MIB)
        );
        assert_eq!(
            e.find_gap_top_down(0x1000, 0, 5 * MIB, stack_gap),
            Some(3 * MIB - 0x1000)
        );
        assert_eq!(
            e.find_gap_bottom_up(MIB, 2 * MIB, 6 * MIB, stack_gap),
            Some(5 * MIB)
        );
        assert_eq!(
            e.find_gap_bottom_up(0x1000, 2 * MIB, 6 * MIB, stack_gap),
            Some(2 * MIB + 0x1000)
        );
        e.commit();
    }
}

mod differential {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::{super::v1, *};

    const PAGE: u64 = 0x1000;
    /// Pages of the address space the ops use (16 MiB: 1 MiB guard gaps matter).
    const SPACE: u64 = 4096;

    #[derive(Debug, Clone)]
    enum Op {
        /// Map `pages` at `page` unless that overlaps; `stack` marks it VM_GROWSDOWN
        /// (its start gap is lowered by the case's guard).
        Insert {
            page: u64,
            pages: u64,
            stack: bool,
        },
        /// Unmap the `pick`-th pending VMA.
        Remove {
            pick: usize,
        },
        /// Replace the `pick`-th pending VMA by two (an mprotect of part of it).
        Split {
            pick: usize,
            at: u64,
        },
        /// Put back a VMA removed earlier in this edit, unchanged.
        Reinsert,
        Commit,
        /// Drop both edits and start again from the committed state.
        Abort,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0..SPACE, 1..48u64, prop::bool::weighted(0.2))
                .prop_map(|(page, pages, stack)| Op::Insert { page, pages, stack }),
            4 => any::<usize>().prop_map(|pick| Op::Remove { pick }),
            2 => (any::<usize>(), any::<u64>()).prop_map(|(pick, at)| Op::Split { pick, at }),
            1 => Just(Op::Reinsert),
            2 => Just(Op::Commit),
            1 => Just(Op::Abort),
        ]
    }

    /// Probe addresses, gap requests `(len, low, high)` in bytes, and the guard gap.
    type Probes = (Vec<u64>, Vec<(u64, u64, u64)>, u64);

    /// A case's [`Probes`].
    fn probes() -> impl Strategy<Value = Probes> {
        let addr = prop_oneof![
            3 => (0..SPACE + 64).prop_map(|p| p * PAGE),
            1 => 0..(SPACE + 64) * PAGE,
        ];
        let page = |n: u64| (0..n).prop_map(|p| p * PAGE);
        let gap = (
            prop_oneof![4 => 1..64u64, 1 => 64..600u64].prop_map(|p| p * PAGE),
            prop_oneof![3 => page(SPACE / 2), 1 => page(SPACE + 300)],
            prop_oneof![3 => page(SPACE + 300), 1 => Just(!(PAGE - 1))],
        );
        (
            prop::collection::vec(addr, 12),
            prop::collection::vec(gap, 8),
            // The guard gap of "stack" VMAs: up to MAX_START_GAP.
            (0..=256u64).prop_map(|p| p * PAGE),
        )
    }

    type Pair = (Arc<Vma>, Arc<Vma>);

    fn pair(start: u64, end: u64, flags: VmFlags) -> Pair {
        (vma_flags(start, end, flags), vma_flags(start, end, flags))
    }

    fn b(v: Option<Arc<Vma>>) -> Option<(u64, u64)> {
        v.map(|v| (v.start.get(), v.end.get()))
    }

    fn br(v: Option<&Arc<Vma>>) -> Option<(u64, u64)> {
        v.map(|v| (v.start.get(), v.end.get()))
    }

    /// Every query of a pending edit, on both trees.
    fn compare_edits(
        a: &v1::TreeEdit<'_>,
        e: &TreeEdit<'_>,
        (addrs, gaps, guard): &Probes,
        extra: &[u64],
    ) {
        assert_eq!(a.len(), e.len());
        assert_eq!(a.is_empty(), e.is_empty());
        assert_eq!(bounds(&a.all()), bounds(&e.all()));
        for &x in addrs.iter().chain(extra) {
            assert_eq!(b(a.find(x)), b(e.find(x)), "find {x:#x}");
            assert_eq!(
                b(a.ending_at(PageAddr::down(x))),
                b(e.ending_at(PageAddr::down(x))),
                "ending_at {x:#x}"
            );
            assert_eq!(
                b(a.starting_at(PageAddr::down(x))),
                b(e.starting_at(PageAddr::down(x))),
                "starting_at {x:#x}"
            );
            assert_eq!(b(a.prev(x)), b(e.prev(x)), "prev {x:#x}");
            assert_eq!(b(a.next(x)), b(e.next(x)), "next {x:#x}");
        }
        for w in addrs.windows(2) {
            let (s, t) = (w[0], w[1]);
            assert_eq!(
                bounds(&a.intersecting(s, t)),
                bounds(&e.intersecting(s, t)),
                "intersecting {s:#x}..{t:#x}"
            );
        }
        let guard = *guard;
        let stack = move |v: &Vma| {
            if v.flags.intersects(VM_GROWSDOWN) {
                v.start.get().saturating_sub(guard)
            } else {
                v.start.get()
            }
        };
        let plain = |v: &Vma| v.start.get();
        for &(len, low, high) in gaps {
            assert_eq!(
                a.find_gap_top_down(len, low, high, stack),
                e.find_gap_top_down(len, low, high, stack),
                "top-down {len:#x} in {low:#x}..{high:#x}, guard {guard:#x}"
            );
            assert_eq!(
                a.find_gap_top_down(len, low, high, plain),
                e.find_gap_top_down(len, low, high, plain),
                "top-down {len:#x} in {low:#x}..{high:#x}"
            );
            assert_eq!(
                a.find_gap_bottom_up(len, low, high, stack),
                e.find_gap_bottom_up(len, low, high, stack),
                "bottom-up {len:#x} in {low:#x}..{high:#x}, guard {guard:#x}"
            );
        }
    }

    /// Every reader query, on both published trees.
    fn compare_readers(t1: &v1::VmaTree, t2: &VmaTree, addrs: &[u64]) {
        let g = rcu::read_lock();
        assert_eq!(t1.len(&g), t2.len(&g));
        assert_eq!(t1.is_empty(&g), t2.is_empty(&g));
        assert_eq!(bounds(t1.iter(&g)), bounds(t2.iter(&g)));
        for &x in addrs {
            assert_eq!(br(t1.find(x, &g)), br(t2.find(x, &g)), "find {x:#x}");
            assert_eq!(
                br(t1.find(x, &g)),
                t2.find_bounds(x, &g),
                "find_bounds {x:#x}"
            );
            assert_eq!(
                br(t1.find_from(x, &g)),
                br(t2.find_from(x, &g)),
                "find_from {x:#x}"
            );
            assert_eq!(br(t1.prev(x, &g)), br(t2.prev(x, &g)), "prev {x:#x}");
        }
        for w in addrs.windows(2) {
            assert_eq!(
                bounds(t1.intersecting(w[0], w[1], &g)),
                bounds(t2.intersecting(w[0], w[1], &g))
            );
        }
    }

    fn run(ops: Vec<Op>, q: Probes) {
        let (t1, t2) = (v1::VmaTree::new(), VmaTree::new());
        let mut committed: BTreeMap<u64, Pair> = BTreeMap::new();
        let mut pending = committed.clone();
        let mut removed: Vec<Pair> = Vec::new();
        // Every VMA given to the new tree, to check at the end that all are freed.
        let mut made: Vec<std::sync::Weak<Vma>> = Vec::new();
        let (mut a, mut e) = (t1.edit(), t2.edit());
        for op in ops {
            let mut extra = Vec::new();
            match op {
                Op::Insert { page, pages, stack } => {
                    let (s, t) = (page * PAGE, (page + pages) * PAGE);
                    if a.intersecting(s, t).is_empty() {
                        let flags = VM_READ
                            | if stack {
                                VM_GROWSDOWN
                            } else {
                                VmFlags::empty()
                            };
                        let p = pair(s, t, flags);
                        made.push(Arc::downgrade(&p.1));
                        a.insert(Arc::clone(&p.0));
                        e.insert(Arc::clone(&p.1));
                        pending.insert(s, p);
                        extra = vec![s, t, s.saturating_sub(1)];
                    }
                }
                Op::Remove { pick } if !pending.is_empty() => {
                    let k = *pending.keys().nth(pick % pending.len()).unwrap();
                    let p = pending.remove(&k).unwrap();
                    a.remove(&p.0);
                    e.remove(&p.1);
                    extra = vec![p.0.start.get(), p.0.end.get()];
                    removed.push(p);
                }
                Op::Split { pick, at } if !pending.is_empty() => {
                    let k = *pending.keys().nth(pick % pending.len()).unwrap();
                    let pages = (pending[&k].0.end.get() - k) / PAGE;
                    if pages >= 2 {
                        let p = pending.remove(&k).unwrap();
                        let mid = k + (1 + at % (pages - 1)) * PAGE;
                        a.remove(&p.0);
                        e.remove(&p.1);
                        for (s, t) in [(k, mid), (mid, p.0.end.get())] {
                            let n = pair(s, t, p.0.flags);
                            made.push(Arc::downgrade(&n.1));
                            a.insert(Arc::clone(&n.0));
                            e.insert(Arc::clone(&n.1));
                            pending.insert(s, n);
                        }
                        extra = vec![k, mid, p.0.end.get()];
                        removed.push(p);
                    }
                }
                Op::Reinsert => {
                    if let Some(p) = removed.pop() {
                        if a.intersecting(p.0.start.get(), p.0.end.get()).is_empty() {
                            a.insert(Arc::clone(&p.0));
                            e.insert(Arc::clone(&p.1));
                            pending.insert(p.0.start.get(), p);
                        } else {
                            removed.push(p);
                        }
                    }
                }
                Op::Commit => {
                    a.commit();
                    e.commit();
                    for (x, y) in removed.drain(..) {
                        assert_eq!(x.is_detached(), y.is_detached(), "detached {:#x}", x.start);
                    }
                    for (x, y) in pending.values() {
                        assert!(!x.is_detached() && !y.is_detached());
                    }
                    committed = pending.clone();
                    let mut addrs = q.0.clone();
                    addrs.extend(
                        committed
                            .values()
                            .flat_map(|p| [p.0.start.get(), p.0.end.get() - 1]),
                    );
                    compare_readers(&t1, &t2, &addrs);
                    (a, e) = (t1.edit(), t2.edit());
                }
                Op::Abort => {
                    drop((a, e));
                    pending = committed.clone();
                    removed.clear();
                    (a, e) = (t1.edit(), t2.edit());
                }
                Op::Remove { .. } | Op::Split { .. } => {}
            }
            compare_edits(&a, &e, &q, &extra);
            check_structure(&e);
        }
        a.commit();
        e.commit();
        compare_readers(&t1, &t2, &q.0);
        // Once the batches have run, the tree holds one count per VMA: the test's own
        // (in `pending`, maybe in `committed`) are the only others.
        rcu::barrier();
        for (_, y) in pending.values() {
            let ours = 1 + usize::from(committed.values().any(|c| Arc::ptr_eq(&c.1, y)));
            assert_eq!(Arc::strong_count(y), ours + 1, "counts of {:#x}", y.start);
        }
        // Nothing leaks, nothing is freed twice (Miri would see that).
        drop((t1, t2, committed, pending, removed));
        rcu::barrier();
        assert!(made.iter().all(|w| w.upgrade().is_none()), "a VMA leaked");
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: if cfg!(miri) { 2 } else { 256 },
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn v2_answers_as_v1(
            ops in prop::collection::vec(op(), 1..if cfg!(miri) { 24 } else { 160 }),
            q in probes(),
        ) {
            run(ops, q);
        }
    }
}

mod scale {
    use super::*;

    const N: u64 = 1 << 20;
    /// VMA `i` is 16 KiB at `i * 64 KiB`.
    fn at(i: u64) -> u64 {
        0x1000_0000 + i * 0x1_0000
    }

    #[test]
    #[cfg_attr(miri, ignore = "a million VMAs")]
    fn a_million_vmas() {
        let t = VmaTree::new();
        // Scattered order (an odd stride is co-prime with 2^20), in edits of 4096.
        let order = |k: u64| (k * 0x9e37_79b1) % N;
        for batch in 0..N / 4096 {
            let mut e = t.edit();
            for k in batch * 4096..(batch + 1) * 4096 {
                let i = order(k);
                e.insert(vma(at(i), at(i) + 0x4000));
            }
            e.commit();
        }
        let g = rcu::read_lock();
        assert_eq!(t.len(&g), N as usize);
        for i in (0..N).step_by(7) {
            assert_eq!(
                t.find(at(i) + 0x3fff, &g).map(|v| v.start.get()),
                Some(at(i))
            );
            assert!(t.find(at(i) + 0x4000, &g).is_none());
        }
        assert_eq!(t.prev(at(777), &g).map(|v| v.start.get()), Some(at(776)));
        assert_eq!(
            t.find_from(at(777) + 0x8000, &g).map(|v| v.start.get()),
            Some(at(778))
        );
        drop(g);

        // A 4 MiB hole at a third of the way up: the only place a 2 MiB request fits
        // below the last VMA.
        let hole = N / 3;
        let mut e = t.edit();
        for i in hole..hole + 64 {
            let v = e.find(at(i)).unwrap();
            e.remove(&v);
        }
        let h = check_structure(&e);
        let top = at(N - 1);
        let s = |v: &Vma| v.start.get();
        let (found, visited) = e.find_gap_top_down_counted(2 << 20, 0, top, s);
        assert_eq!(found, Some(at(hole + 64) - (2 << 20)));
        // A linear walk would look at 700k VMAs; the search enters the nodes on two
        // root-to-leaf paths, CAP entries each, and the VMAs within 1 MiB of the hole.
        println!("top-down: {visited} nodes and VMAs visited, height {h}");
        assert!(
            visited <= 4 * h as usize + 40,
            "top-down visited {visited} (height {h})"
        );
        let (found, visited) = e.find_gap_bottom_up_counted(2 << 20, at(0), top, s);
        assert_eq!(found, Some(at(hole - 1) + 0x4000));
        println!("bottom-up: {visited} nodes and VMAs visited");
        assert!(
            visited <= 4 * h as usize + 40,
            "bottom-up visited {visited} (height {h})"
        );
        e.commit();
    }
}

mod placement_at_scale {
    use super::*;

    const PAGE: u64 = 0x1000;
    const MIB: u64 = 1 << 20;

    fn stack_gap(v: &Vma) -> u64 {
        if v.flags.intersects(VM_GROWSDOWN) {
            v.start.get().saturating_sub(MIB)
        } else {
            v.start.get()
        }
    }

    /// `n` one-page VMAs with no gap between them from `base` up, a grows-down VMA
    /// `stack_above` bytes above the last one.
    fn dense(n: u64, base: u64, stack_above: u64) -> VmaTree {
        let t = VmaTree::new();
        let mut e = t.edit();
        for i in 0..n {
            e.insert(vma(base + i * PAGE, base + (i + 1) * PAGE));
        }
        let top = base + n * PAGE + stack_above;
        e.insert(vma_flags(top, top + 64 * PAGE, VM_READ | VM_GROWSDOWN));
        e.commit();
        t
    }

    /// The `mmap-at-scale` bench's placement: below a block of contiguous VMAs, which
    /// a guard check that walked the VMAs within `MAX_START_GAP` of the candidate's top
    /// would visit 256 of. Only the guarded VMA is looked at (it is far away here).
    #[test]
    fn below_a_dense_block_visits_one_path() {
        let base = 0x4000_0000;
        let t = dense(4096, base, 64 * MIB);
        let e = t.edit();
        let h = check_structure(&e);
        let (found, visited) =
            e.find_gap_top_down_counted(PAGE, PAGE, base + 4096 * PAGE, stack_gap);
        assert_eq!(found, Some(base - PAGE));
        assert!(
            visited <= 2 * h as usize + 4,
            "visited {visited} (height {h})"
        );
        e.commit();
    }

    /// A guard gap of a grows-down VMA above a dense block still pushes placement
    /// down, however many unguarded VMAs lie between.
    #[test]
    fn a_guard_across_a_dense_block() {
        let base = 0x4000_0000;
        // 64 pages of VMAs, the stack 16 pages above them: its 1 MiB guard reaches
        // 48 pages below the block's start.
        let t = dense(64, base, 16 * PAGE);
        let e = t.edit();
        let top = base + 80 * PAGE;
        assert_eq!(
            e.find_gap_top_down(PAGE, PAGE, top, stack_gap),
            Some(top - MIB - PAGE)
        );
        assert_eq!(
            e.find_gap_top_down(PAGE, PAGE, top, |v: &Vma| v.start.get()),
            Some(top - PAGE)
        );
        e.commit();
    }
}

mod concurrent {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Readers look VMAs up while a writer keeps splitting, merging, removing and
    /// re-adding them: every VMA found contains the address, iteration is ordered, and
    /// (under Miri) nobody touches freed memory or races.
    #[test]
    fn readers_during_edits() {
        let (slots, rounds) = if cfg!(miri) { (12u64, 30) } else { (64, 3000) };
        let slot = |i: u64| (i * 0x10000, i * 0x10000 + 0x8000);
        let t = Arc::new(tree_of(&(0..slots).map(slot).collect::<Vec<_>>()));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let (t, stop) = (Arc::clone(&t), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let g = rcu::read_lock();
                        let addr = ((n * 7 + r) % slots) * 0x10000 + 0x1000;
                        if let Some(v) = t.find(addr, &g) {
                            assert!(v.contains(addr));
                            assert_eq!(v.start.get() % 0x1000, 0);
                        }
                        let all = bounds(t.iter(&g));
                        assert!(all.windows(2).all(|w| w[0].1 <= w[1].0), "ordered");
                        n += 1;
                    }
                })
            })
            .collect();
        for k in 0..rounds {
            let i = (k * 5) % slots;
            let (s, end) = slot(i);
            let mut e = t.edit();
            match e.find(s) {
                Some(v) if v.end.get() == end => {
                    // Split it in two.
                    e.remove(&v);
                    e.insert(vma(s, s + 0x4000));
                    e.insert(vma(s + 0x4000, end));
                }
                Some(v) => {
                    // Merge the halves back, or drop the slot.
                    e.remove(&v);
                    if let Some(w) = e.find(s + 0x4000) {
                        e.remove(&w);
                    }
                    if k % 3 != 0 {
                        e.insert(vma(s, end));
                    }
                }
                None => e.insert(vma(s, end)),
            }
            e.commit();
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
    }
}
