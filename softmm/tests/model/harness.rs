//! One test case: an op list applied to a softmm [`AddressSpace`] and to the reference
//! [`Space`] side by side, compared after every op, and the same case written out as a
//! softmm script with the model's expectations (runnable by `softmm run` and, on Linux,
//! by `shared/tools/linux-run`).

use std::{collections::HashMap, fmt::Write as _, sync::Arc};

use softmm::{
    AddressSpace, Config, Errno, PhysMem, Signal,
    abi::*,
    addr::{MMAP_BASE, MMAP_MIN_ADDR},
    rcu,
};

use super::{
    call::{Call, at, len},
    memory::{Sig, Stop},
    ops::{Op, WINDOW_PAGES},
    space::{Backing, PAGE, Quirks, Space, VM_MAYBE_GUARD},
    vmflags,
};

/// First address of the window: right below the top-down area's top, so that top-down
/// placement lands in it first (as in a `linux-run` process after the probe idiom).
pub const WINDOW: u64 = MMAP_BASE - WINDOW_PAGES * PAGE;

/// What a call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ret(Result<u64, Errno>),
    Filled(Result<(), Stop>),
    Bytes(Result<Vec<u8>, Stop>),
}

/// A case in progress.
pub struct Case {
    pub mm: Arc<AddressSpace>,
    pub model: Space,
    /// The script so far.
    pub script: String,
    /// Library shmem inode → model object, learnt as objects appear.
    inodes: HashMap<u64, usize>,
}

fn stop_of(f: softmm::AccessFault) -> Stop {
    let sig = match f.signal {
        Signal::Segv => Sig::Segv,
        Signal::Bus => Sig::Bus,
    };
    Stop {
        addr: f.addr,
        sig,
        done: f.done,
    }
}

fn sig_name(s: &Stop) -> &'static str {
    match s.sig {
        Sig::Segv => "SIGSEGV",
        Sig::Bus => "SIGBUS",
    }
}

fn quoted(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes {
        if b.is_ascii_alphanumeric() {
            s.push(b as char);
        } else {
            write!(s, "\\x{b:02x}").unwrap();
        }
    }
    s.push('"');
    s
}

impl Case {
    /// A fresh address space and model, each with the fence VMA above the window.
    pub fn new(pm: &Arc<PhysMem>, quirks: Quirks) -> Self {
        let mm = AddressSpace::with_phys(pm, Config::default()).expect("address space");
        let mut model = Space::new(MMAP_BASE, MMAP_MIN_ADDR, quirks);
        let fence = MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED;
        mm.mmap(MMAP_BASE, PAGE, PROT_NONE, fence, -1, 0)
            .expect("fence");
        model
            .mmap(MMAP_BASE, PAGE, PROT_NONE, fence)
            .expect("fence");
        let mut script = String::new();
        script.push_str("# The window: probe, then a fence above it (Linux has one: EEXIST).\n");
        script.push_str("mmap(NULL, 64*4K, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = $w\n");
        script.push_str("munmap($w, 64*4K) = 0\n");
        script.push_str(
            "mmap($w+64*4K, 4K, PROT_NONE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0)\n",
        );
        Case {
            mm,
            model,
            script,
            inodes: HashMap::new(),
        }
    }

