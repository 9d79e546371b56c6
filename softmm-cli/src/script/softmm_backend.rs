//! The [`Backend`] over the softmm library: a [`Machine`] whose first process is pid 1.
//!
//! System calls go to the `Machine` (descriptor calls, `mmap` with its descriptor looked
//! up, `fork`, `exit_group`) or to the process's `AddressSpace` methods of the same name;
//! the memory pseudo-calls go through a `Cpu` of the process (a faulting access answers
//! the signal, and bytes before the fault stay written); `layout` is rendered from
//! `vmas()` by [`layout_text`]; `resident`, `smaps`, `vmflags`, `maps()` and `smaps()`
//! come from the library's procfs views. `pwrite64` from an address reads the process's
//! memory first (`EFAULT` if that faults), as the kernel's `copy_from_user`.

use softmm::{AccessFault, Config, Cpu, Errno, Machine, Signal};

use super::{
    backend::{Backend, Buf, Call, Outcome, Pid, VmaView, layout_text},
    errno::{SIGBUS, SIGSEGV},
};

/// Bytes `count` reads at a time.
const CHUNK: u64 = 1 << 20;

/// The page size: `pwrite64` from an address copies one source page at a time.
const PAGE: usize = 4096;

/// The end of the user address space (x86-64 `TASK_SIZE_MAX`, 47 bits less a guard page):
/// a buffer that reaches past it fails `access_ok`.
const TASK_SIZE: u64 = (1 << 47) - 4096;

/// The most bytes one `read` or `write` transfers (Linux's `MAX_RW_COUNT`, `INT_MAX`
/// rounded down to a page): a longer count is cut to it.
const MAX_RW_COUNT: u64 = 0x7fff_f000;

/// A softmm machine running a script's processes.
pub struct SoftmmBackend {
    machine: Machine,
}

impl SoftmmBackend {
    /// A fresh machine with one process (pid 1) and an empty address space.
    pub fn new(config: Config) -> Result<Self, Errno> {
        let machine = Machine::new(config)?;
        machine.spawn(Some(1))?;
        Ok(Self { machine })
    }

    /// The machine.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// A system call (or a procfs query with an errno result) in `pid`.
    fn syscall(&self, pid: Pid, call: &Call) -> Result<u64, Errno> {
        let m = &self.machine;
        let mm = m.mm(pid)?;
        match *call {
            Call::Mmap {
                addr,
                len,
                prot,
                flags,
                fd,
                off,
            } => m.mmap(pid, addr, len, prot, flags, fd as i64, off),
            Call::Munmap { addr, len } => mm.munmap(addr, len),
            Call::Mprotect { addr, len, prot } => mm.mprotect(addr, len, prot),
            Call::Mremap {
                old_addr,
                old_len,
                new_len,
                flags,
                new_addr,
            } => mm.mremap(old_addr, old_len, new_len, flags, new_addr),
            Call::Madvise { addr, len, advice } => mm.madvise(addr, len, advice),
            Call::Brk { addr } => mm.brk(addr),
            Call::Mlock { addr, len } => mm.mlock(addr, len),
            Call::Mlock2 { addr, len, flags } => mm.mlock2(addr, len, flags),
            Call::Munlock { addr, len } => mm.munlock(addr, len),
            Call::Mlockall { flags } => mm.mlockall(flags),
            Call::Munlockall => mm.munlockall(),
            Call::Msync { addr, len, flags } => mm.msync(addr, len, flags),
            Call::Resident { addr, len } => mm.resident(addr, len),
            Call::Smaps { addr, ref field } => mm.smaps_field(addr, field),
            Call::MemfdCreate { ref name, flags } => {
                m.memfd_create(pid, name, flags).map(|fd| fd as u64)
            }
            Call::Openat {
                dirfd,
                ref path,
                flags,
                mode,
            } => m
                .openat(pid, dirfd as i64, path, flags, mode)
                .map(|fd| fd as u64),
            Call::Ftruncate { fd, len } => m.ftruncate(pid, fd as i64, len as i64).map(|()| 0),
            Call::Pwrite64 {
                fd,
                ref data,
                len,
                off,
            } => self.pwrite64(pid, fd as i64, data, len, off as i64),
            Call::Close { fd } => m.close(pid, fd as i64).map(|()| 0),
            Call::Fork => m.fork(pid),
            // Dispatched elsewhere by `call`.
            _ => Err(Errno::ENOSYS),
        }
    }

