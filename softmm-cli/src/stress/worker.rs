//! One stress thread: draw an operation, predict it with the oracle, perform it on
//! softmm through the thread's own `Cpu`, and compare.
//!
//! A thread stops at its first mismatch (its oracle may no longer describe the real
//! state, so later verdicts would be noise); the mismatch names the operation's index,
//! which reproduces the failure with `--ops index+1` and the same seed. A thread that
//! finishes cleanly reads back every page of its regions (the verify pass), after the
//! `--inject-bug` hook, if set, flipped one byte behind the oracle's back.
//!
//! Every operation and its result feed an FNV-1a digest, so two runs can be compared
//! for determinism without keeping the sequence.
//!
//! Each thread creates its own memfd at the start (sized [`FILE_PAGES`]) and closes it
//! at the end, after the verify pass compared the whole file with the oracle; from
//! then on the object lives only while a mapping holds it, which is what the frame
//! accounting counts.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use softmm::{
    AccessFault, AddressSpace, Cpu, Errno, Fault, SegvCode, Signal,
    abi::*,
    file::{self, OpenFile},
    mm::truncate,
};

use super::{
    file::{FILE_MAX_PAGES, FILE_PAGES},
    ops::{Kind, Op},
    oracle::{Breakage, Bytes, HEAP, Oracle, PAGE, Seen, Stop, WINDOW},
};

/// What the runner and the threads share.
#[derive(Debug, Default)]
pub struct Shared {
    /// Set when the time is up.
    pub stop: AtomicBool,
    /// Operations done by all threads (progress).
    pub ops_done: AtomicU64,
    /// Mismatches found by all threads (progress).
    pub mismatches: AtomicU64,
}

/// What one thread is given.
#[derive(Debug)]
pub struct Spec {
    /// Thread number (0-based, over all spaces).
    pub index: usize,
    /// Its address space.
    pub mm: Arc<AddressSpace>,
    /// Its window: base and pages (reserved PROT_NONE by the runner).
    pub window: (u64, usize),
    /// The heap (`start_brk`, pages) when this thread owns it.
    pub heap: Option<(u64, usize)>,
    /// Its RNG seed.
    pub seed: u64,
    /// Operations to do, or `None` until told to stop.
    pub ops: Option<u64>,
    /// Flip one byte behind the oracle's back before the verify pass.
    pub inject_bug: bool,
    /// A deliberate oracle bug.
    pub breakage: Option<Breakage>,
    /// Print every operation and its result on stderr.
    pub trace: bool,
    /// Also draw MADV_REMOVE.
    pub madv_remove: bool,
}

/// A disagreement between softmm and the oracle.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Mismatch {
    /// Thread number.
    pub thread: usize,
    /// Index of the operation in the thread's sequence (the number done before it).
    pub op_index: u64,
    /// `--ops` that reproduces it: `op_index + 1`, or `op_index` for the verify pass.
    pub repro_ops: u64,
    /// The operation (`w+` offsets are from `window`, `h+` from `heap`).
    pub op: String,
    /// Window base address.
    pub window: String,
    /// What differed.
    pub what: String,
}

/// What one thread reports.
#[derive(Debug)]
pub struct Report {
    /// Thread number.
    pub index: usize,
    /// Operations done, per [`Kind::index`].
    pub counts: [u64; Kind::ALL.len()],
    /// Accesses that ended in an expected SIGSEGV or SIGBUS.
    pub signals: u64,
    /// Operations done (drawn ones, not the verify pass).
    pub ops: u64,
    /// The first mismatch, if any.
    pub mismatch: Option<Mismatch>,
    /// FNV-1a over every operation and result.
    pub digest: u64,
    /// Frames the oracle says are held: (private, shared).
    pub resident: (u64, u64),
}