    /// Apply `op` to both sides: the call as script text and both outcomes.
    pub fn exec(&mut self, op: &Op) -> (String, Outcome, Outcome) {
        let call = op.call();
        let (mm, m, w) = (&self.mm, &mut self.model, WINDOW);
        let (lib, model) = match call {
            Call::Mmap {
                off,
                len,
                prot,
                flags,
            } => (
                mm.mmap(w + off, len, prot, flags, -1, 0),
                m.mmap(w + off, len, prot, flags),
            ),
            Call::Munmap { off, len } => (mm.munmap(w + off, len), m.munmap(w + off, len)),
            Call::Mprotect { off, len, prot } => (
                mm.mprotect(w + off, len, prot),
                m.mprotect(w + off, len, prot),
            ),
            Call::Madvise { off, len, advice } => (
                mm.madvise(w + off, len, advice),
                m.madvise(w + off, len, advice),
            ),
            Call::Mremap {
                off,
                old_len,
                new_len,
                flags,
                dst,
            } => (
                mm.mremap(w + off, old_len, new_len, flags, w + dst),
                m.mremap(w + off, old_len, new_len, flags, w + dst),
            ),
            Call::Mlock { off, len, flags } => (
                mm.mlock2(w + off, len, flags),
                m.mlock(w + off, len, flags & MLOCK_ONFAULT != 0, true),
            ),
            Call::Munlock { off, len } => (
                mm.munlock(w + off, len),
                m.mlock(w + off, len, false, false),
            ),
            Call::Mlockall { flags } => (mm.mlockall(flags), m.mlockall(flags & MCL_ONFAULT != 0)),
            Call::Munlockall => (mm.munlockall(), m.munlockall()),
            Call::Fill { off, len, byte } => {
                let lib = mm.cpu().fill(w + off, byte, len).map_err(stop_of);
                let model = m.fill(w + off, len, byte);
                return (call.text(), Outcome::Filled(lib), Outcome::Filled(model));
            }
            Call::Read { off, len } => {
                let mut buf = vec![0u8; len as usize];
                let lib = mm.cpu().read(w + off, &mut buf).map(|_| buf);
                let model = m.read(w + off, len);
                let lib = Outcome::Bytes(lib.map_err(stop_of));
                return (call.text(), lib, Outcome::Bytes(model));
            }
        };
        (call.text(), Outcome::Ret(lib), Outcome::Ret(model))
    }

    /// The expectation text of an outcome, for the script.
    pub fn expect_text(op: &Op, o: &Outcome) -> String {
        match o {
            Outcome::Ret(Err(e)) => format!("-1 {}", e.name()),
            Outcome::Ret(Ok(v)) if matches!(op, Op::Mmap { .. } | Op::Mremap { .. }) => {
                at(*v as i64 - WINDOW as i64)
            }
            Outcome::Ret(Ok(v)) => v.to_string(),
            Outcome::Filled(Ok(())) => match op {
                Op::Write { len, .. } => len.to_string(),
                _ => unreachable!(),
            },
            Outcome::Bytes(Ok(b)) => quoted(b),
            Outcome::Filled(Err(s)) | Outcome::Bytes(Err(s)) => sig_name(s).to_string(),
        }
    }

    /// The layout check: the library's VMAs equal the model's (range, flags, offset into
    /// a shared object), and shared VMAs map the same objects (a bijection of library
    /// inodes and model objects).
    pub fn compare_layout(&mut self) -> Result<(), String> {
        let lib: Vec<_> = self.mm.vmas();
        let model: Vec<_> = self.model.vmas.values().cloned().collect();
        let show = |v: &dyn Fn() -> Vec<String>| v().join("\n  ");
        let lib_lines = || {
            lib.iter()
                .map(|v| {
                    format!(
                        "{:#x}-{:#x} {} {}",
                        v.start,
                        v.end,
                        v.perms,
                        softmm::vma::vmflags_string(v.flags)
                    )
                })
                .collect()
        };
        let model_lines = || {
            model
                .iter()
                .map(|v| {
                    format!(
                        "{:#x}-{:#x} {:?} {}",
                        v.start,
                        v.end,
                        v.backing,
                        vmflags::vmflags_string(v.flags)
                    )
                })
                .collect()
        };
        let differ = || {
            format!(
                "layout differs:\n library:\n  {}\n model:\n  {}",
                show(&lib_lines),
                show(&model_lines)
            )
        };
        if lib.len() != model.len() {
            return Err(differ());
        }
        for (l, m) in lib.iter().zip(&model) {
            let offset = match m.backing {
                Backing::Shm(_) => m.pgoff * PAGE,
                Backing::Anon(_) => 0,
            };
            if (l.start, l.end, l.flags.bits(), l.offset) != (m.start, m.end, m.flags, offset) {
                return Err(differ());
            }
            if let Backing::Shm(obj) = m.backing {
                let known = *self.inodes.entry(l.inode).or_insert(obj);
                if known != obj || self.inodes.iter().any(|(&i, &o)| o == obj && i != l.inode) {
                    return Err(format!("{}\n shared objects differ", differ()));
                }
            }
        }
        Ok(())
    }