    /// `pwrite64(fd, data, len, off)` as `ksys_pwrite64` and `vfs_write` check it: the
    /// descriptor, its mode and the offset first (a zero-byte write makes the library check
    /// them without changing the file), then the buffer: `EFAULT` when it does not hold
    /// `len` bytes (a string shorter than `len`, or a range past the user address space),
    /// then `len` is capped at `MAX_RW_COUNT`. From an address, the bytes are copied a
    /// page at a time, as `generic_perform_write` copies them, so nothing the script asks
    /// for is allocated at once, and a fault after the first page ends the write short.
    fn pwrite64(&self, pid: Pid, fd: i64, data: &Buf, len: u64, off: i64) -> Result<u64, Errno> {
        let m = &self.machine;
        m.pwrite(pid, fd, &[], off)?;
        let addr = match data {
            Buf::Bytes(b) => {
                let Some(b) = b.get(..usize::try_from(len).map_err(|_| Errno::EFAULT)?) else {
                    return Err(Errno::EFAULT);
                };
                return m.pwrite(pid, fd, b, off).map(|n| n as u64);
            }
            Buf::Addr(a) => *a,
        };
        if addr.checked_add(len).is_none_or(|end| end > TASK_SIZE) {
            return Err(Errno::EFAULT);
        }
        let len = len.min(MAX_RW_COUNT);
        let cpu = m.cpu(pid)?;
        let mut page = [0u8; PAGE];
        let mut done = 0u64;
        while done < len {
            let src = addr + done;
            let step = (len - done).min(PAGE as u64 - src % PAGE as u64) as usize;
            let piece = &mut page[..step];
            if cpu.read(src, piece).is_err() {
                return if done == 0 {
                    Err(Errno::EFAULT)
                } else {
                    Ok(done)
                };
            }
            let n = m.pwrite(pid, fd, piece, off + done as i64)?;
            done += n as u64;
            if n < step {
                break;
            }
        }
        Ok(done)
    }

    /// A memory access through the CPU; a fault answers its signal.
    fn access(&self, pid: Pid, call: &Call) -> Outcome {
        let mut cpu = match self.machine.cpu(pid) {
            Ok(c) => c,
            Err(e) => return Outcome::Err(e.0),
        };
        let cpu = &mut cpu;
        let res = match call {
            Call::Poke { addr, data } => cpu
                .write(*addr, data)
                .map(|()| Outcome::Int(data.len() as u64)),
            Call::Fill { addr, len, byte } => {
                cpu.fill(*addr, *byte, *len).map(|()| Outcome::Int(*len))
            }
            Call::Peek { addr, len } => {
                let mut buf = vec![0; *len as usize];
                cpu.read(*addr, &mut buf).map(|()| Outcome::Bytes(buf))
            }
            Call::Count { addr, len, byte } => count(cpu, *addr, *len, *byte),
            // Dispatched elsewhere by `call`.
            _ => return Outcome::Err(Errno::ENOSYS.0),
        };
        res.unwrap_or_else(|f| {
            Outcome::Signal(match f.signal {
                Signal::Segv => SIGSEGV,
                Signal::Bus => SIGBUS,
            })
        })
    }

    /// `layout`, `vmflags`, `maps()`, `smaps()`.
    fn procfs(&self, pid: Pid, call: &Call) -> Outcome {
        let mm = match self.machine.mm(pid) {
            Ok(mm) => mm,
            Err(e) => return Outcome::Err(e.0),
        };
        match *call {
            Call::Layout { addr, len } => {
                let vmas: Vec<VmaView> = mm
                    .vmas()
                    .into_iter()
                    .map(|v| VmaView {
                        start: v.start,
                        end: v.end,
                        perms: v.perms,
                    })
                    .collect();
                Outcome::Text(layout_text(&vmas, addr, len))
            }
            Call::Vmflags { addr } => match mm.vmflags(addr) {
                Ok(text) => Outcome::Text(text),
                Err(e) => Outcome::Err(e.0),
            },
            Call::Maps => Outcome::Print(mm.maps_text()),
            Call::SmapsAll => Outcome::Print(mm.smaps_text()),
            // Dispatched elsewhere by `call`.
            _ => Outcome::Err(Errno::ENOSYS.0),
        }
    }
}

/// Reads `[addr, addr+len)` a chunk at a time and counts the bytes equal to `byte`.
fn count(cpu: &mut Cpu, addr: u64, len: u64, byte: u8) -> Result<Outcome, AccessFault> {
    let mut buf = vec![0; len.min(CHUNK) as usize];
    let mut n = 0u64;
    let mut done = 0u64;
    while done < len {
        let step = (len - done).min(CHUNK) as usize;
        cpu.read(addr.wrapping_add(done), &mut buf[..step])?;
        n += buf[..step].iter().filter(|&&b| b == byte).count() as u64;
        done += step as u64;
    }
    Ok(Outcome::Int(n))
}

impl Backend for SoftmmBackend {
    fn call(&mut self, pid: Pid, call: &Call) -> Outcome {
        if !self.machine.exists(pid) {
            return Outcome::Error(format!("no process with pid {pid}"));
        }
        match call {
            Call::Poke { .. } | Call::Fill { .. } | Call::Peek { .. } | Call::Count { .. } => {
                self.access(pid, call)
            }
            Call::Layout { .. } | Call::Vmflags { .. } | Call::Maps | Call::SmapsAll => {
                self.procfs(pid, call)
            }
            Call::ExitGroup { .. } => match self.machine.exit_group(pid) {
                Ok(()) => Outcome::Exit,
                Err(e) => Outcome::Err(e.0),
            },
            _ => match self.syscall(pid, call) {
                Ok(v) => Outcome::Int(v),
                Err(e) => Outcome::Err(e.0),
            },
        }
    }
}