/// Run one thread to completion.
pub fn run(spec: Spec, shared: &Shared) -> Report {
    let mut oracle = Oracle::new(spec.window.0, spec.window.1, spec.heap, spec.breakage);
    oracle.create_file(FILE_PAGES);
    let name = format!("stress-{}", spec.index);
    let file = match file::memfd_create(spec.mm.phys(), name.as_bytes(), 0) {
        Ok(f) => f,
        Err(e) => return failed(spec.index, format!("memfd_create failed: {e}")),
    };
    truncate(&file.object, FILE_PAGES as u64 * PAGE);
    let mut w = Worker {
        cpu: spec.mm.cpu(),
        oracle,
        file,
        rng: ChaCha8Rng::seed_from_u64(spec.seed),
        counts: [0; Kind::ALL.len()],
        signals: 0,
        digest: 0xcbf2_9ce4_8422_2325,
        spec,
    };
    let mut done = 0u64;
    let mut mismatch = None;
    while !shared.stop.load(Relaxed) && w.spec.ops.is_none_or(|n| done < n) {
        let op = Op::draw(&mut w.rng, &w.oracle, w.spec.madv_remove);
        if let Err(what) = w.perform(op.clone()) {
            mismatch = Some(w.mismatch(done, op.to_string(), what));
            break;
        }
        done += 1;
        shared.ops_done.fetch_add(1, Relaxed);
    }
    if mismatch.is_none() {
        mismatch = w.finish(done).err().map(|m| Mismatch {
            repro_ops: done,
            ..m
        });
    }
    if mismatch.is_some() {
        shared.mismatches.fetch_add(1, Relaxed);
    }
    // Close the file: from now on its object lives only while a mapping holds it.
    let Worker {
        mut oracle,
        file,
        counts,
        signals,
        digest,
        spec,
        ..
    } = w;
    drop(file);
    oracle.close_file();
    oracle.collect_objects();
    Report {
        index: spec.index,
        counts,
        signals,
        ops: done,
        mismatch,
        digest,
        resident: oracle.resident(),
    }
}

/// The report of a thread that panicked (a library assertion, most likely).
pub fn panicked(index: usize, payload: &(dyn std::any::Any + Send)) -> Report {
    let why = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    failed(index, format!("the thread panicked: {why}"))
}

/// The report of a thread that could not run.
fn failed(index: usize, what: String) -> Report {
    Report {
        index,
        counts: [0; Kind::ALL.len()],
        signals: 0,
        ops: 0,
        mismatch: Some(Mismatch {
            thread: index,
            op_index: 0,
            repro_ops: 0,
            op: "?".to_string(),
            window: "?".to_string(),
            what,
        }),
        digest: 0,
        resident: (0, 0),
    }
}

pub(super) struct Worker {
    pub(super) spec: Spec,
    pub(super) cpu: Cpu,
    pub(super) oracle: Oracle,
    /// The thread's memfd.
    pub(super) file: Arc<OpenFile>,
    pub(super) rng: ChaCha8Rng,
    counts: [u64; Kind::ALL.len()],
    signals: u64,
    digest: u64,
}

pub(super) type Verdict = Result<String, String>;

impl Worker {
    fn mismatch(&self, index: u64, op: String, what: String) -> Mismatch {
        Mismatch {
            thread: self.spec.index,
            op_index: index,
            repro_ops: index + 1,
            op,
            window: format!("{:#x}", self.spec.window.0),
            what,
        }
    }

