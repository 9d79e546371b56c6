//! The fork operation: fork the thread's address space, check the child against the
//! oracle as of the fork and copy-on-write in both directions, then drop the child
//! (its exit).
//!
//! The other threads of the space keep running meanwhile: their accesses race with
//! the copy (fork write-protects their pages under them), and their later writes must
//! land in the parent only; their own checks catch it if not. Their windows in the
//! child are not checked (they change them while the child is alive).
//!
//! The child's oracle is a copy of the thread's pages (so private pages are frozen as
//! of the fork, and each side's writes go to its own copy) and shares its objects
//! (shared and file pages are common: a page one side faults in or writes is the
//! other's too). The oracle methods take one side at a time: `Worker::in_child`
//! swaps the child's CPU and oracle in, lending it the objects for the duration.
//! Steps, each with its checks:
//!
//! 1. the child reads back every page of the thread's regions (bytes, or the same
//!    SIGSEGV/SIGBUS): the state as of the fork;
//! 2. the child writes a few private pages (mostly written ones, whose frames fork
//!    shared): it reads its new bytes, the parent still reads the oracle's;
//! 3. the parent writes a private page: the child still reads what it read before;
//! 4. the child writes a shared page: the parent reads the child's bytes.

use rand::seq::IndexedRandom;
use softmm::{Cpu, abi::*};

use super::{
    oracle::{Breakage, Bytes, Data, Oracle, PAGE, Page},
    worker::{Verdict, Worker},
};

/// Written private pages the child writes in step 2 (plus one never written).
const CHILD_WRITES: usize = 2;

/// A forked child: its CPU (holding the address space) and its oracle.
pub(super) struct Child {
    cpu: Cpu,
    oracle: Oracle,
}

/// A page of one of the thread's regions.
type At = (usize, usize);

impl Worker {
    /// `fork()`, the checks of the module docs, and the child's exit. The child's writes
    /// are stamped `stamp`, `stamp + 1`, ...
    pub(super) fn fork(&mut self, stamp: u32) -> Verdict {
        let mm = self
            .spec
            .mm
            .fork()
            .map_err(|e| format!("fork failed: {e}"))?;
        // Objects no page maps are dead: not worth lending to the child.
        self.oracle.collect_objects();
        let mut child = Child {
            cpu: mm.cpu(),
            oracle: self.oracle.fork(),
        };
        drop(mm);
        let pages = self
            .in_child(&mut child, Worker::read_back)
            .map_err(|e| format!("child, as of the fork: {e}"))?;
        let mut stamp = stamp;
        let mut next = || {
            let s = stamp;
            stamp = stamp.wrapping_add(1);
            s
        };
        let (written, unwritten): (Vec<At>, Vec<At>) = self
            .private_writable()
            .into_iter()
            .partition(|&at| self.written(at));
        let mut picks: Vec<At> = written
            .choose_multiple(&mut self.rng, CHILD_WRITES)
            .copied()
            .collect();
        picks.extend(unwritten.choose(&mut self.rng));
        for &at in &picks {
            self.child_private_write(&mut child, at, next())?;
        }
        let parent = written.choose(&mut self.rng).or(unwritten.first()).copied();
        if let Some(at) = parent {
            self.parent_private_write(&mut child, at, next())?;
        }
        let shared = self.shared_writable();
        let shared = shared.choose(&mut self.rng).copied();
        if let Some(at) = shared {
            self.child_shared_write(&mut child, at, next())?;
        }
        // The child exits: its address space goes with its CPU.
        drop(child);
        Ok(format!(
            "child read {pages} pages, wrote {} private and {} shared; parent wrote {}",
            picks.len(),
            usize::from(shared.is_some()),
            usize::from(parent.is_some())
        ))
    }

    /// Run `f` as the child: its CPU and oracle in place of the thread's, with the
    /// objects lent to it (module docs).
    fn in_child<T>(&mut self, child: &mut Child, f: impl FnOnce(&mut Worker) -> T) -> T {
        let swap = |w: &mut Worker, child: &mut Child| {
            std::mem::swap(&mut w.oracle.objects, &mut child.oracle.objects);
            std::mem::swap(&mut w.cpu, &mut child.cpu);
            std::mem::swap(&mut w.oracle, &mut child.oracle);
        };
        swap(self, child);
        let out = f(self);
        swap(self, child);
        out
    }

