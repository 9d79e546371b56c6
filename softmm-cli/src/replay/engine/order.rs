//! The order in which the replay applies calls: a linearization of the trace.
//!
//! strace prints a call's result when the call returns, and a call of a multi-threaded
//! program that another thread's line interrupts is split: its start (`<unfinished ...>`)
//! at one line, its result (`<... resumed>`) at a later one. The kernel carried the call
//! out at one point between the two, under `mmap_lock`; the calls of one address space are
//! therefore in *some* total order in which each one takes effect between its start line
//! and its result line, and every result is the one that order gives. The replay looks for
//! such an order:
//!
//! 1. **Result order first.** Calls are applied in the order of their result lines. A call
//!    whose result line comes before another's start line certainly took effect first, so
//!    only calls whose intervals overlap can be out of order.
//! 2. **A failed result asks for the calls in flight.** When a call fails in softmm where
//!    the kernel's succeeded (a placement that finds its range taken, an `mremap` whose
//!    source is not one mapping yet, an `mprotect` over a hole), the calls of *other* tasks
//!    of the same address space that had started before its result line and are not applied
//!    yet, and whose ranges meet its ranges, are applied first, oldest result first, each
//!    judged against its own result; the call is run again after each. Such a failure
//!    changes nothing that running the call again does not redo (a failed placement or
//!    `mremap` nothing at all, an `mprotect` the part before the hole), so the last run is
//!    the call's effect. The calls pulled ahead
//!    are counted as *reordered* and skipped at their own turn. A pulled call may pull
//!    others the same way, up to [`MAX_DEPTH`] deep, but only calls that started before the
//!    first call's result line.
//! 3. **So does a failure softmm would not see.** A call that failed in the kernel with
//!    `ENOMEM` over a range that is all mapped here (`mprotect`, `madvise`, `mlock`,
//!    `munlock`, `msync` over a hole that another task's `munmap` made), or with `EEXIST`
//!    for a `MAP_FIXED_NOREPLACE` over a range that is all free here, would succeed, and
//!    its success could not be undone: such a call first pulls the calls in flight that
//!    meet it, until it would fail.
//! 4. **Nothing is forced.** A result that no such order explains stays a divergence:
//!    placements are checked (see the engine's rule 2), never imposed.
//! 5. **A dump is read over a stretch of this order**, while other threads go on: see
//!    [`dump`](super::dump).

use std::sync::Arc;

use softmm::{AddressSpace, Errno, Pid, abi::*, error::SysResult};

use super::{Replay, same};
use crate::replay::strace::{Event, Op, Record, Ret};

/// How many calls a call may be pulled ahead of, one through the other.
pub const MAX_DEPTH: u32 = 4;

/// The page ranges a call names: where its effect or its failure can come from.
fn spans(op: &Op, ret: Ret) -> Vec<(u64, u64)> {
    let pages = |a: u64, len: u64| {
        (
            a,
            a.saturating_add(len.max(1).saturating_add(0xfff) & !0xfff),
        )
    };
    let mut out = Vec::with_capacity(2);
    match *op {
        Op::Mmap { addr, len, .. } => {
            if let Ret::Val(at) = ret {
                out.push(pages(at, len));
            }
            if addr != 0 {
                out.push(pages(addr, len));
            }
        }
        Op::Mremap {
            old_addr,
            old_len,
            new_len,
            new_addr,
            ..
        } => {
            out.push(pages(old_addr, old_len));
            if let Ret::Val(at) = ret {
                out.push(pages(at, new_len));
            }
            if let Some(n) = new_addr {
                out.push(pages(n, new_len));
            }
        }
        Op::Munmap { addr, len }
        | Op::Mprotect { addr, len, .. }
        | Op::Madvise { addr, len, .. }
        | Op::Mlock { addr, len }
        | Op::Mlock2 { addr, len, .. }
        | Op::Munlock { addr, len }
        | Op::Msync { addr, len, .. } => {
            if len != 0 {
                out.push(pages(addr, len));
            }
        }
        Op::Mlockall { .. } | Op::Munlockall => out.push((0, u64::MAX)),
        Op::Brk { .. } | Op::Clone { .. } | Op::Execve { .. } | Op::ExitGroup { .. } => {}
        Op::Other { .. } => {}
    }
    out
}