    /// The contents check: every page of the window and of every model VMA reads the
    /// same through a softmm CPU as in the model, or faults the same way.
    pub fn compare_contents(&self) -> Result<(), String> {
        let cpu = self.mm.cpu();
        let mut pages: Vec<u64> = (0..WINDOW_PAGES).map(|p| WINDOW + p * PAGE).collect();
        for v in self.model.vmas.values() {
            pages.extend((v.start..v.end).step_by(PAGE as usize));
        }
        pages.sort_unstable();
        pages.dedup();
        let mut buf = vec![0u8; PAGE as usize];
        for p in pages {
            let lib = cpu.read(p, &mut buf).map(|_| buf.clone()).map_err(stop_of);
            let model = self.model.read(p, PAGE);
            if lib != model {
                let brief = |r: &Result<Vec<u8>, Stop>| match r {
                    Ok(b) => format!("bytes, first {:?}", &b[..16]),
                    Err(s) => format!("{s:?}"),
                };
                return Err(format!(
                    "contents of page {} differ: library {}, model {}",
                    at(p as i64 - WINDOW as i64),
                    brief(&lib),
                    brief(&model)
                ));
            }
        }
        Ok(())
    }

    /// Whether `linux-run` cannot check an access at `addr` with this outcome: it takes
    /// faults, and reads of pages without VM_READ, in a forked child, where a DONTFORK
    /// VMA is missing and a WIPEONFORK one is empty.
    fn forked_access(&self, addr: u64, o: &Outcome) -> bool {
        use super::vmflags::{VM_DONTCOPY, VM_READ, VM_WIPEONFORK};
        let (addr, fault) = match o {
            Outcome::Filled(Err(s)) | Outcome::Bytes(Err(s)) => (s.addr, true),
            Outcome::Bytes(Ok(_)) => (addr, false),
            _ => return false,
        };
        self.model.find(addr).is_some_and(|v| {
            v.flags & (VM_DONTCOPY | VM_WIPEONFORK) != 0 && (fault || v.flags & VM_READ == 0)
        })
    }

    /// Script lines checking the model's layout and flags over the window (and below it
    /// where VMAs were placed there).
    pub fn layout_lines(&self) -> String {
        let top = WINDOW + WINDOW_PAGES * PAGE;
        let vmas: Vec<_> = self.model.vmas.values().filter(|v| v.start < top).collect();
        let lo = vmas.first().map_or(WINDOW, |v| v.start.min(WINDOW));
        let mut parts = Vec::new();
        let mut at_ = lo;
        for v in &vmas {
            if v.start > at_ {
                parts.push(format!("unmapped {}", v.start - at_));
            }
            parts.push(format!("{} {}", perms(v.flags), v.end - v.start));
            at_ = v.end;
        }
        if at_ < top {
            parts.push(format!("unmapped {}", top - at_));
        }
        let base = lo as i64 - WINDOW as i64;
        let mut s = format!(
            "layout({}, {}) = \"{}\"\n",
            at(base),
            len(top - lo),
            parts.join(", ")
        );
        for v in &vmas {
            let f = linux_vmflags(v.flags);
            writeln!(
                s,
                "vmflags({}) = \"{f}\"",
                at(v.start as i64 - WINDOW as i64)
            )
            .unwrap();
        }
        s
    }

