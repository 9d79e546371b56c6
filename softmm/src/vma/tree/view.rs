//! Read-only queries over one version of the tree: point lookups, neighbours, ranges
//! and in-order cursors. Readers run them on a published root under their RCU guard; a
//! pending edit runs them on its own root (private and published nodes mixed).

use std::sync::Arc;

use super::{
    super::Vma,
    node::{Leaf, MAX_HEIGHT},
    ptr::{Node, NodeRef},
};

/// One version of the tree, valid for `'a`.
#[derive(Clone, Copy, Debug)]
pub(super) struct View<'a> {
    root: NodeRef<'a>,
}

impl<'a> View<'a> {
    /// The tree under `root`.
    pub(super) fn new(root: NodeRef<'a>) -> Self {
        Self { root }
    }

    /// The root.
    pub(super) fn root(self) -> NodeRef<'a> {
        self.root
    }

    /// Descend to the leaf holding the last VMA that starts at or below `addr` (the
    /// first leaf if none does) and return it with that entry's index plus one (0:
    /// none in this leaf, hence none in the tree).
    #[inline]
    fn leaf_le(self, addr: u64) -> (&'a Leaf, usize) {
        let mut n = self.root;
        loop {
            match n.get() {
                Node::Leaf(l) => return (l, l.rank_le(addr)),
                Node::Internal(x) => n = x.child(x.child_for(addr)),
            }
        }
    }

    /// The leaf entry of the VMA containing `addr`.
    #[inline]
    fn find_entry(self, addr: u64) -> Option<(&'a Leaf, usize)> {
        let (l, r) = self.leaf_le(addr);
        let i = r.checked_sub(1)?;
        (addr < l.range(i).1).then_some((l, i))
    }

    /// The VMA containing `addr`.
    #[inline]
    pub(super) fn find(self, addr: u64) -> Option<&'a Arc<Vma>> {
        self.find_entry(addr).map(|(l, i)| l.vma(i))
    }

    /// The bounds of the VMA containing `addr`, read from the leaf (the VMA itself is
    /// not touched).
    #[inline]
    pub(super) fn find_bounds(self, addr: u64) -> Option<(u64, u64)> {
        self.find_entry(addr).map(|(l, i)| l.range(i))
    }

    /// The VMA starting exactly at `addr`.
    pub(super) fn starting_at(self, addr: u64) -> Option<&'a Arc<Vma>> {
        let (l, r) = self.leaf_le(addr);
        let i = r.checked_sub(1)?;
        (l.range(i).0 == addr).then(|| l.vma(i))
    }

    /// The last VMA that starts below `addr`.
    pub(super) fn prev(self, addr: u64) -> Option<&'a Arc<Vma>> {
        let mut n = self.root;
        loop {
            match n.get() {
                Node::Leaf(l) => return l.rank_lt(addr).checked_sub(1).map(|i| l.vma(i)),
                // The last child whose first VMA starts below `addr` holds the answer
                // (its own first VMA at the least).
                Node::Internal(x) => n = x.child(x.rank_lt(addr).checked_sub(1)?),
            }
        }
    }

    /// The first VMA that starts at or above `addr`.
    pub(super) fn next(self, addr: u64) -> Option<&'a Arc<Vma>> {
        let (l, _, after) = self.leaf_le_with_next(addr);
        let i = l.rank_lt(addr);
        if i < l.len() {
            Some(l.vma(i))
        } else {
            after.map(leftmost)
        }
    }

    /// The first VMA that ends above `addr` (Linux `find_vma`).
    pub(super) fn find_from(self, addr: u64) -> Option<&'a Arc<Vma>> {
        let (l, r, after) = self.leaf_le_with_next(addr);
        // The last entry starting at or below `addr` if it contains `addr`, else the
        // next entry (every entry before it ends at or below `addr`).
        if r > 0 && l.range(r - 1).1 > addr {
            Some(l.vma(r - 1))
        } else if r < l.len() {
            Some(l.vma(r))
        } else {
            after.map(leftmost)
        }
    }

    /// As [`leaf_le`](Self::leaf_le) (one descent), with the subtree that follows the
    /// leaf in address order (`None` when the leaf is the last): where the answer of
    /// a forward query lies when the leaf holds none.
    #[inline]
    fn leaf_le_with_next(self, addr: u64) -> (&'a Leaf, usize, Option<NodeRef<'a>>) {
        let mut n = self.root;
        let mut after = None;
        loop {
            match n.get() {
                Node::Leaf(l) => return (l, l.rank_le(addr), after),
                Node::Internal(x) => {
                    let i = x.child_for(addr);
                    if i + 1 < x.len() {
                        after = Some(x.child(i + 1));
                    }
                    n = x.child(i);
                }
            }
        }
    }

    /// The VMAs intersecting `[start, end)`, in address order.
    pub(super) fn intersecting(self, start: u64, end: u64) -> Vec<&'a Arc<Vma>> {
        self.intersecting_iter(start, end).collect()
    }

    /// The VMAs intersecting `[start, end)`, in address order, without collecting them.
    pub(super) fn intersecting_iter(
        self,
        start: u64,
        end: u64,
    ) -> impl Iterator<Item = &'a Arc<Vma>> + 'a {
        // The first one by one descent; a cursor only when more may follow (the common
        // cases, a free range or one VMA reaching past `end`, need none).
        let first = (start < end)
            .then(|| self.find_from(start))
            .flatten()
            .filter(|v| v.start.get() < end);
        let more = first.filter(|v| v.end.get() < end).map(|v| v.end.get());
        let mut c = more.map(|from| Cursor::seek(self.root, from));
        let rest = std::iter::from_fn(move || {
            let c = c.as_mut()?;
            c.range().filter(|&(s, _)| s < end)?;
            let v = c.get();
            c.advance();
            v
        });
        first.into_iter().chain(rest)
    }

    /// All VMAs in address order.
    pub(super) fn iter(self) -> Iter<'a> {
        Iter(Cursor::seek(self.root, 0))
    }

    /// Nodes a lookup visits, root and leaf included (reads the root only).
    pub(super) fn levels(self) -> u32 {
        self.root.hdr().height() + 1
    }

    /// Height and node counts (visits every node).
    pub(super) fn shape(self) -> Shape {
        let mut s = Shape {
            levels: self.levels(),
            ..Shape::default()
        };
        let mut stack = vec![self.root];
        while let Some(n) = stack.pop() {
            match n.get() {
                Node::Leaf(l) => {
                    s.leaves += 1;
                    s.vmas += l.len() as u64;
                }
                Node::Internal(x) => {
                    s.internals += 1;
                    stack.extend((0..x.len()).map(|i| x.child(i)));
                }
            }
        }
        s
    }
}