    /// Read back every page of the thread's regions; the number of pages read.
    fn read_back(&mut self) -> Result<usize, String> {
        let mut pages = 0;
        for r in 0..self.oracle.regions.len() {
            for i in 0..self.oracle.regions[r].pages.len() {
                self.read(r, i as u64 * PAGE, PAGE)
                    .map_err(|e| format!("page {i} of region {r}: {e}"))?;
                pages += 1;
            }
        }
        Ok(pages)
    }

    /// Step 2 on page `at`: the child writes it; the child reads the new bytes, the
    /// parent its own.
    fn child_private_write(&mut self, child: &mut Child, at: At, stamp: u32) -> Result<(), String> {
        let (r, i) = at;
        let step = |e: String| format!("child's write of private page {i} of region {r}: {e}");
        self.in_child(child, |w| {
            w.write(r, i, 1, None, stamp)?;
            w.read(r, i as u64 * PAGE, PAGE)
        })
        .map_err(step)?;
        if self.oracle.breakage == Some(Breakage::ForkShares) {
            self.oracle.write_page(r, i, Bytes::Pattern(stamp));
        }
        self.read(r, i as u64 * PAGE, PAGE)
            .map_err(|e| step(format!("the parent's read: {e}")))?;
        Ok(())
    }

    /// Step 3 on page `at`: the parent writes it; the child reads what it did before.
    fn parent_private_write(
        &mut self,
        child: &mut Child,
        at: At,
        stamp: u32,
    ) -> Result<(), String> {
        let (r, i) = at;
        let step = |e: String| format!("parent's write of private page {i} of region {r}: {e}");
        self.write(r, i, 1, None, stamp).map_err(step)?;
        self.in_child(child, |w| w.read(r, i as u64 * PAGE, PAGE))
            .map_err(|e| step(format!("the child's read: {e}")))?;
        Ok(())
    }

    /// Step 4 on page `at`: the child writes it; the parent reads the child's bytes.
    fn child_shared_write(&mut self, child: &mut Child, at: At, stamp: u32) -> Result<(), String> {
        let (r, i) = at;
        let step = |e: String| format!("child's write of shared page {i} of region {r}: {e}");
        self.in_child(child, |w| w.write(r, i, 1, None, stamp))
            .map_err(step)?;
        self.read(r, i as u64 * PAGE, PAGE)
            .map_err(|e| step(format!("the parent's read: {e}")))?;
        Ok(())
    }

    /// Writable private pages (anonymous or file) of the thread's regions.
    fn private_writable(&self) -> Vec<At> {
        self.pages_where(|p| {
            matches!(p, Page::Private { .. } | Page::PrivateFile { .. })
                && p.prot().is_some_and(|prot| prot & PROT_WRITE != 0)
        })
    }

    /// Writable shared pages inside their objects.
    fn shared_writable(&self) -> Vec<At> {
        self.pages_where(|p| match p {
            Page::Shared { prot, obj, pgoff } => {
                prot & PROT_WRITE != 0 && self.oracle.in_object(obj, pgoff)
            }
            _ => false,
        })
    }

    fn pages_where(&self, keep: impl Fn(Page) -> bool) -> Vec<At> {
        let regions = self.oracle.regions.iter().enumerate();
        regions
            .flat_map(|(r, region)| (0..region.pages.len()).map(move |i| (r, i)))
            .filter(|&(r, i)| keep(self.oracle.page(r, i)))
            .collect()
    }

    /// Whether the private page at `at` holds a frame of its own (which fork shares).
    fn written(&self, (r, i): At) -> bool {
        matches!(
            self.oracle.page(r, i),
            Page::Private {
                data: Data::Frame(_) | Data::Lazy(_),
                ..
            } | Page::PrivateFile { copy: Some(_), .. }
        )
    }
}
