//! Handles to nodes: [`NodePtr`] (a raw pointer, for the writer and for freeing) and
//! [`NodeRef`] (a shared view valid for a lifetime, for readers), with the rules for
//! dereferencing each.

use std::{marker::PhantomData, ptr::NonNull};

use super::node::{Header, Internal, Leaf, Summary};

/// A pointer to a node (to its header, with the provenance of the whole node).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct NodePtr(NonNull<Header>);

/// A node seen through a shared reference.
#[derive(Clone, Copy, Debug)]
pub(super) enum Node<'a> {
    /// A leaf.
    Leaf(&'a Leaf),
    /// An internal node; its children are reachable for as long (see [`NodeRef`]).
    Internal(InternalRef<'a>),
}

/// A node of a private copy, seen through an exclusive reference.
#[derive(Debug)]
pub(super) enum NodeMut<'a> {
    /// A leaf.
    Leaf(&'a mut Leaf),
    /// An internal node.
    Internal(&'a mut Internal),
}

impl NodePtr {
    /// Placeholder in unused child slots; never dereferenced.
    pub(super) const DANGLING: Self = Self(NonNull::dangling());

    /// Allocate `leaf`.
    pub(super) fn new_leaf(leaf: Leaf) -> Self {
        #[cfg(not(any(loom, shuttle)))]
        return Self(super::spare::alloc(leaf).cast());
        #[cfg(any(loom, shuttle))]
        Self(NonNull::from(Box::leak(Box::new(leaf))).cast())
    }

    /// Allocate `node`.
    pub(super) fn new_internal(node: Internal) -> Self {
        #[cfg(not(any(loom, shuttle)))]
        return Self(super::spare::alloc(node).cast());
        #[cfg(any(loom, shuttle))]
        Self(NonNull::from(Box::leak(Box::new(node))).cast())
    }

    /// The address, with its provenance exposed, to publish through an atomic integer
    /// (the `sync` facade has no atomic pointer).
    pub(super) fn expose(self) -> usize {
        self.0.as_ptr().expose_provenance()
    }

    /// The pointer [`NodePtr::expose`] returned `addr` for.
    pub(super) fn from_exposed(addr: usize) -> Self {
        Self(NonNull::new(std::ptr::with_exposed_provenance_mut(addr)).expect("null node address"))
    }

    /// The header.
    ///
    /// # Safety
    /// 1. The node is allocated for `'a`.
    /// 2. Nobody writes its header during `'a` (it is published, or the caller's edit
    ///    does not change it meanwhile).
    #[inline]
    pub(super) unsafe fn hdr<'a>(self) -> &'a Header {
        // SAFETY: (1) allocated, (2) not written during 'a; `Header` is the first field
        // of both node types (repr(C)), so the pointer is aligned and points to one.
        unsafe { self.0.as_ref() }
    }

    /// The node, shared.
    ///
    /// # Safety
    /// 1. The node is allocated for `'a`.
    /// 2. Nobody writes it during `'a`.
    #[inline]
    pub(super) unsafe fn get<'a>(self) -> Node<'a> {
        // SAFETY: (1), (2) are the caller's.
        let h = unsafe { self.hdr() };
        if h.height() == 0 {
            // SAFETY: a height-0 header heads a `Leaf` (only `new_leaf` allocates one),
            // and the pointer comes from that `Box`, so it may be cast back; (1), (2).
            Node::Leaf(unsafe { self.0.cast::<Leaf>().as_ref() })
        } else {
            // SAFETY: as above, for `Internal` (only `new_internal` makes height > 0).
            Node::Internal(InternalRef(unsafe { self.0.cast::<Internal>().as_ref() }))
        }
    }

    /// The node, exclusive.
    ///
    /// # Safety
    /// 1. The node is private to the caller's edit (so no reader can reach it).
    /// 2. No other reference to it is live during `'a`.
    pub(super) unsafe fn get_mut<'a>(self) -> NodeMut<'a> {
        // SAFETY: (1) allocated and unpublished, (2) exclusive.
        let h = unsafe { self.hdr() };
        if h.height() == 0 {
            // SAFETY: a leaf (see `get`); (1), (2) make the reference exclusive.
            NodeMut::Leaf(unsafe { self.0.cast::<Leaf>().as_mut() })
        } else {
            // SAFETY: an internal node (see `get`); (1), (2).
            NodeMut::Internal(unsafe { self.0.cast::<Internal>().as_mut() })
        }
    }

    /// The summary of a non-empty node.
    ///
    /// # Safety
    /// As [`NodePtr::get`], for the duration of the call.
    pub(super) unsafe fn summary(self) -> Summary {
        // SAFETY: the caller's.
        match unsafe { self.get() } {
            Node::Leaf(l) => l.summary(),
            Node::Internal(x) => x.summary(),
        }
    }

    /// A private copy of the node for the edit of generation `generation`.
    ///
    /// # Safety
    /// As [`NodePtr::get`], for the duration of the call.
    pub(super) unsafe fn copy(self, generation: u64) -> Self {
        // SAFETY: the caller's.
        let node = unsafe { self.get() };
        #[cfg(any(loom, shuttle))]
        return match node {
            Node::Leaf(l) => Self::new_leaf(l.copy(generation)),
            Node::Internal(x) => Self::new_internal(x.0.copy(generation)),
        };
        // Outside the models a node is plain data: copied in place, then given the
        // header `Leaf::copy` and `Internal::copy` would give it.
        #[cfg(not(any(loom, shuttle)))]
        {
            let p = match node {
                Node::Leaf(l) => Self(super::spare::alloc_copy(l).cast()),
                Node::Internal(x) => Self(super::spare::alloc_copy(x.0).cast()),
            };
            // SAFETY: `p` is a new private node that nothing else refers to.
            unsafe { (*p.0.as_ptr()).make_copy(generation) };
            p
        }
    }

    /// Set the VMA count of a (private) root.
    ///
    /// # Safety
    /// As [`NodePtr::get_mut`], for the duration of the call.
    pub(super) unsafe fn set_total(self, total: u64) {
        // SAFETY: the caller's: private and exclusive.
        unsafe { (*self.0.as_ptr()).set_total(total) };
    }

    /// Free the node alone (not its children); a leaf drops nothing (its slots own no
    /// counts). In model builds the node is poisoned and leaked instead, so that a reader that
    /// still reaches it reads the poison rather than freed memory.
    ///
    /// # Safety
    /// 1. Nobody can reach the node any more: it is private to the caller's edit and
    ///    unlinked, or a grace period has passed since it was unlinked from the
    ///    published tree.
    /// 2. No reference to it is live.
    pub(super) unsafe fn free(self) {
        #[cfg(any(loom, shuttle))]
        {
            // SAFETY: (1), (2): still allocated (leaked below), nobody else writes it.
            unsafe { self.hdr() }.poison();
        }
        #[cfg(not(any(loom, shuttle)))]
        {
            // SAFETY: (1), (2): unreachable and unreferenced; the pointer came from
            // `spare::alloc` of the node type its height names.
            unsafe {
                if self.hdr().height() == 0 {
                    super::spare::free(self.0.cast::<Leaf>());
                } else {
                    super::spare::free(self.0.cast::<Internal>());
                }
            }
        }
    }

    /// Free the node and every node below it, dropping the count each leaf slot
    /// stands for.
    ///
    /// # Safety
    /// 1. As [`NodePtr::free`], for every node of the subtree.
    /// 2. The subtree is (part of) the current version of a tree that is going away, so
    ///    its slots stand for counts the caller owns.
    pub(super) unsafe fn free_tree(self) {
        // SAFETY: (1) unreachable and unreferenced, so exclusive; (2) the counts are
        // ours; children are freed before their parent.
        unsafe {
            match self.get_mut() {
                NodeMut::Internal(x) => {
                    for i in 0..x.len() {
                        x.child_ptr(i).free_tree();
                    }
                }
                NodeMut::Leaf(l) => l.drop_vmas(),
            }
            self.free();
        }
    }
}

/// A shared view of a node, valid for `'a` together with every node reachable from it.
#[derive(Clone, Copy, Debug)]
pub(super) struct NodeRef<'a> {
    ptr: NodePtr,
    _life: PhantomData<&'a Leaf>,
}

impl<'a> NodeRef<'a> {
    /// # Safety
    /// 1. For all of `'a`, `ptr` and every node reachable from it through child pointers
    ///    stay allocated and nobody writes them: they are published and an RCU guard
    ///    taken before any of them could be retired outlives `'a`, or they belong to a
    ///    pending edit that is borrowed shared for `'a`.
    pub(super) unsafe fn new(ptr: NodePtr) -> Self {
        Self {
            ptr,
            _life: PhantomData,
        }
    }

    /// The node.
    #[inline]
    pub(super) fn get(self) -> Node<'a> {
        #[cfg(any(loom, shuttle))]
        {
            // SAFETY: (1) of `new`; the canary is atomic and read only.
            unsafe { self.ptr.hdr() }.check_alive();
        }
        // SAFETY: (1) of `new`: allocated and unwritten for 'a.
        unsafe { self.ptr.get() }
    }

    /// The header.
    #[inline]
    pub(super) fn hdr(self) -> &'a Header {
        // SAFETY: (1) of `new`.
        unsafe { self.ptr.hdr() }
    }

    /// The summary of the subtree (`None` for an empty root leaf).
    pub(super) fn summary(self) -> Option<Summary> {
        match self.get() {
            Node::Leaf(l) if l.len() == 0 => None,
            Node::Leaf(l) => Some(l.summary()),
            Node::Internal(x) => Some(x.summary()),
        }
    }
}

/// An internal node reached through a [`NodeRef`]: its children are valid for `'a` too.
#[derive(Clone, Copy, Debug)]
pub(super) struct InternalRef<'a>(&'a Internal);

impl<'a> InternalRef<'a> {
    /// Child `i < len`.
    #[inline]
    pub(super) fn child(self, i: usize) -> NodeRef<'a> {
        // SAFETY: (1) of `NodeRef::new` covers every node reachable from the one this
        // view came from, children included.
        unsafe { NodeRef::new(self.0.child_ptr(i)) }
    }
}

impl std::ops::Deref for InternalRef<'_> {
    type Target = Internal;
    #[inline]
    fn deref(&self) -> &Internal {
        self.0
    }
}
