//! Free-gap searches (`get_unmapped_area`) over the per-child gap summaries.
//!
//! A *raw gap* is the space between two consecutive VMAs (or below the first, or above
//! the last). Every internal node keeps, for each child, the largest raw gap strictly
//! inside that child's subtree plus the subtree's first start and last end, from which
//! it also knows the raw gaps between its children. A search visits raw gaps in address
//! order (top-down: descending) and skips every subtree whose largest gap is smaller
//! than the request, so it enters only the nodes on the paths to the window's edges and
//! to the gaps it checks: O(fanout · height).
//!
//! A raw gap big enough is only a candidate: a VMA `w` occupies from `start_gap(w)`
//! (its start, or up to [`MAX_START_GAP`] lower for a stack guard gap) to its end, so
//! the candidate is checked against the VMAs just above it; if a guard gap makes it
//! too small the search goes on downwards (upwards). Only a `VM_GROWSDOWN` VMA may
//! have a `start_gap` below its start (the callers' contract, as Linux's
//! `vm_start_gap`), and every node marks the children and entries that hold one, so
//! the check above a candidate visits the VMA at its top and the few guarded VMAs
//! within `MAX_START_GAP` of it, not every VMA there. Results are those of the linear
//! walks of the first tree (`v1.rs`), which the differential test compares against:
//! * top-down: the highest `a` with `low <= a`, `a + len <= high` and `[a, a + len)`
//!   clear of every `[start_gap(w), w.end)`;
//! * bottom-up (MAP_32BIT): the lowest `a >= low`, starting at the end of the VMA below
//!   or at `low`, such that `a + len <= start_gap(w)` for the next VMA `w` (the guard
//!   gap of the next VMA only), and `a + len <= high`.

use super::{
    super::Vma,
    MAX_START_GAP,
    ptr::{Node, NodeRef},
    view::View,
};

/// What a gap tells the search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// The answer.
    Found(u64),
    /// No answer: nothing further in the search order can fit either.
    Stop,
    /// Not this gap; go on.
    Next,
}

/// One search for `len` bytes in `[low, high)`.
pub(super) struct GapSearch<'a, F> {
    view: View<'a>,
    len: u64,
    low: u64,
    high: u64,
    start_gap: F,
    /// Nodes entered and VMAs looked at (tests assert it stays logarithmic).
    pub(super) visited: usize,
}

impl<'a, F: Fn(&Vma) -> u64> GapSearch<'a, F> {
    /// A search of `view`.
    pub(super) fn new(view: View<'a>, len: u64, low: u64, high: u64, start_gap: F) -> Self {
        Self {
            view,
            len,
            low,
            high,
            start_gap,
            visited: 0,
        }
    }

    /// The highest fit, placed at the top of its gap.
    pub(super) fn top_down(&mut self) -> Option<u64> {
        let root = self.view.root();
        let mut step = Step::Next;
        let s = root.summary();
        if let Some(s) = s {
            // Above the last VMA, then the tree, then below the first VMA.
            step = self.candidate_down(s.last_end, None);
            if step == Step::Next {
                step = self.down(root);
            }
        }
        if step == Step::Next {
            step = self.candidate_down(0, s.map(|s| s.first));
        }
        match step {
            Step::Found(a) => Some(a),
            Step::Stop | Step::Next => None,
        }
    }

    /// Raw gaps of the subtree `n`, from the top.
    fn down(&mut self, n: NodeRef<'a>) -> Step {
        self.visited += 1;
        match n.get() {
            Node::Leaf(l) => {
                for j in (1..l.len()).rev() {
                    let (s, e) = (l.range(j).0, l.range(j - 1).1);
                    if s - e >= self.len {
                        match self.candidate_down(e, Some(s)) {
                            Step::Next => {}
                            step => return step,
                        }
                    }
                }
            }
            Node::Internal(x) => {
                for i in (0..x.len()).rev() {
                    let c = x.child_summary(i);
                    // Inside child i (none of it below `high` if it starts there).
                    if c.gap >= self.len && c.first < self.high {
                        match self.down(x.child(i)) {
                            Step::Next => {}
                            step => return step,
                        }
                    }
                    // Between child i-1 and child i.
                    if i > 0 {
                        let e = x.child_summary(i - 1).last_end;
                        if c.first - e >= self.len {
                            match self.candidate_down(e, Some(c.first)) {
                                Step::Next => {}
                                step => return step,
                            }
                        }
                    }
                }
            }
        }
        Step::Next
    }

    /// The raw gap `[lo, hi)` (`hi`: start of the VMA above, `None` for none) seen
    /// from the top.
    fn candidate_down(&mut self, lo: u64, hi: Option<u64>) -> Step {
        let top = hi.map_or(self.high, |h| h.min(self.high));
        let need = self.low.saturating_add(self.len);
        if top < need {
            // Every gap below ends lower still.
            return Step::Stop;
        }
        if top < lo.max(self.low).saturating_add(self.len) {
            return Step::Next;
        }
        let limit = self.limit_from(hi);
        if limit < need {
            // The guard gaps above lower every gap below as much.
            return Step::Stop;
        }
        if lo.checked_add(self.len).is_some_and(|e| e <= limit) {
            Step::Found(limit - self.len)
        } else {
            Step::Next
        }
    }

