//! Where a `/proc/PID/maps` dump is read in the replay's order of calls.
//!
//! capture-trace.sh's destructor reads the maps file after its start marker
//! (`munmap(0x1000, 0)`) returns and before its end marker starts, while the other threads
//! of the process go on mapping and unmapping. Linux 6.18 reads the file VMA by VMA, in
//! address order, each one under its own lock: the first VMA ending above the last one
//! printed, as it is at that moment. So each line shows the address space at some point
//! of the read, and a later line never shows an earlier point than the line before it.
//!
//! The replay keeps the *points* of the read: the state right after the start marker, then
//! the state after each call of that address space applied (in the order of
//! [`order`](super::order)) until the dumping thread's next record, at most
//! [`MAX_DUMP_POINTS`], and only while every call before the point started before the end
//! marker did. Without Linux's maps text the dump is the first point. With it
//! ([`Replay::expect_dump`]), the replay reads its own maps the way Linux does: line by
//! line, each line from the earliest point not before the previous line's whose next VMA
//! is the one Linux printed there (over the memory the replay knows), or from the same
//! point as the previous line if there is none. That reading, or the single point nearest
//! Linux's maps if it is nearer, is the snapshot (its smaps are those of the last point
//! read).
//!
//! Only the points of the replay's own order are read: a dump that only another order of
//! the calls in the window explains (a call that completed later taking effect before one
//! that completed earlier, with no result to show it) stays a difference in the maps
//! comparison.

use std::sync::Arc;

use softmm::{AddressSpace, Pid};

use super::{Replay, Snapshot};
use crate::replay::{
    maps_cmp::{MapsLine, compare, parse_maps},
    ranges::RangeSet,
};

/// At most this many points of a dump are kept.
pub const MAX_DUMP_POINTS: usize = 256;

/// A dump whose reading may overlap other tasks' calls.
pub struct DumpWindow {
    pid: Pid,
    mm: Arc<AddressSpace>,
    expected: Vec<MapsLine>,
    /// The points so far: the latest start line of the calls before it, and the snapshot.
    points: Vec<(usize, Snapshot)>,
    /// The latest start line of the calls applied since the dump began.
    latest_start: usize,
}

impl DumpWindow {
    /// The dumping task.
    pub fn pid(&self) -> Pid {
        self.pid
    }
}

impl Replay {
    /// The start marker of `pid`'s dump, on `mm`, at `line`: the first point.
    pub(super) fn open_window(&mut self, pid: Pid, mm: &Arc<AddressSpace>, line: usize) {
        if self.snapshots.contains_key(&pid) {
            return;
        }
        self.close_window(usize::MAX);
        self.take_snapshot(pid, line);
        let Some(expected) = self.dumps.remove(&pid) else {
            return;
        };
        let first = self.snapshots.get(&pid).cloned();
        self.window = Some(DumpWindow {
            pid,
            mm: Arc::clone(mm),
            expected,
            points: first.into_iter().map(|s| (0, s)).collect(),
            latest_start: 0,
        });
    }

    /// A call of task `pid` that started at line `start` was applied to `mm`: a new point
    /// of the dump being read, if it is on that address space.
    pub(super) fn dump_candidate(&mut self, pid: Pid, mm: &Arc<AddressSpace>, start: usize) {
        let Some(w) = &mut self.window else {
            return;
        };
        if w.pid == pid || !Arc::ptr_eq(&w.mm, mm) {
            return;
        }
        w.latest_start = w.latest_start.max(start);
        let latest = w.latest_start;
        let line = w.points.first().map_or(0, |p| p.1.line);
        let snap = self.snapshot_of(mm, line);
        let Some(w) = &mut self.window else {
            return;
        };
        w.points.push((latest, snap));
        if w.points.len() >= MAX_DUMP_POINTS {
            self.close_window(usize::MAX);
        }
    }

    /// The dump's end marker started at line `end`: the snapshot is the reading nearest
    /// Linux's maps among the points whose calls all started before it.
    pub(super) fn close_window(&mut self, end: usize) {
        let Some(w) = self.window.take() else {
            return;
        };
        let points: Vec<Snapshot> = w
            .points
            .into_iter()
            .filter(|(latest, _)| *latest < end)
            .map(|(_, s)| s)
            .collect();
        if let Some(snap) = nearest(&w.expected, &points) {
            self.snapshots.insert(w.pid, snap);
        }
    }
}

/// The reading of `points` nearest `linux`: a line-by-line reading, or a single point.
fn nearest(linux: &[MapsLine], points: &[Snapshot]) -> Option<Snapshot> {
    let single = points.iter().min_by_key(|s| distance(linux, s))?;
    let read = read_lines(linux, points);
    Some(match read {
        Some(r) if distance(linux, &r) < distance(linux, single) => r,
        _ => single.clone(),
    })
}

/// How far a snapshot's maps are from Linux's: (pages, VMAs) that differ, over what the
/// replay knows.
fn distance(linux: &[MapsLine], snap: &Snapshot) -> (u64, u64) {
    let Ok(ours) = parse_maps(&snap.maps) else {
        return (u64::MAX, u64::MAX);
    };
    let c = compare(&ours, linux, &snap.known);
    (c.pages - c.matched, c.vmas - c.vmas_identical)
}

/// Read the maps of `points` as Linux reads its file (see the module doc); `None` when a
/// point's maps cannot be parsed.
fn read_lines(linux: &[MapsLine], points: &[Snapshot]) -> Option<Snapshot> {
    let last = points.last()?;
    let known = &last.known;
    let parsed: Vec<Vec<(MapsLine, &str)>> = points
        .iter()
        .map(|s| {
            Some(
                parse_maps(&s.maps)
                    .ok()?
                    .into_iter()
                    .zip(s.maps.lines())
                    .collect(),
            )
        })
        .collect::<Option<_>>()?;
    let (mut k, mut addr, mut text) = (0, 0, String::new());
    loop {
        let next = |k: usize| parsed[k].iter().find(|(l, _)| l.end > addr);
        let agrees = |k: usize| agrees(linux, known, addr, next(k).map(|(l, _)| l));
        k = (k..points.len()).find(|&i| agrees(i)).unwrap_or(k);
        let Some((l, line)) = next(k) else {
            break;
        };
        text.push_str(line);
        text.push('\n');
        addr = l.end;
    }
    Some(Snapshot {
        maps: text,
        smaps: points[k].smaps.clone(),
        known: known.clone(),
        line: last.line,
    })
}

/// Whether `next` (the next VMA above `addr` at some point, `None` for no more) is what
/// Linux printed after `addr`, over the memory the replay knows.
fn agrees(linux: &[MapsLine], known: &RangeSet, addr: u64, next: Option<&MapsLine>) -> bool {
    let end = next.map_or(u64::MAX, |l| l.end);
    let mut scope = RangeSet::new();
    for (s, e) in known.clip(addr, end) {
        scope.insert(s, e);
    }
    let ours: Vec<MapsLine> = next.cloned().into_iter().collect();
    let c = compare(&ours, linux, &scope);
    c.matched == c.pages && c.vmas_identical == c.vmas
}