/// Whether `op` would succeed now where the kernel's failed as `ret` says, for the
/// failures a call in flight can explain: `ENOMEM` of a range call over memory that is
/// all mapped, `EEXIST` of `MAP_FIXED_NOREPLACE` over memory that is all free.
fn would_succeed(mm: &AddressSpace, op: &Op, ret: Ret) -> bool {
    let end = |a: u64, len: u64| a.saturating_add(len.saturating_add(0xfff) & !0xfff);
    match (op, ret) {
        (
            Op::Mprotect { addr, len, .. }
            | Op::Madvise { addr, len, .. }
            | Op::Mlock { addr, len }
            | Op::Mlock2 { addr, len, .. }
            | Op::Munlock { addr, len }
            | Op::Msync { addr, len, .. },
            Ret::Err(e),
        ) if e == Errno::ENOMEM.0 && *len != 0 => all_mapped(mm, addr & !0xfff, end(*addr, *len)),
        (
            Op::Mmap {
                addr, len, flags, ..
            },
            Ret::Err(e),
        ) if e == Errno::EEXIST.0 && flags & MAP_FIXED_NOREPLACE != 0 && *len != 0 => {
            mm.is_unmapped(*addr, end(*addr, *len))
        }
        _ => false,
    }
}

/// Whether every page of `[start, end)` is in some VMA.
fn all_mapped(mm: &AddressSpace, start: u64, end: u64) -> bool {
    let mut at = start;
    while at < end {
        match mm.find_vma(at) {
            Some((_, e)) if e > at => at = e,
            _ => return false,
        }
    }
    true
}

fn meet(a: &[(u64, u64)], b: &[(u64, u64)]) -> bool {
    a.iter()
        .any(|&(s, e)| b.iter().any(|&(t, f)| s < f && t < e))
}

impl Replay {
    /// Run a call of task `pid` (rule 2): in result order, or after the calls in flight
    /// that its failure asks for. `before` bounds the start lines of the calls it may pull.
    pub(super) fn linearized(
        &mut self,
        pid: Pid,
        mm: &Arc<AddressSpace>,
        op: &Op,
        ret: Ret,
        before: usize,
        depth: u32,
    ) -> Option<SysResult<u64>> {
        if depth < MAX_DEPTH && would_succeed(mm, op, ret) {
            for r in self.in_flight(pid, mm, before, &spans(op, ret)) {
                if self.pull(&r, mm, before, depth) && !would_succeed(mm, op, ret) {
                    break;
                }
            }
        }
        let mut got = self.exec(mm, pid, op, ret);
        if !matches!((ret, &got), (Ret::Val(_), Some(Err(_)))) || depth >= MAX_DEPTH {
            return got;
        }
        for r in self.in_flight(pid, mm, before, &spans(op, ret)) {
            if !self.pull(&r, mm, before, depth) {
                continue;
            }
            got = self.exec(mm, pid, op, ret);
            if got.as_ref().is_none_or(|g| same(ret, g)) {
                break;
            }
        }
        got
    }

    /// Apply the queued call `r` ahead of its turn, before line `before`. A call that fails
    /// where the kernel's succeeded changed nothing: it stays queued for its own turn
    /// (`false`). Otherwise it is judged at its own line and skipped at its turn.
    fn pull(&mut self, r: &Record, mm: &Arc<AddressSpace>, before: usize, depth: u32) -> bool {
        let Event::Call { op, ret } = &r.event else {
            return false;
        };
        if !self.early.insert(r.line) {
            return false;
        }
        let got = self.linearized(r.pid, mm, op, *ret, before, depth + 1);
        match got {
            Some(Err(_)) if matches!(ret, Ret::Val(_)) => {
                self.early.remove(&r.line);
                return false;
            }
            None => self.summary.outside_view += 1,
            Some(g) => self.judge(r.line, r.pid, *ret, g),
        }
        self.summary.calls += 1;
        self.summary.reordered += 1;
        self.dump_candidate(r.pid, mm, r.start);
        true
    }

    /// The queued memory calls of tasks other than `pid`, on `mm`, that started before line
    /// `before` and name a range meeting `mine`, oldest result first.
    fn in_flight(
        &mut self,
        pid: Pid,
        mm: &Arc<AddressSpace>,
        before: usize,
        mine: &[(u64, u64)],
    ) -> Vec<Record> {
        let lines: Vec<usize> = self
            .split
            .iter()
            .filter(|&(line, &start)| start < before && !self.early.contains(line))
            .map(|(&line, _)| line)
            .collect();
        let mut out = Vec::new();
        for line in lines {
            let Ok(i) = self.queue.binary_search_by_key(&line, |r| r.line) else {
                continue;
            };
            let r = &self.queue[i];
            let Event::Call { op, ret } = &r.event else {
                continue;
            };
            let memory = !matches!(
                op,
                Op::Clone { .. } | Op::Execve { .. } | Op::ExitGroup { .. } | Op::Other { .. }
            );
            if r.pid == pid || !memory || *ret == Ret::Unknown || !meet(mine, &spans(op, *ret)) {
                continue;
            }
            if self
                .machine
                .mm(r.pid)
                .is_ok_and(|theirs| Arc::ptr_eq(&theirs, mm))
            {
                out.push(r.clone());
            }
        }
        out
    }
}