    /// Script lines checking the model's contents: `count` per run of equal bytes, the
    /// signal for pages that cannot be read.
    pub fn content_lines(&self) -> String {
        let mut s = String::new();
        let mut pages: Vec<u64> = (0..WINDOW_PAGES).map(|p| WINDOW + p * PAGE).collect();
        for v in self.model.vmas.values().filter(|v| v.start < WINDOW) {
            pages.extend((v.start..v.end).step_by(PAGE as usize));
        }
        pages.sort_unstable();
        for p in pages {
            let rel = |a: u64| at(a as i64 - WINDOW as i64);
            let read = self.model.read(p, PAGE);
            if self.forked_access(p, &Outcome::Bytes(read.clone())) {
                continue;
            }
            match read {
                Err(stop) => writeln!(s, "count({}, 1, 0) = {}", rel(p), sig_name(&stop)).unwrap(),
                Ok(bytes) => {
                    let mut i = 0;
                    while i < bytes.len() {
                        let j = i + bytes[i..].iter().take_while(|&&b| b == bytes[i]).count();
                        let (a, n) = (p + i as u64, j - i);
                        writeln!(s, "count({}, {n}, {:#04x}) = {n}", rel(a), bytes[i]).unwrap();
                        i = j;
                    }
                }
            }
        }
        s
    }
}

/// The `VmFlags` words Linux 6.18 prints, "gu" included.
fn linux_vmflags(flags: u64) -> String {
    let mut s = vmflags::vmflags_string(flags & !VM_MAYBE_GUARD);
    if flags & VM_MAYBE_GUARD != 0 {
        s.push_str(" gu");
    }
    s
}

fn perms(flags: u64) -> String {
    use super::vmflags::*;
    let bit = |b: u64, c: char| if flags & b != 0 { c } else { '-' };
    let share = if flags & VM_MAYSHARE != 0 { 's' } else { 'p' };
    [
        bit(VM_READ, 'r'),
        bit(VM_WRITE, 'w'),
        bit(VM_EXEC, 'x'),
        share,
    ]
    .iter()
    .collect()
}

/// Run `ops` on a fresh case; `Err` names the first difference and carries the script
/// of the ops up to it. `contents_every_op`: compare contents after every op (reading
/// faults pages in, so the other half of the cases compares them only at the end).
pub fn run(ops: &[Op], quirks: Quirks, contents_every_op: bool) -> Result<(), String> {
    let pm = PhysMem::new(64 << 20).expect("physical memory");
    let base = pm.frames_in_use();
    let mut case = Case::new(&pm, quirks);
    for (i, op) in ops.iter().enumerate() {
        let (text, lib, model) = case.exec(op);
        writeln!(case.script, "{text} = {}", Case::expect_text(op, &model)).unwrap();
        let fail = |what: String, script: &str| {
            Err(format!(
                "op {i} ({op:?}): {what}\nscript (model expectations):\n{script}"
            ))
        };
        if lib != model {
            return fail(format!("library {lib:?}, model {model:?}"), &case.script);
        }
        if let Err(e) = case.compare_layout() {
            return fail(e, &case.script);
        }
        if (contents_every_op || i + 1 == ops.len())
            && let Err(e) = case.compare_contents()
        {
            return fail(e, &case.script);
        }
    }
    drop(case);
    rcu::barrier();
    rcu::barrier();
    if pm.frames_in_use() != base {
        return Err(format!("frames leaked after {ops:?}"));
    }
    Ok(())
}

/// The whole case as a script with the model's expectations: each call's result, the
/// layout and flags after each call, and all contents at the end.
pub fn script(ops: &[Op], quirks: Quirks) -> String {
    let pm = PhysMem::new(64 << 20).expect("physical memory");
    let mut case = Case::new(&pm, quirks);
    for op in ops {
        let (text, _, model) = case.exec(op);
        let addr = match op.call() {
            Call::Read { off, .. } => WINDOW + off,
            _ => 0,
        };
        if case.forked_access(addr, &model) {
            // linux-run takes such faults in a forked child, which lacks the VMA.
            writeln!(case.script, "{text}  # fault in a DONTFORK/WIPEONFORK VMA").unwrap();
        } else {
            writeln!(case.script, "{text} = {}", Case::expect_text(op, &model)).unwrap();
        }
        let lines = case.layout_lines();
        case.script.push_str(&lines);
    }
    let lines = case.content_lines();
    case.script.push_str(&lines);
    case.script
}
