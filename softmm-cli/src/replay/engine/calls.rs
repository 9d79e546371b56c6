//! Running one memory-management call of the trace on softmm: the kernel's placements
//! (rule 2), the outside view (rule 4), files (rule 5) and assumed writes (rule 6) of the
//! [engine](super).

use std::sync::Arc;

use softmm::{AddressSpace, Errno, Pid, abi::*, error::SysResult, file::OpenFile};

use super::Replay;
use crate::replay::strace::{Op, Ret};

impl Replay {
    /// Run `op`, whose traced result is `ret`, on `mm` for task `pid`, without judging the
    /// result: `None` when the call touches only memory outside the view.
    pub(super) fn exec(
        &mut self,
        mm: &Arc<AddressSpace>,
        pid: Pid,
        op: &Op,
        ret: Ret,
    ) -> Option<SysResult<u64>> {
        match *op {
            Op::Mmap {
                addr,
                len,
                prot,
                flags,
                fd,
                ref path,
                off,
            } => self.mmap(
                mm,
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
            } => self.mremap(mm, ret, old_addr, old_len, new_len, flags, new_addr),
            Op::Brk { addr } => self.brk(mm, ret, addr),
            Op::Munmap { addr, len } => self.ranged(mm, ret, addr, len, |mm, a, l| mm.munmap(a, l)),
            Op::Mprotect { addr, len, prot } => self.ranged(mm, ret, addr, len, |mm, a, l| {
                let r = mm.mprotect(a, l, prot);
                if r.is_ok() && prot & PROT_WRITE != 0 {
                    mm.assume_written(a, a.saturating_add(l));
                }
                r
            }),
            Op::Madvise { addr, len, advice } => {
                self.ranged(mm, ret, addr, len, |mm, a, l| mm.madvise(a, l, advice))
            }
            Op::Mlock { addr, len } => self.ranged(mm, ret, addr, len, |mm, a, l| mm.mlock(a, l)),
            Op::Mlock2 { addr, len, flags } => {
                self.ranged(mm, ret, addr, len, |mm, a, l| mm.mlock2(a, l, flags))
            }
            Op::Munlock { addr, len } => {
                self.ranged(mm, ret, addr, len, |mm, a, l| mm.munlock(a, l))
            }
            Op::Msync { addr, len, flags } => {
                self.ranged(mm, ret, addr, len, |mm, a, l| mm.msync(a, l, flags))
            }
            Op::Mlockall { flags } => Some(mm.mlockall(flags)),
            Op::Munlockall => Some(mm.munlockall()),
            Op::Clone { .. } | Op::Execve { .. } | Op::ExitGroup { .. } | Op::Other { .. } => None,
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
        flags: u64,
        fd: i64,
        path: Option<&str>,
        off: u64,
    ) -> Option<SysResult<u64>> {
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
        let plen = new_len.saturating_add(0xfff) & !0xfff;
        let chosen = flags & MREMAP_MAYMOVE != 0 && flags & MREMAP_FIXED == 0;
        let (flags, target) = if chosen && (at != old_addr || flags & MREMAP_DONTUNMAP != 0) {
            // The kernel moved it to a range it found free (rule 2): check, do not force.
            if !mm.is_unmapped(at, at.saturating_add(plen)) {
                return Some(Err(Errno::EEXIST));
            }
            (flags | MREMAP_FIXED, at)
        } else if chosen {
            // Resized in place: with MAYMOVE softmm could move it where the kernel did not.
            (flags & !MREMAP_MAYMOVE, 0)
        } else {
            (flags, new_addr.unwrap_or(0))
        };
        let got = mm.mremap(old_addr, old_len, new_len, flags, target);
        if let Ok(a) = got {
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
