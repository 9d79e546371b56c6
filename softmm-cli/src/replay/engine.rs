//! The replay engine: a trace's records applied, in order, to a softmm [`Machine`].
//!
//! Rules:
//!
//! 1. **Processes.** The first task of the trace is a fresh process. Every other task is
//!    made by the clone that returns its pid, as that clone made it (`CLONE_VM` shares the
//!    parent's address space, otherwise it is forked; `CLONE_FILES`, `CLONE_THREAD`
//!    likewise). A child can run before its clone returns (strace shows the clone
//!    completing later), so the records of a task not made yet wait, in order, and run
//!    right after the clone that makes it; a task no traced clone made runs at the end
//!    as a fresh process. A successful `execve` gives the task a fresh address space;
//!    `exit_group` ends its thread group; `+++ exited`/`+++ killed` end the task.
//! 2. **Placement is the kernel's, checked.** A non-fixed `mmap` that succeeded is placed
//!    where the trace says (`MAP_FIXED_NOREPLACE` at the traced address: it fails with
//!    `EEXIST` if softmm's view has something there); an `mremap` that moved goes to the
//!    traced address (`MREMAP_FIXED`) only if nothing is mapped there (`EEXIST` otherwise:
//!    the kernel found that range free, so a mapping there means the replay's order is
//!    wrong, and forcing the move would hide it); one that stayed put is run without
//!    `MREMAP_MAYMOVE`. Before that, softmm's own policy is asked where it would have put
//!    the mapping, given the `mmap_base` inferred for the address space (the end of its first
//!    non-fixed mapping: what the kernel mapped above it at `execve` is unknown): that is the
//!    **placement agreement**.
//! 3. **Results.** Every call's result must be the traced one: the same value, or the same
//!    errno. The first `brk` of an address space teaches softmm where the heap starts.
//! 4. **Outside view.** The replay knows only memory created by traced calls (the *known*
//!    ranges of an address space, inherited through fork). A call that succeeded in the
//!    trace and touches no known page (`mprotect` of the executable's RELRO, say) is not run:
//!    it counts as outside view. A call that touches known and unknown memory and fails in
//!    softmm with `ENOMEM` where the kernel succeeded is run again on its known parts only.
//! 5. **Files** are known by the path `-y` printed: the same descriptor and path in a process
//!    is the same open file (so its mappings merge as Linux's do). It is taken as opened
//!    read-only until a shared writable mapping of it succeeds in the trace; from then on
//!    that descriptor is a new, writable open file.
//! 6. **Writes are assumed.** A trace records no memory accesses, but which VMAs merge
//!    depends on which were written (their anon identity). Private writable memory that a
//!    traced call creates or makes writable is taken as written once, at once
//!    ([`AddressSpace::assume_written`]): real programs write nearly all of it before they
//!    change its layout again (ld.so relocates `.data` before its RELRO `mprotect`, malloc
//!    writes chunk headers).
//! 7. **Dumps.** The marker `munmap(0x1000, 0)` that capture-trace.sh's destructor makes is
//!    where `/proc/PID/maps` was read: the maps of that process are kept at its first marker
//!    (or at its exit, or at the end of the trace) for comparison. Other threads may change
//!    the address space while it is read; see [`dump`] for how the read is placed.
//! 8. **Order.** Records arrive in the order strace printed their results, but the kernel
//!    carried each call out at one point between its start line and its result line (a
//!    linearization); [`order`] applies them in result order except where a result shows
//!    that another task's call, in flight at that line, had already taken effect.

mod calls;
pub mod dump;
pub mod order;

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    sync::{Arc, Weak},
};

use serde::Serialize;
use softmm::{AddressSpace, Config, Errno, Machine, Pid, abi::*, error::SysResult};

use self::dump::DumpWindow;
use super::{
    maps_cmp::{MapsLine, parse_maps},
    ranges::RangeSet,
    strace::{Event, Op, Record, Ret},
};

/// The address of capture-trace.sh's dump-start marker (`munmap(0x1000, 0)`).
pub const DUMP_MARKER: u64 = 0x1000;

/// At most this many divergences are kept for the report.
const KEEP_DIVERGENCES: usize = 50;

