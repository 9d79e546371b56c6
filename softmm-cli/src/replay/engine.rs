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
//!    `exit_group` ends its thread group; `+++ exited`/`+++ killed` end the task. The
//!    replay needs no look-ahead, so records can stream in while the trace is parsed.
//! 2. **Placement is the kernel's.** A non-fixed `mmap` that succeeded is placed where the
//!    trace says (`MAP_FIXED_NOREPLACE` at the traced address: it fails if softmm's view has
//!    something there); an `mremap` that moved goes to the traced address
//!    (`MREMAP_FIXED`). Before that, softmm's own policy is asked where it would have put
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
//!    (or at its exit, or at the end of the trace) for comparison.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Weak},
};

use serde::Serialize;
use softmm::{AddressSpace, Config, Errno, Machine, Pid, abi::*, error::SysResult, file::OpenFile};

use super::{
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
        })
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

    /// Apply one record (or keep it until its task exists).
    pub fn step(&mut self, rec: &Record) {
        self.summary.records += 1;
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
            Event::Call { op, ret } => self.call(rec.line, pid, op, *ret),
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
        let known = self.view(&mm).known.clone();
        self.snapshots.insert(
            pid,
            Snapshot {
                maps: mm.maps_text(),
                smaps: mm.smaps_text(),
                known,
                line,
            },
        );
    }

    fn call(&mut self, line: usize, pid: Pid, op: &Op, ret: Ret) {
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
                self.mm_call(line, pid, op, ret);
            }
        }
    }

    fn mm_call(&mut self, line: usize, pid: Pid, op: &Op, ret: Ret) {
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
            self.take_snapshot(pid, line);
        }
        let got = match *op {
            Op::Mmap {
                addr,
                len,
                prot,
                flags,
                fd,
                ref path,
                off,
            } => self.mmap(
                &mm,
                pid,
                ret,
                addr,
                len,
                prot,
                flags,
                fd,
                path.as_deref(),
                off,
            ),
            Op::Mremap {
                old_addr,
                old_len,
                new_len,
                flags,
                new_addr,
            } => self.mremap(&mm, ret, old_addr, old_len, new_len, flags, new_addr),
            Op::Brk { addr } => self.brk(&mm, ret, addr),
            Op::Munmap { addr, len } => {
                self.ranged(&mm, ret, addr, len, |mm, a, l| mm.munmap(a, l))
            }
            Op::Mprotect { addr, len, prot } => self.ranged(&mm, ret, addr, len, |mm, a, l| {
                let r = mm.mprotect(a, l, prot);
                if r.is_ok() && prot & PROT_WRITE != 0 {
                    mm.assume_written(a, a.saturating_add(l));
                }
                r
            }),
            Op::Madvise { addr, len, advice } => {
                self.ranged(&mm, ret, addr, len, |mm, a, l| mm.madvise(a, l, advice))
            }
            Op::Mlock { addr, len } => self.ranged(&mm, ret, addr, len, |mm, a, l| mm.mlock(a, l)),
            Op::Mlock2 { addr, len, flags } => {
                self.ranged(&mm, ret, addr, len, |mm, a, l| mm.mlock2(a, l, flags))
            }
            Op::Munlock { addr, len } => {
                self.ranged(&mm, ret, addr, len, |mm, a, l| mm.munlock(a, l))
            }
            Op::Msync { addr, len, flags } => {
                self.ranged(&mm, ret, addr, len, |mm, a, l| mm.msync(a, l, flags))
            }
            Op::Mlockall { flags } => Some(mm.mlockall(flags)),
            Op::Munlockall => Some(mm.munlockall()),
            Op::Clone { .. } | Op::Execve { .. } | Op::ExitGroup { .. } | Op::Other { .. } => {
                return;
            }
        };
        match got {
            None => self.summary.outside_view += 1,
            Some(got) => self.judge(line, pid, ret, got),
        }
    }

    fn judge(&mut self, line: usize, pid: Pid, ret: Ret, got: SysResult<u64>) {
        let same = match (ret, &got) {
            (Ret::Val(v), Ok(g)) => v == *g,
            (Ret::Err(e), Err(g)) => e == g.0,
            _ => false,
        };
        if same {
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

    /// A call over `[addr, addr + len)` (rule 4): `None` when it is outside the view.
    fn ranged(
        &mut self,
        mm: &Arc<AddressSpace>,
        ret: Ret,
        addr: u64,
        len: u64,
        f: impl Fn(&AddressSpace, u64, u64) -> SysResult<u64>,
    ) -> Option<SysResult<u64>> {
        let end = addr.saturating_add(len.saturating_add(0xfff) & !0xfff);
        let known = &self.view(mm).known;
        if matches!(ret, Ret::Val(_)) && len != 0 && !known.intersects(addr, end) {
            return None;
        }
        let got = f(mm, addr, len);
        if matches!(ret, Ret::Val(_)) && got == Err(Errno::ENOMEM) {
            let parts = known.clip(addr, end);
            if parts.iter().map(|(a, b)| b - a).sum::<u64>() < end - addr {
                let mut r = Ok(0);
                for (a, b) in parts {
                    r = r.and(f(mm, a, b - a));
                }
                return Some(r);
            }
        }
        Some(got)
    }

    /// The open file `fd`/`path` names in `pid` (rule 5); a writable one when `write`.
    fn file(&mut self, pid: Pid, fd: i64, path: &str, write: bool) -> SysResult<Arc<OpenFile>> {
        if let Ok(f) = self.machine.file(pid, fd)
            && f.object.name() == path
            && (f.writable || !write)
        {
            return Ok(f);
        }
        let obj = self.machine.namespace().object(path);
        let f = OpenFile::new(obj, true, write);
        self.machine.install_fd(pid, fd, Arc::clone(&f))?;
        Ok(f)
    }

    #[expect(clippy::too_many_arguments, reason = "the mmap argument list")]
    fn mmap(
        &mut self,
        mm: &Arc<AddressSpace>,
        pid: Pid,
        ret: Ret,
        addr: u64,
        len: u64,
        prot: u64,
        mut flags: u64,
        mut fd: i64,
        path: Option<&str>,
        off: u64,
    ) -> Option<SysResult<u64>> {
        // A private mapping of /dev/zero is anonymous memory (`vma_set_anonymous`).
        if path == Some("/dev/zero") && flags & MAP_TYPE == MAP_PRIVATE {
            flags |= MAP_ANONYMOUS;
            fd = -1;
        }
        // A shared writable mapping that succeeded needs a writable open file.
        let write =
            flags & MAP_TYPE != MAP_PRIVATE && prot & PROT_WRITE != 0 && matches!(ret, Ret::Val(_));
        let file = match (flags & MAP_ANONYMOUS == 0, path) {
            (true, Some(p)) => self.file(pid, fd, p, write),
            (true, None) => self.machine.file(pid, fd),
            (false, _) => Err(Errno::EBADF),
        };
        let Ret::Val(at) = ret else {
            return Some(mm.mmap_file(addr, len, prot, flags, file, off));
        };
        let plen = len.saturating_add(0xfff) & !0xfff;
        let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
        let mut call_flags = flags;
        let mut call_addr = addr;
        if !fixed {
            let view = self.view(mm);
            match view.mmap_base {
                Some(base) => {
                    let f = file.as_deref().ok().filter(|_| flags & MAP_ANONYMOUS == 0);
                    let probe = mm.probe_placement(f, addr, len, flags, off >> 12, base);
                    self.summary.placement.total += 1;
                    if probe == Some(at) {
                        self.summary.placement.agreed += 1;
                    }
                }
                None => view.mmap_base = Some(at.saturating_add(plen)),
            }
            call_flags |= MAP_FIXED_NOREPLACE;
            call_addr = at;
        }
        let got = mm.mmap_file(call_addr, len, prot, call_flags, file, off);
        if let Ok(a) = got {
            self.view(mm).known.insert(a, a.saturating_add(plen));
            mm.assume_written(a, a.saturating_add(plen));
        }
        Some(got)
    }

    #[expect(clippy::too_many_arguments, reason = "the mremap argument list")]
    fn mremap(
        &mut self,
        mm: &Arc<AddressSpace>,
        ret: Ret,
        old_addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new_addr: Option<u64>,
    ) -> Option<SysResult<u64>> {
        let Ret::Val(at) = ret else {
            return Some(mm.mremap(old_addr, old_len, new_len, flags, new_addr.unwrap_or(0)));
        };
        let old_end = old_addr.saturating_add(old_len.max(1));
        if !self.view(mm).known.intersects(old_addr & !0xfff, old_end) {
            return None;
        }
        let (flags, target) = if flags & MREMAP_MAYMOVE != 0
            && flags & MREMAP_FIXED == 0
            && (at != old_addr || flags & MREMAP_DONTUNMAP != 0)
        {
            (flags | MREMAP_FIXED, at)
        } else {
            (flags, new_addr.unwrap_or(0))
        };
        let got = mm.mremap(old_addr, old_len, new_len, flags, target);
        if let Ok(a) = got {
            let plen = new_len.saturating_add(0xfff) & !0xfff;
            self.view(mm).known.insert(a, a.saturating_add(plen));
            mm.assume_written(a, a.saturating_add(plen));
        }
        Some(got)
    }

    fn brk(&mut self, mm: &Arc<AddressSpace>, ret: Ret, addr: u64) -> Option<SysResult<u64>> {
        let view = self.view(mm);
        if view.brk_start.is_none()
            && let Ret::Val(v) = ret
        {
            // The heap starts where the first brk(NULL) says (rule 3).
            if addr == 0 && mm.set_brk_start(v) {
                self.view(mm).brk_start = Some(v);
            }
        }
        let got = mm.brk(addr);
        if let (Ok(b), Some(start)) = (got, self.view(mm).brk_start) {
            let end = b.saturating_add(0xfff) & !0xfff;
            self.view(mm).known.insert(start, end.max(start));
            mm.assume_written(start, end);
        }
        Some(got)
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
