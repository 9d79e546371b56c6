//! Processes: tasks sharing or owning address spaces and descriptor tables.
//!
//! A [`Machine`] is the kernel's task list over one physical memory and one file
//! namespace. A task (Linux `task_struct`) has a pid, a thread-group id, an address
//! space and a descriptor table; `clone` decides what a new task shares:
//!
//! * `CLONE_VM` shares the address space (threads, `vfork`), otherwise it is forked
//!   ([`AddressSpace::fork`]); `CLONE_FILES` shares the descriptor table, otherwise it
//!   is copied (the open files themselves are shared, as after `fork`);
//! * `CLONE_THREAD` puts the task in the parent's thread group (`exit_group` ends all
//!   of it).
//!
//! `execve` gives the task a fresh address space (the old one is torn down when its
//! last user goes: [`AddressSpace`]'s drop is `exit_mmap`) and ends the other threads of
//! its group. Tasks leave the table under its lock, but address spaces are dropped
//! after the lock is released: teardown takes no lock of the machine.
//!
//! Pids are chosen by the machine, or given by the caller (a trace replay uses the
//! pids the trace shows).

use std::{collections::HashMap, sync::Arc};

use crate::{
    abi::*,
    config::Config,
    error::Errno,
    error::SysResult,
    file::{self, FdTable, Namespace, OpenFile},
    frame::PhysMem,
    mm,
    mm::{AddressSpace, Cpu},
    sync::Mutex,
};

/// A task id (`pid` of a thread, as strace prints it).
pub type Pid = u64;

/// `AT_FDCWD`.
const AT_FDCWD: i64 = -100;

#[derive(Clone)]
struct Task {
    tgid: Pid,
    mm: Arc<AddressSpace>,
    files: Arc<Mutex<FdTable>>,
}

/// The task list over one physical memory and one file namespace.
///
/// ```
/// use softmm::{Config, Machine, abi::*};
///
/// let m = Machine::new(Config::default())?;
/// let parent = m.spawn(None)?;
/// let a = m.mmap(parent, 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)?;
/// m.cpu(parent)?.write(a, b"before fork")?;
/// let child = m.fork(parent)?;
/// // Copy-on-write: the child's write is its own.
/// m.cpu(child)?.write(a, b"child")?;
/// let mut buf = [0u8; 11];
/// m.cpu(parent)?.read(a, &mut buf)?;
/// assert_eq!(&buf, b"before fork");
/// m.exit_group(child)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Machine {
    pm: Arc<PhysMem>,
    config: Config,
    ns: Namespace,
    tasks: Mutex<HashMap<Pid, Task>>,
    next_pid: Mutex<Pid>,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("tasks", &self.tasks.lock().len())
            .finish_non_exhaustive()
    }
}

impl Machine {
    /// A machine with its own physical memory of `config.phys_mem_bytes` and no tasks.
    ///
    /// Fails with `EINVAL` when `config` does not [validate](Config::validate).
    pub fn new(config: Config) -> SysResult<Self> {
        config.validate()?;
        let pm = PhysMem::new(config.phys_mem_bytes).ok_or(Errno::ENOMEM)?;
        Ok(Self::with_phys(&pm, config))
    }

    /// A machine over shared physical memory.
    pub fn with_phys(pm: &Arc<PhysMem>, config: Config) -> Self {
        Self {
            pm: Arc::clone(pm),
            ns: Namespace::new(pm),
            config,
            tasks: Mutex::new(HashMap::new()),
            next_pid: Mutex::new(1),
        }
    }

    /// The physical memory.
    pub fn phys(&self) -> &Arc<PhysMem> {
        &self.pm
    }

    /// meminfo `Committed_AS` in kB: what every process's accounted mappings and the
    /// charged shared anonymous memory commit (see [`AddressSpace::committed_pages`]).
    pub fn committed_as_kb(&self) -> u64 {
        self.pm.committed_pages() * 4
    }