    /// `min(high, start_gap(w))` over the VMAs `w` from the one starting at `hi` up:
    /// `hi` itself, lowered by the guarded VMAs starting below the limit plus
    /// [`MAX_START_GAP`] (no other VMA can lower it).
    fn limit_from(&mut self, hi: Option<u64>) -> u64 {
        let Some(hi) = hi else {
            return self.high;
        };
        #[cfg(debug_assertions)]
        self.check_unguarded_at(hi);
        let mut limit = self.high.min(hi);
        let mut from = hi;
        while let Some(w) = self.first_guarded(self.view.root(), from, limit) {
            self.visited += 1;
            let (start, g) = (w.start.get(), (self.start_gap)(w));
            debug_assert!(
                g <= start && start - g <= MAX_START_GAP,
                "start_gap may lower a start by at most MAX_START_GAP"
            );
            limit = limit.min(g);
            from = start + 1;
        }
        limit
    }

    /// The first `VM_GROWSDOWN` VMA of the subtree `n` that starts at or above `from`
    /// and below `limit + MAX_START_GAP`: the subtrees and entries without one are
    /// skipped by their masks, so this enters one node per level when there is none.
    fn first_guarded(&mut self, n: NodeRef<'a>, from: u64, limit: u64) -> Option<&'a Vma> {
        self.visited += 1;
        let bound = limit.saturating_add(MAX_START_GAP);
        match n.get() {
            Node::Leaf(l) => {
                let j = l.next_guarded(l.rank_lt(from))?;
                (l.range(j).0 < bound).then(|| l.vma(j).as_ref())
            }
            Node::Internal(x) => {
                // Children before the one holding `from` start below it entirely.
                let mut i = x.child_for(from);
                while let Some(c) = x.next_guarded(i) {
                    if x.child_summary(c).first >= bound {
                        return None;
                    }
                    if let Some(w) = self.first_guarded(x.child(c), from, limit) {
                        return Some(w);
                    }
                    i = c + 1;
                }
                None
            }
        }
    }

    /// The contract the masks rely on: a VMA that is not `VM_GROWSDOWN` claims no
    /// guard gap (checked for the VMA a candidate ends at, debug builds only).
    #[cfg(debug_assertions)]
    fn check_unguarded_at(&self, hi: u64) {
        use super::{super::flags::VM_GROWSDOWN, view::Cursor};
        if let Some(w) = Cursor::seek(self.view.root(), hi).get()
            && !w.flags.intersects(VM_GROWSDOWN)
        {
            debug_assert_eq!(
                (self.start_gap)(w),
                w.start.get(),
                "start_gap lowers the start of a VMA that is not VM_GROWSDOWN"
            );
        }
    }

    /// The lowest fit.
    pub(super) fn bottom_up(&mut self) -> Option<u64> {
        let root = self.view.root();
        let step = match root.summary() {
            None => self.candidate_up(0, None),
            Some(s) => {
                // Below the first VMA, then the tree, then above the last VMA.
                let mut step = Step::Next;
                if s.first >= self.len {
                    step = self.candidate_up(0, Some((s.first, leftmost(root))));
                }
                if step == Step::Next {
                    step = self.up(root);
                }
                if step == Step::Next {
                    step = self.candidate_up(s.last_end, None);
                }
                step
            }
        };
        match step {
            Step::Found(a) => Some(a),
            Step::Stop | Step::Next => None,
        }
    }

    /// Raw gaps of the subtree `n`, from the bottom.
    fn up(&mut self, n: NodeRef<'a>) -> Step {
        self.visited += 1;
        match n.get() {
            Node::Leaf(l) => {
                for j in 1..l.len() {
                    let (s, e) = (l.range(j).0, l.range(j - 1).1);
                    if s - e >= self.len {
                        let w: &Vma = l.vma(j);
                        match self.candidate_up(e, Some((s, w))) {
                            Step::Next => {}
                            step => return step,
                        }
                    }
                }
            }
            Node::Internal(x) => {
                for i in 0..x.len() {
                    let c = x.child_summary(i);
                    if i > 0 {
                        let e = x.child_summary(i - 1).last_end;
                        if c.first - e >= self.len {
                            let w = leftmost(x.child(i));
                            match self.candidate_up(e, Some((c.first, w))) {
                                Step::Next => {}
                                step => return step,
                            }
                        }
                    }
                    // Inside child i, unless all of it lies below `low`.
                    if c.gap >= self.len && c.last_end > self.low {
                        match self.up(x.child(i)) {
                            Step::Next => {}
                            step => return step,
                        }
                    }
                }
            }
        }
        Step::Next
    }

    /// The raw gap `[lo, hi)` below VMA `w` starting at `hi` (`None` above the last).
    fn candidate_up(&mut self, lo: u64, hi: Option<(u64, &Vma)>) -> Step {
        if hi.is_some_and(|(h, _)| h < self.low) {
            return Step::Next;
        }
        let lo = lo.max(self.low);
        let Some(end) = lo.checked_add(self.len).filter(|&e| e <= self.high) else {
            // Every later gap starts higher still.
            return Step::Stop;
        };
        match hi {
            None => Step::Found(lo),
            Some((_, w)) => {
                self.visited += 1;
                if end <= (self.start_gap)(w) {
                    Step::Found(lo)
                } else {
                    Step::Next
                }
            }
        }
    }
}

/// The first VMA of a non-empty subtree.
fn leftmost(mut n: NodeRef<'_>) -> &Vma {
    loop {
        match n.get() {
            Node::Leaf(l) => return l.vma(0),
            Node::Internal(x) => n = x.child(0),
        }
    }
}