/// A call whose result differs from the trace.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Divergence {
    /// Line of the trace.
    pub line: usize,
    /// The task that made the call.
    pub pid: Pid,
    /// The traced result.
    pub expected: String,
    /// softmm's result.
    pub got: String,
}

/// Placement agreement: non-fixed mappings whose address softmm's policy would have chosen.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Placement {
    /// Non-fixed successful `mmap`s after the first of their address space.
    pub total: u64,
    /// How many of them softmm would have placed where the kernel did.
    pub agreed: u64,
}

/// What a replay did.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Records (calls and process events) read.
    pub records: u64,
    /// Memory-management calls in the trace.
    pub calls: u64,
    /// Processes (thread groups) that appeared.
    pub processes: u64,
    /// Calls whose result matched the trace.
    pub matched: u64,
    /// Calls whose result differed.
    pub diverged: u64,
    /// Calls that touched only memory the replay does not know.
    pub outside_view: u64,
    /// Calls the replay does not model (other system calls, `?` results).
    pub ignored: u64,
    /// Calls applied ahead of calls whose results strace printed first: another task's call
    /// that was in flight when a result showed it had already taken effect (rule 8).
    pub reordered: u64,
    /// Placement agreement.
    pub placement: Placement,
    /// The first divergences.
    pub divergences: Vec<Divergence>,
}

/// `/proc/PID/maps` (and smaps) of a process at its dump marker.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The maps text.
    pub maps: String,
    /// The smaps text.
    pub smaps: String,
    /// The memory the traced calls created (what a comparison may judge).
    pub known: RangeSet,
    /// Line of the trace where it was taken.
    pub line: usize,
}

/// What the replay knows about one address space.
#[derive(Clone, Debug, Default)]
struct View {
    known: RangeSet,
    mmap_base: Option<u64>,
    brk_start: Option<u64>,
}

/// A replay in progress.
pub struct Replay {
    machine: Machine,
    /// Records of tasks no clone has made yet, in trace order (rule 1).
    waiting: HashMap<Pid, Vec<Record>>,
    started: bool,
    views: HashMap<usize, (Weak<AddressSpace>, View)>,
    snapshots: HashMap<Pid, Snapshot>,
    processes: HashSet<Pid>,
    summary: Summary,
    /// The address space of the task of the last call (tasks change rarely).
    last: Option<(Pid, Arc<AddressSpace>)>,
    /// Records received and not applied yet, in the order the log completes them.
    queue: VecDeque<Record>,
    /// Queued split records (`start < line`), line → start: the calls that can be in
    /// flight when an earlier-completing call is applied.
    split: BTreeMap<usize, usize>,
    /// Lines of queued records already applied ahead of their turn.
    early: HashSet<usize>,
    /// Linux's maps of each process at its dump, when known: where the dump is placed.
    dumps: HashMap<Pid, Vec<MapsLine>>,
    /// The dump being read, while other tasks may change its address space.
    window: Option<DumpWindow>,
}

impl Replay {
    /// A replay on a fresh machine with `config`.
    pub fn new(config: Config) -> SysResult<Self> {
        Ok(Self {
            machine: Machine::new(config)?,
            waiting: HashMap::new(),
            started: false,
            views: HashMap::new(),
            snapshots: HashMap::new(),
            processes: HashSet::new(),
            summary: Summary::default(),
            last: None,
            queue: VecDeque::new(),
            split: BTreeMap::new(),
            early: HashSet::new(),
            dumps: HashMap::new(),
            window: None,
        })
    }

    /// Linux's `/proc/PID/maps` of `pid` at its dump (capture-trace.sh's `maps.PID`): the
    /// replay places the dump among the calls in flight while it was read so that it agrees
    /// with this text where some order allows (rule 7). Unparsable text is ignored.
    pub fn expect_dump(&mut self, pid: Pid, maps: &str) {
        if let Ok(lines) = parse_maps(maps) {
            self.dumps.insert(pid, lines);
        }
    }

    /// The machine the trace runs on.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// The summary so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The snapshot of `pid` at its dump marker or exit, if taken.
    pub fn snapshot(&self, pid: Pid) -> Option<&Snapshot> {
        self.snapshots.get(&pid)
    }

