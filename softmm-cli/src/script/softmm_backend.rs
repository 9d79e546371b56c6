//! The [`Backend`] over the softmm library: one [`AddressSpace`] (pid 1) and a [`Cpu`] that
//! touches its memory.
//!
//! System calls go to the `AddressSpace` methods of the same name; the memory pseudo-calls go
//! through the `Cpu` (a faulting access answers the signal, and bytes before the fault stay
//! written); `layout` is rendered from `vmas()` by [`layout_text`]; `resident`, `smaps`,
//! `vmflags`, `maps()` and `smaps()` come from the library's procfs views.
//!
//! Not supported yet (the library has no processes or files): `fork`, `exit_group`,
//! `memfd_create`, `openat`, `ftruncate`, `pwrite64`, `close`. Such a line answers
//! [`Outcome::Error`] (`FAIL line N: fork is not supported yet`) and counts as failed.

use std::sync::Arc;

use softmm::{AccessFault, AddressSpace, Config, Cpu, Errno, Signal};

use super::{
    backend::{Backend, Call, Outcome, Pid, VmaView, layout_text},
    errno::{SIGBUS, SIGSEGV},
};

/// Bytes `count` reads at a time.
const CHUNK: u64 = 1 << 20;

/// A softmm machine with one process.
pub struct SoftmmBackend {
    mm: Arc<AddressSpace>,
    cpu: Cpu,
}

impl SoftmmBackend {
    /// A fresh machine with one empty address space.
    pub fn new(config: Config) -> Result<Self, Errno> {
        let mm = AddressSpace::new(config)?;
        let cpu = mm.cpu();
        Ok(Self { mm, cpu })
    }

    /// The address space of pid 1.
    pub fn address_space(&self) -> &Arc<AddressSpace> {
        &self.mm
    }

    /// A system call (or a procfs query with an errno result).
    fn syscall(&self, call: &Call) -> Result<u64, Errno> {
        let mm = &self.mm;
        match *call {
            Call::Mmap {
                addr,
                len,
                prot,
                flags,
                fd,
                off,
            } => mm.mmap(addr, len, prot, flags, fd as i64, off),
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
            // Dispatched elsewhere by `call`.
            _ => Err(Errno::ENOSYS),
        }
    }

    /// A memory access through the CPU; a fault answers its signal.
    fn access(&mut self, call: &Call) -> Outcome {
        let cpu = &mut self.cpu;
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
    fn procfs(&self, call: &Call) -> Outcome {
        match *call {
            Call::Layout { addr, len } => {
                let vmas: Vec<VmaView> = self
                    .mm
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
            Call::Vmflags { addr } => match self.mm.vmflags(addr) {
                Ok(text) => Outcome::Text(text),
                Err(e) => Outcome::Err(e.0),
            },
            Call::Maps => Outcome::Print(self.mm.maps_text()),
            Call::SmapsAll => Outcome::Print(self.mm.smaps_text()),
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

/// The name of a call the library cannot run yet.
fn unsupported(call: &Call) -> Option<&'static str> {
    Some(match call {
        Call::Fork => "fork",
        Call::ExitGroup { .. } => "exit_group",
        Call::MemfdCreate { .. } => "memfd_create",
        Call::Openat { .. } => "openat",
        Call::Ftruncate { .. } => "ftruncate",
        Call::Pwrite64 { .. } => "pwrite64",
        Call::Close { .. } => "close",
        _ => return None,
    })
}

impl Backend for SoftmmBackend {
    fn call(&mut self, pid: Pid, call: &Call) -> Outcome {
        if let Some(name) = unsupported(call) {
            return Outcome::Error(format!("{name} is not supported yet"));
        }
        if pid != 1 {
            return Outcome::Error(format!("no process with pid {pid}"));
        }
        match call {
            Call::Poke { .. } | Call::Fill { .. } | Call::Peek { .. } | Call::Count { .. } => {
                self.access(call)
            }
            Call::Layout { .. } | Call::Vmflags { .. } | Call::Maps | Call::SmapsAll => {
                self.procfs(call)
            }
            _ => match self.syscall(call) {
                Ok(v) => Outcome::Int(v),
                Err(e) => Outcome::Err(e.0),
            },
        }
    }
}