    /// The configuration every address space gets.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The file namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    fn alloc_pid(&self, want: Option<Pid>) -> SysResult<Pid> {
        let tasks = self.tasks.lock();
        let mut next = self.next_pid.lock();
        match want {
            Some(p) if tasks.contains_key(&p) || p == 0 => Err(Errno::EEXIST),
            Some(p) => {
                *next = (*next).max(p + 1);
                Ok(p)
            }
            None => {
                while tasks.contains_key(&*next) {
                    *next += 1;
                }
                *next += 1;
                Ok(*next - 1)
            }
        }
    }

    fn new_mm(&self) -> SysResult<Arc<AddressSpace>> {
        AddressSpace::with_phys(&self.pm, self.config.clone())
    }

    /// A new process with an empty address space, pid `want` or the next free one.
    pub fn spawn(&self, want: Option<Pid>) -> SysResult<Pid> {
        let pid = self.alloc_pid(want)?;
        let task = Task {
            tgid: pid,
            mm: self.new_mm()?,
            files: Arc::new(Mutex::new(FdTable::default())),
        };
        self.tasks.lock().insert(pid, task);
        Ok(pid)
    }

    fn task(&self, pid: Pid) -> SysResult<Task> {
        self.tasks.lock().get(&pid).cloned().ok_or(Errno::ESRCH)
    }

    /// `clone(flags)` in task `parent`: the new task's pid (`want`, or the next free).
    pub fn clone_task(&self, parent: Pid, flags: u64, want: Option<Pid>) -> SysResult<Pid> {
        let p = self.task(parent)?;
        let mm = if flags & CLONE_VM != 0 {
            Arc::clone(&p.mm)
        } else {
            p.mm.fork()?
        };
        let files = if flags & CLONE_FILES != 0 {
            Arc::clone(&p.files)
        } else {
            Arc::new(Mutex::new(p.files.lock().clone()))
        };
        let pid = self.alloc_pid(want)?;
        let tgid = if flags & CLONE_THREAD != 0 {
            p.tgid
        } else {
            pid
        };
        self.tasks.lock().insert(pid, Task { tgid, mm, files });
        Ok(pid)
    }

    /// `fork()`: the child's pid.
    pub fn fork(&self, parent: Pid) -> SysResult<Pid> {
        self.clone_task(parent, 0, None)
    }

    /// A successful `execve` in `pid`: a fresh address space; the other threads of its
    /// group end; the descriptor table is unshared.
    pub fn execve(&self, pid: Pid) -> SysResult<()> {
        let mm = self.new_mm()?;
        let gone: Vec<Task> = {
            let mut tasks = self.tasks.lock();
            let t = tasks.get(&pid).cloned().ok_or(Errno::ESRCH)?;
            let others: Vec<Pid> = tasks
                .iter()
                .filter(|&(&p, o)| p != pid && o.tgid == t.tgid)
                .map(|(&p, _)| p)
                .collect();
            let mut gone: Vec<Task> = others.iter().filter_map(|p| tasks.remove(p)).collect();
            let files = Arc::new(Mutex::new(t.files.lock().clone()));
            let old = tasks.insert(
                pid,
                Task {
                    tgid: t.tgid,
                    mm,
                    files,
                },
            );
            gone.extend(old);
            gone
        };
        drop(gone); // address spaces torn down outside the lock
        Ok(())
    }

    /// `exit_group`: every task of `pid`'s thread group ends.
    pub fn exit_group(&self, pid: Pid) -> SysResult<()> {
        let gone: Vec<Task> = {
            let mut tasks = self.tasks.lock();
            let tgid = tasks.get(&pid).ok_or(Errno::ESRCH)?.tgid;
            let pids: Vec<Pid> = tasks
                .iter()
                .filter(|(_, t)| t.tgid == tgid)
                .map(|(&p, _)| p)
                .collect();
            pids.iter().filter_map(|p| tasks.remove(p)).collect()
        };
        drop(gone);
        Ok(())
    }

    /// One task ends (a thread's `exit`, or a task a trace stops showing).
    pub fn exit_task(&self, pid: Pid) -> SysResult<()> {
        let t = self.tasks.lock().remove(&pid).ok_or(Errno::ESRCH)?;
        drop(t);
        Ok(())
    }

    /// Whether `pid` is a live task.
    pub fn exists(&self, pid: Pid) -> bool {
        self.tasks.lock().contains_key(&pid)
    }

    /// The live tasks, in pid order.
    pub fn pids(&self) -> Vec<Pid> {
        let mut v: Vec<Pid> = self.tasks.lock().keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// The thread-group id of `pid`.
    pub fn tgid(&self, pid: Pid) -> SysResult<Pid> {
        Ok(self.task(pid)?.tgid)
    }

    /// The address space of `pid`.
    pub fn mm(&self, pid: Pid) -> SysResult<Arc<AddressSpace>> {
        self.tasks
            .lock()
            .get(&pid)
            .map(|t| Arc::clone(&t.mm))
            .ok_or(Errno::ESRCH)
    }

    /// A CPU context running in `pid`.
    pub fn cpu(&self, pid: Pid) -> SysResult<Cpu> {
        Ok(self.task(pid)?.mm.cpu())
    }

    /// The open file behind `fd` in `pid`.
    pub fn file(&self, pid: Pid, fd: i64) -> SysResult<Arc<OpenFile>> {
        self.task(pid)?.files.lock().get(fd)
    }

    /// Make `fd` of `pid` refer to `file` (a replay learns descriptors from the trace).
    pub fn install_fd(&self, pid: Pid, fd: i64, file: Arc<OpenFile>) -> SysResult<()> {
        self.task(pid)?.files.lock().install_at(fd, file);
        Ok(())
    }

    /// `mmap(2)` in `pid`, with `fd` looked up in its descriptor table.
    #[expect(clippy::too_many_arguments, reason = "the mmap argument list")]
    pub fn mmap(
        &self,
        pid: Pid,
        addr: u64,
        len: u64,
        prot: u64,
        flags: u64,
        fd: i64,
        off: u64,
    ) -> SysResult<u64> {
        let t = self.task(pid)?;
        // `fget` refuses O_PATH descriptors.
        let file = t.files.lock().get(fd).and_then(|f| match f.kind {
            file::OpenKind::Path => Err(Errno::EBADF),
            _ => Ok(f),
        });
        t.mm.mmap_file(addr, len, prot, flags, file, off)
    }

    /// `memfd_create(name, flags)` in `pid`: the descriptor.
    pub fn memfd_create(&self, pid: Pid, name: &[u8], flags: u64) -> SysResult<i64> {
        let t = self.task(pid)?;
        let f = file::memfd_create(&self.pm, name, flags)?;
        Ok(t.files.lock().install(f))
    }

    /// `openat(dirfd, path, flags, mode)` in `pid`: the descriptor. Paths name files of
    /// the machine's namespace; `dirfd` must be `AT_FDCWD` for a relative path (the
    /// namespace has no directories a descriptor could name).
    pub fn openat(
        &self,
        pid: Pid,
        dirfd: i64,
        path: &[u8],
        flags: u64,
        mode: u64,
    ) -> SysResult<i64> {
        let _ = mode;
        let t = self.task(pid)?;
        if dirfd != AT_FDCWD && !path.starts_with(b"/") {
            t.files.lock().get(dirfd)?;
            return Err(Errno::ENOTDIR);
        }
        let (f, truncate) = self.ns.open(path, flags)?;
        if truncate {
            mm::truncate(&f.object, 0);
        }
        Ok(t.files.lock().install(f))
    }

    /// `ftruncate(fd, len)` in `pid`.
    pub fn ftruncate(&self, pid: Pid, fd: i64, len: i64) -> SysResult<()> {
        let t = self.task(pid)?;
        if len < 0 {
            return Err(Errno::EINVAL);
        }
        let f = t.files.lock().get(fd)?;
        if f.kind == file::OpenKind::Path {
            return Err(Errno::EBADF);
        }
        if !f.writable || f.kind != file::OpenKind::Regular {
            return Err(Errno::EINVAL);
        }
        if len as u64 > file::MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        mm::truncate(&f.object, len as u64);
        Ok(())
    }

    /// `pwrite64(fd, data, off)` in `pid`: bytes written.
    pub fn pwrite(&self, pid: Pid, fd: i64, data: &[u8], off: i64) -> SysResult<usize> {
        let f = self.task(pid)?.files.lock().get(fd)?;
        file::pwrite(&f, data, off)
    }

    /// `close(fd)` in `pid`.
    pub fn close(&self, pid: Pid, fd: i64) -> SysResult<()> {
        self.task(pid)?.files.lock().close(fd)
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests;