    /// The end of the trace: tasks that no traced clone made run now as fresh processes
    /// (their records in order), then every live task without a snapshot gets one.
    pub fn finish(&mut self, line: usize) {
        self.release(usize::MAX);
        self.close_window(usize::MAX);
        let mut orphans: Vec<Pid> = self.waiting.keys().copied().collect();
        orphans.sort_unstable();
        for pid in orphans {
            if self.waiting.contains_key(&pid) && self.machine.spawn(Some(pid)).is_ok() {
                self.processes.insert(pid);
                self.summary.processes = self.processes.len() as u64;
                self.flush(pid);
            }
        }
        for pid in self.machine.pids() {
            self.take_snapshot(pid, line);
        }
    }

    /// Take one record, in the order the log completes them. It is applied by the
    /// [`release`](Self::release) that passes its line (or by [`finish`](Self::finish)).
    pub fn push(&mut self, rec: Record) {
        self.summary.records += 1;
        if rec.start < rec.line {
            self.split.insert(rec.line, rec.start);
        }
        self.queue.push_back(rec);
    }

    /// Apply, in order, the records that completed at lines below `below`. The caller
    /// promises that every call that started below `below` has been pushed (a parser knows
    /// it from its oldest unfinished call), so the calls that were in flight when each of
    /// those records completed are at hand (rule 8).
    pub fn release(&mut self, below: usize) {
        while self.queue.front().is_some_and(|r| r.line < below) {
            let Some(rec) = self.queue.pop_front() else {
                break;
            };
            if rec.start < rec.line {
                self.split.remove(&rec.line);
            }
            if !self.early.remove(&rec.line) {
                self.step(&rec);
            }
        }
    }

    /// Apply one record (or keep it until its task exists).
    fn step(&mut self, rec: &Record) {
        if self.window.as_ref().is_some_and(|w| w.pid() == rec.pid) {
            // The dumping thread's next record: the read is over.
            self.close_window(rec.start);
        }
        if !self.machine.exists(rec.pid) {
            if self.started {
                self.waiting.entry(rec.pid).or_default().push(rec.clone());
                return;
            }
            self.started = true;
            if self.machine.spawn(Some(rec.pid)).is_ok() {
                self.processes.insert(rec.pid);
                self.summary.processes = 1;
            }
        }
        self.apply(rec);
    }

    fn apply(&mut self, rec: &Record) {
        let pid = rec.pid;
        match &rec.event {
            Event::Call { op, ret } => self.call(rec, op, *ret),
            Event::Exited { .. } | Event::Killed { .. } => {
                self.take_snapshot(pid, rec.line);
                self.last = None;
                let _ = self.machine.exit_task(pid);
            }
            Event::Signal { .. } => {}
        }
    }

    /// Run the records that waited for `pid` to exist.
    fn flush(&mut self, pid: Pid) {
        if let Some(recs) = self.waiting.remove(&pid) {
            for r in &recs {
                if self.machine.exists(pid) {
                    self.apply(r);
                }
            }
        }
    }

    /// The clone in `parent` returned `child`: make it as that clone did (rule 1).
    fn create(&mut self, parent: Pid, flags: u64, child: Pid) {
        if self.machine.exists(child) {
            return;
        }
        let parent_mm = self.machine.mm(parent).ok();
        if self.machine.clone_task(parent, flags, Some(child)).is_ok() {
            if let (Some(pm), Ok(cm)) = (parent_mm, self.machine.mm(child))
                && !Arc::ptr_eq(&pm, &cm)
            {
                // A forked address space inherits what the replay knew.
                let v = self.view(&pm).clone();
                self.views.insert(key(&cm), (Arc::downgrade(&cm), v));
            }
            if flags & CLONE_THREAD == 0 {
                self.processes.insert(child);
            }
        } else if self.machine.spawn(Some(child)).is_ok() {
            self.processes.insert(child);
        }
        self.summary.processes = self.processes.len() as u64;
        self.flush(child);
    }