/// Size of one version of a [`VmaTree`](super::VmaTree): what a lookup descends and
/// how full the nodes are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// Nodes a lookup visits, root and leaf included.
    pub levels: u32,
    /// Leaves.
    pub leaves: u64,
    /// Internal nodes.
    pub internals: u64,
    /// VMAs.
    pub vmas: u64,
}

impl Shape {
    /// Average VMAs per leaf, as a fraction of a leaf's capacity.
    pub fn leaf_fill(&self) -> f64 {
        self.vmas as f64 / (self.leaves.max(1) * super::node::CAP as u64) as f64
    }
}

/// An in-order position in one version of the tree: the path from the root to a leaf
/// entry, or past the last entry.
#[derive(Clone, Debug)]
pub(super) struct Cursor<'a> {
    /// `node[d]`: the node at depth `d`; `node[depth]` is the leaf.
    node: [NodeRef<'a>; MAX_HEIGHT],
    /// `index[d]`: the child taken in `node[d]`; in the leaf, the entry (`== len` past
    /// the end).
    index: [u8; MAX_HEIGHT],
    depth: usize,
}

impl<'a> Cursor<'a> {
    /// At the first entry that starts at or above `addr` (past the end if none).
    pub(super) fn seek(root: NodeRef<'a>, addr: u64) -> Self {
        let mut c = Self {
            node: [root; MAX_HEIGHT],
            index: [0; MAX_HEIGHT],
            depth: 0,
        };
        let mut n = root;
        loop {
            match n.get() {
                Node::Leaf(l) => {
                    c.set(c.depth, n, l.rank_lt(addr));
                    break;
                }
                Node::Internal(x) => {
                    // The child where `addr` would go: its later entries or else the
                    // first entry of the next child is the answer.
                    let i = x.child_for(addr);
                    c.set(c.depth, n, i);
                    c.depth += 1;
                    n = x.child(i);
                }
            }
        }
        c.settle();
        c
    }

    /// The node at depth `d` and the index taken in it.
    fn at(&self, d: usize) -> (NodeRef<'a>, usize) {
        (self.node[d], usize::from(self.index[d]))
    }

    /// Record the node at depth `d` and the index taken in it (`<= CAP`).
    fn set(&mut self, d: usize, n: NodeRef<'a>, i: usize) {
        self.node[d] = n;
        self.index[d] = i as u8;
    }

    /// The leaf and the entry index.
    fn leaf(&self) -> (&'a Leaf, usize) {
        let (n, i) = self.at(self.depth);
        match n.get() {
            Node::Leaf(l) => (l, i),
            Node::Internal(_) => unreachable!("cursor path ends in a leaf"),
        }
    }

    /// Past the end of its leaf, move to the first entry of the next leaf (stay past
    /// the end of the last leaf when there is none).
    fn settle(&mut self) {
        let (l, i) = self.leaf();
        if i < l.len() {
            return;
        }
        // Climb to the deepest ancestor with a next child, then take leftmost children.
        let Some(mut d) = (0..self.depth).rev().find(|&d| {
            let (n, i) = self.at(d);
            i + 1 < n.hdr().len()
        }) else {
            return;
        };
        self.index[d] += 1;
        while d < self.depth {
            let (n, i) = self.at(d);
            let Node::Internal(x) = n.get() else {
                unreachable!("inner path node is internal")
            };
            d += 1;
            self.set(d, x.child(i), 0);
        }
    }

    /// The VMA at the position.
    pub(super) fn get(&self) -> Option<&'a Arc<Vma>> {
        let (l, i) = self.leaf();
        (i < l.len()).then(|| l.vma(i))
    }

    /// The bounds of the VMA at the position.
    pub(super) fn range(&self) -> Option<(u64, u64)> {
        let (l, i) = self.leaf();
        (i < l.len()).then(|| l.range(i))
    }

    /// Move to the next entry.
    pub(super) fn advance(&mut self) {
        let (l, i) = self.leaf();
        if i < l.len() {
            self.index[self.depth] += 1;
            self.settle();
        }
    }
}

/// The VMAs of one version of the tree in address order.
#[derive(Clone, Debug)]
pub(super) struct Iter<'a>(Cursor<'a>);

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Arc<Vma>;

    fn next(&mut self) -> Option<&'a Arc<Vma>> {
        let v = self.0.get()?;
        self.0.advance();
        Some(v)
    }
}

/// The first VMA of a non-empty subtree.
fn leftmost(mut n: NodeRef<'_>) -> &Arc<Vma> {
    loop {
        match n.get() {
            Node::Leaf(l) => return l.vma(0),
            Node::Internal(x) => n = x.child(0),
        }
    }
}