    /// Perform `op` on softmm and on the oracle; `Err` describes a mismatch.
    fn perform(&mut self, op: Op) -> Result<(), String> {
        let op = self.prepare(op);
        self.counts[op.kind().index()] += 1;
        let outcome = self.execute(&op);
        if self.spec.trace {
            eprintln!("[{}] {op} = {outcome:?}", self.spec.index);
        }
        let outcome = outcome?;
        for b in format!("{op} = {outcome}\n").bytes() {
            self.digest = (self.digest ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Ok(())
    }

    /// A grow or DONTUNMAP move needs its source inside one VMA (else softmm, like
    /// Linux, fails after unmapping the destination): such a move becomes an in-place
    /// grow of the same source, which fails with EFAULT before changing anything.
    fn prepare(&self, op: Op) -> Op {
        match op {
            Op::Mremap {
                src,
                old,
                new,
                dst: Some(_),
                dontunmap,
            } if (dontunmap || new > old) && self.vma_extent(src).1 < src + old => Op::Mremap {
                src,
                old,
                new: old + 1,
                dst: None,
                dontunmap: false,
            },
            op => op,
        }
    }

    fn execute(&mut self, op: &Op) -> Verdict {
        let mm = Arc::clone(&self.spec.mm);
        let w = self.oracle.regions[WINDOW].base;
        let at = |p: usize| w + p as u64 * PAGE;
        let len = |n: usize| n as u64 * PAGE;
        let (want, got) = match *op {
            Op::Read { r, off, len } => return self.read(r, off, len),
            Op::Write {
                r,
                page,
                n,
                fill,
                stamp,
            } => return self.write(r, page, n, fill, stamp),
            Op::Layout => return self.layout(),
            Op::Pread { off, len } => return self.pread(off, len),
            Op::Fork { stamp } => return self.fork(stamp),
            Op::MmapFile {
                page,
                n,
                prot,
                shared,
                populate,
                noreplace,
                pgoff,
            } => {
                let mut flags = if shared { MAP_SHARED } else { MAP_PRIVATE };
                flags |= if noreplace {
                    MAP_FIXED_NOREPLACE
                } else {
                    MAP_FIXED
                };
                flags |= if populate { MAP_POPULATE } else { 0 };
                let want = self
                    .oracle
                    .mmap_file(page, n, prot, shared, populate, noreplace, pgoff);
                let file = Ok(Arc::clone(&self.file));
                let got = mm.mmap_file(at(page), len(n), prot, flags, file, len(pgoff));
                (want, got)
            }
            Op::Pwrite {
                pgoff,
                n,
                fill,
                stamp,
            } => {
                let bytes_of = |k: usize| match fill {
                    Some(b) => Bytes::Fill(b),
                    None => Bytes::Pattern(stamp.wrapping_add(k as u32)),
                };
                let mut buf = vec![0u8; n * PAGE as usize];
                for (k, chunk) in buf.chunks_mut(PAGE as usize).enumerate() {
                    bytes_of(k).expand(0, chunk);
                }
                let want = self.oracle.pwrite(pgoff, n, bytes_of);
                let got = file::pwrite(&self.file, &buf, len(pgoff) as i64).map(|n| n as u64);
                (want, got)
            }
            Op::Ftruncate { pages } => {
                let want = self.oracle.ftruncate(pages);
                truncate(&self.file.object, len(pages));
                (want, Ok(0))
            }
            Op::Mmap {
                page,
                n,
                prot,
                shared,
                populate,
                noreplace,
            } => {
                let mut flags = MAP_ANONYMOUS;
                flags |= if shared { MAP_SHARED } else { MAP_PRIVATE };
                flags |= if noreplace {
                    MAP_FIXED_NOREPLACE
                } else {
                    MAP_FIXED
                };
                flags |= if populate { MAP_POPULATE } else { 0 };
                let want = self
                    .oracle
                    .mmap(WINDOW, page, n, prot, shared, populate, noreplace);
                (want, mm.mmap(at(page), len(n), prot, flags, -1, 0))
            }
            Op::Munmap { page, n } => (
                self.oracle.munmap(WINDOW, page, n),
                mm.munmap(at(page), len(n)),
            ),
            Op::Mprotect { r, page, n, prot } => {
                let addr = self.oracle.regions[r].addr(page);
                (
                    self.oracle.mprotect(r, page, n, prot),
                    mm.mprotect(addr, len(n), prot),
                )
            }
            Op::Madvise { r, page, n, advice } => {
                let addr = self.oracle.regions[r].addr(page);
                (
                    self.oracle.madvise(r, page, n, advice),
                    mm.madvise(addr, len(n), advice),
                )
            }
            Op::Mremap {
                src,
                old,
                new,
                dst,
                dontunmap,
            } => {
                // An in-place grow, and a resizing FIXED move (whose moving part must
                // lie in one VMA), depend on where the VMA ends.
                let vma = if (dst.is_none() && new > old) || (dst.is_some() && new != old) {
                    self.vma_extent(src)
                } else {
                    (src, src + old)
                };
                let want = self
                    .oracle
                    .mremap(WINDOW, src, old, new, dst, dontunmap, vma);
                let flags = match (dst, dontunmap) {
                    (None, _) => 0,
                    (Some(_), false) => MREMAP_MAYMOVE | MREMAP_FIXED,
                    (Some(_), true) => MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
                };
                let to = dst.map_or(0, at);
                (want, mm.mremap(at(src), len(old), len(new), flags, to))
            }
            Op::Brk { off } => {
                let target = self.oracle.regions[HEAP].base + off;
                (self.oracle.brk(target), mm.brk(target))
            }
        };
        let text = |r: Result<u64, Errno>| match r {
            Ok(v) if v >= w => format!("w+{:#x}", v - w),
            Ok(v) => format!("{v:#x}"),
            Err(e) => format!("-1 {}", e.name()),
        };
        if want == got {
            Ok(text(got))
        } else {
            Err(format!("returned {}, expected {}", text(got), text(want)))
        }
    }

    /// Page range `[lo, hi)` of the VMA holding window page `page`, clipped to the
    /// window (`(page, page)` when none does).
    fn vma_extent(&self, page: usize) -> (usize, usize) {
        let region = &self.oracle.regions[WINDOW];
        let addr = region.addr(page);
        let end = region.addr(region.pages.len());
        let vmas = self.spec.mm.vmas();
        match vmas.iter().find(|v| v.start <= addr && addr < v.end) {
            Some(v) => (
                ((v.start.max(region.base) - region.base) / PAGE) as usize,
                ((v.end.min(end) - region.base) / PAGE) as usize,
            ),
            None => (page, page),
        }
    }

    /// Guest read of `len` bytes at offset `off` of region `r`, checked page by page.
    pub(super) fn read(&mut self, r: usize, off: u64, len: u64) -> Verdict {
        let base = self.oracle.regions[r].base;
        let addr = base + off;
        let mut buf = vec![0u8; len as usize];
        let got = self.cpu.read(addr, &mut buf);
        let mut done = 0u64;
        let mut expect = [0u8; PAGE as usize];
        while done < len {
            let va = addr + done;
            let i = ((va - base) / PAGE) as usize;
            let po = (va % PAGE) as usize;
            let n = (PAGE - va % PAGE).min(len - done) as usize;
            let (bytes, lazy) = match self.oracle.read_page(r, i) {
                Seen::Fault(stop) => return self.check_fault(got, va, done, stop),
                Seen::Bytes { bytes, lazy } => (bytes, lazy),
            };
            if let Err(f) = got
                && f.done <= done
            {
                return Err(format!(
                    "read faulted at {:#x} after {} bytes ({f}); expected bytes there",
                    f.addr, f.done
                ));
            }
            let chunk = &buf[done as usize..done as usize + n];
            bytes.expand(po, &mut expect[..n]);
            if chunk != &expect[..n] {
                if lazy && chunk.iter().all(|b| *b == 0) {
                    self.oracle.reclaimed(r, i);
                } else {
                    let k = chunk
                        .iter()
                        .zip(&expect)
                        .position(|(a, b)| a != b)
                        .unwrap_or(0);
                    return Err(format!(
                        "byte at {:#x} is {:#04x}, expected {:#04x} ({:?} of page {:?})",
                        va + k as u64,
                        chunk[k],
                        expect[k],
                        bytes,
                        self.oracle.page(r, i)
                    ));
                }
            }
            done += n as u64;
        }
        match got {
            Ok(()) => Ok("ok".to_string()),
            Err(f) => Err(format!("read faulted ({f}); expected it to complete")),
        }
    }

    /// Read `len` bytes at `off` of the memfd through its page cache, compared with the
    /// oracle's object (a hole reads as zeros and stays a hole; the read stops at the
    /// end of the file).
    fn pread(&mut self, off: u64, len: u64) -> Verdict {
        let size = self.oracle.file_pages() as u64 * PAGE;
        if self.file.object.size() != size {
            return Err(format!(
                "the file's size is {:#x}, expected {size:#x}",
                self.file.object.size()
            ));
        }
        let mut buf = vec![0u8; len as usize];
        let got = self.file.object.read(&mut buf, off) as u64;
        let want = size.saturating_sub(off).min(len);
        if got != want {
            return Err(format!("read {got:#x} bytes, expected {want:#x}"));
        }
        let mut expect = [0u8; PAGE as usize];
        let mut done = 0u64;
        while done < want {
            let pos = off + done;
            let po = (pos % PAGE) as usize;
            let n = (PAGE - pos % PAGE).min(want - done) as usize;
            let bytes = self
                .oracle
                .file_page((pos / PAGE) as usize)
                .ok_or("the oracle's file ends before its size")?;
            bytes.expand(po, &mut expect[..n]);
            let chunk = &buf[done as usize..done as usize + n];
            if let Some(k) = chunk.iter().zip(&expect).position(|(a, b)| a != b) {
                return Err(format!(
                    "file byte {:#x} is {:#04x}, expected {:#04x} ({bytes:?})",
                    pos + k as u64,
                    chunk[k],
                    expect[k]
                ));
            }
            done += n as u64;
        }
        Ok(format!("{got:#x}"))
    }

    /// Guest write of whole pages, predicted page by page.
    pub(super) fn write(
        &mut self,
        r: usize,
        page: usize,
        n: usize,
        fill: Option<u8>,
        stamp: u32,
    ) -> Verdict {
        let addr = self.oracle.regions[r].addr(page);
        let bytes_of = |k: usize| match fill {
            Some(b) => Bytes::Fill(b),
            None => Bytes::Pattern(stamp.wrapping_add(k as u32)),
        };
        let got = match fill {
            Some(b) => self.cpu.fill(addr, b, n as u64 * PAGE),
            None => {
                let mut buf = vec![0u8; n * PAGE as usize];
                for (k, chunk) in buf.chunks_mut(PAGE as usize).enumerate() {
                    bytes_of(k).expand(0, chunk);
                }
                self.cpu.write(addr, &buf)
            }
        };
        for k in 0..n {
            if let Some(stop) = self.oracle.write_page(r, page + k, bytes_of(k)) {
                let va = addr + k as u64 * PAGE;
                return self.check_fault(got, va, k as u64 * PAGE, stop);
            }
        }
        match got {
            Ok(()) => Ok("ok".to_string()),
            Err(f) => Err(format!("write faulted ({f}); expected it to complete")),
        }
    }

    /// The access was predicted to stop at `va` after `done` bytes with `stop`.
    fn check_fault(
        &mut self,
        got: Result<(), AccessFault>,
        va: u64,
        done: u64,
        stop: Stop,
    ) -> Verdict {
        let want = format!("{stop:?} at {va:#x} after {done} bytes");
        let Err(f) = got else {
            return Err(format!("access completed; expected {want}"));
        };
        let kind_ok = match (stop, f.fault) {
            (Stop::MapErr, Fault::Segv { code, .. }) => code == SegvCode::MapErr,
            (Stop::AccErr, Fault::Segv { code, .. }) => code == SegvCode::AccErr,
            (Stop::Bus, Fault::Bus { .. }) => f.signal == Signal::Bus,
            _ => false,
        };
        if !kind_ok || f.addr != va || f.done != done {
            return Err(format!(
                "access stopped with {f} ({:?}); expected {want}",
                f.fault
            ));
        }
        self.signals += 1;
        Ok(format!("{stop:?}+{done}"))
    }

    /// The inject hook, then read back every page and the whole file.
    fn finish(&mut self, done: u64) -> Result<(), Mismatch> {
        if self.spec.inject_bug {
            let hook = "inject-bug hook".to_string();
            self.inject().map_err(|e| self.mismatch(done, hook, e))?;
        }
        let op = Op::Pread {
            off: 0,
            len: FILE_MAX_PAGES as u64 * PAGE,
        };
        self.counts[Kind::Verify.index()] += 1;
        if let Err(e) = self.execute(&op) {
            return Err(self.mismatch(done, op.to_string(), format!("verify pass: {e}")));
        }
        for r in 0..self.oracle.regions.len() {
            for i in 0..self.oracle.regions[r].pages.len() {
                let op = Op::Read {
                    r,
                    off: i as u64 * PAGE,
                    len: PAGE,
                };
                self.counts[Kind::Verify.index()] += 1;
                if let Err(e) = self.execute(&op) {
                    return Err(self.mismatch(done, op.to_string(), format!("verify pass: {e}")));
                }
            }
        }
        Ok(())
    }

    /// Map, write (both known to the oracle) and then flip one byte of window page 0
    /// through the MMU without telling the oracle.
    fn inject(&mut self) -> Result<(), String> {
        let stamp = self.rng.random();
        for op in [
            Op::Mmap {
                page: 0,
                n: 1,
                prot: PROT_READ | PROT_WRITE,
                shared: false,
                populate: false,
                noreplace: false,
            },
            Op::Write {
                r: WINDOW,
                page: 0,
                n: 1,
                fill: None,
                stamp,
            },
        ] {
            self.perform(op)?;
        }
        let addr = self.oracle.regions[WINDOW].base + 123;
        let mut b = [0u8];
        self.cpu.read(addr, &mut b).map_err(|e| e.to_string())?;
        self.cpu.write(addr, &[!b[0]]).map_err(|e| e.to_string())
    }
}