    /// The view of an address space (a fresh one for a new or reused address).
    fn view(&mut self, mm: &Arc<AddressSpace>) -> &mut View {
        let e = self
            .views
            .entry(key(mm))
            .or_insert_with(|| (Arc::downgrade(mm), View::default()));
        // The weak reference keeps its allocation, so an address space at the same
        // address as a recorded one is that one only if the pointers agree.
        if !std::ptr::eq(e.0.as_ptr(), Arc::as_ptr(mm)) {
            *e = (Arc::downgrade(mm), View::default());
        }
        &mut e.1
    }

    fn take_snapshot(&mut self, pid: Pid, line: usize) {
        if self.snapshots.contains_key(&pid) {
            return;
        }
        let Ok(mm) = self.machine.mm(pid) else {
            return;
        };
        let snap = self.snapshot_of(&mm, line);
        self.snapshots.insert(pid, snap);
    }

    /// `mm`'s maps and smaps now, with what the replay knows of it.
    fn snapshot_of(&mut self, mm: &Arc<AddressSpace>, line: usize) -> Snapshot {
        Snapshot {
            maps: mm.maps_text(),
            smaps: mm.smaps_text(),
            known: self.view(mm).known.clone(),
            line,
        }
    }

    fn call(&mut self, rec: &Record, op: &Op, ret: Ret) {
        let (line, pid) = (rec.line, rec.pid);
        match op {
            Op::Clone { flags } => {
                if let Ret::Val(child) = ret {
                    self.create(pid, *flags, child);
                }
            }
            Op::Execve { .. } => {
                if ret == Ret::Val(0) {
                    self.last = None;
                    let _ = self.machine.execve(pid);
                }
            }
            Op::ExitGroup { .. } => {
                self.take_snapshot(pid, line);
                self.last = None;
                let _ = self.machine.exit_group(pid);
            }
            Op::Other { .. } => self.summary.ignored += 1,
            _ if ret == Ret::Unknown => {
                self.summary.calls += 1;
                self.summary.ignored += 1;
            }
            _ => {
                self.summary.calls += 1;
                self.mm_call(rec, op, ret, line, 0);
            }
        }
    }

    /// A memory-management call, placed before line `before` (its own line, or that of
    /// the call it is applied ahead of); `depth` counts how many calls it is pulled ahead of.
    fn mm_call(&mut self, rec: &Record, op: &Op, ret: Ret, before: usize, depth: u32) {
        let (line, pid) = (rec.line, rec.pid);
        let mm = match &self.last {
            Some((p, mm)) if *p == pid => Arc::clone(mm),
            _ => match self.machine.mm(pid) {
                Ok(mm) => {
                    self.last = Some((pid, Arc::clone(&mm)));
                    mm
                }
                Err(_) => {
                    self.summary.ignored += 1;
                    return;
                }
            },
        };
        if let Op::Munmap { addr, len: 0 } = op
            && *addr == DUMP_MARKER
        {
            self.open_window(pid, &mm, line);
        }
        match self.linearized(pid, &mm, op, ret, before, depth) {
            None => self.summary.outside_view += 1,
            Some(got) => self.judge(line, pid, ret, got),
        }
        self.dump_candidate(pid, &mm, rec.start);
    }

    fn judge(&mut self, line: usize, pid: Pid, ret: Ret, got: SysResult<u64>) {
        if same(ret, &got) {
            self.summary.matched += 1;
            return;
        }
        self.summary.diverged += 1;
        if self.summary.divergences.len() < KEEP_DIVERGENCES {
            self.summary.divergences.push(Divergence {
                line,
                pid,
                expected: ret_text(ret),
                got: match got {
                    Ok(v) => format!("{v:#x}"),
                    Err(e) => format!("-1 {}", e.name()),
                },
            });
        }
    }
}

/// Whether softmm's result is the traced one: the same value, or the same errno.
fn same(ret: Ret, got: &SysResult<u64>) -> bool {
    match (ret, got) {
        (Ret::Val(v), Ok(g)) => v == *g,
        (Ret::Err(e), Err(g)) => e == g.0,
        _ => false,
    }
}

fn key(mm: &Arc<AddressSpace>) -> usize {
    Arc::as_ptr(mm) as usize
}

fn ret_text(r: Ret) -> String {
    match r {
        Ret::Val(v) => format!("{v:#x}"),
        Ret::Err(e) => format!("-1 {}", Errno(e).name()),
        Ret::Unknown => "?".to_string(),
    }
}
