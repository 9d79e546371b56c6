//! An [`Op`] decoded into system-call arguments, and its rendering as a line of a softmm
//! script (`shared/spec/scripts.md`) with addresses relative to the window `$w`.

use softmm::abi::*;

use super::ops::{ADVICE, Extra, How, Op, PROTS, Place, WINDOW_PAGES, span};

/// A decoded op; every `off` is a byte offset from the window's start.
#[derive(Clone, Copy, Debug)]
pub enum Call {
    Mmap {
        off: u64,
        len: u64,
        prot: u64,
        flags: u64,
    },
    Munmap {
        off: u64,
        len: u64,
    },
    Mprotect {
        off: u64,
        len: u64,
        prot: u64,
    },
    Madvise {
        off: u64,
        len: u64,
        advice: u64,
    },
    Mremap {
        off: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
        dst: u64,
    },
    Mlock {
        off: u64,
        len: u64,
        flags: u64,
    },
    Munlock {
        off: u64,
        len: u64,
    },
    Mlockall {
        flags: u64,
    },
    Munlockall,
    Fill {
        off: u64,
        len: u64,
        byte: u8,
    },
    Read {
        off: u64,
        len: u64,
    },
}

fn mmap_flags(shared: bool, place: Place, extra: Extra) -> u64 {
    let place = match place {
        Place::Hint => 0,
        Place::Fixed => MAP_FIXED,
        Place::NoReplace => MAP_FIXED_NOREPLACE,
    };
    let droppable = extra == Extra::Droppable;
    let extra = match extra {
        Extra::None => 0,
        Extra::Populate => MAP_POPULATE,
        Extra::Locked => MAP_LOCKED,
        Extra::NoReserve => MAP_NORESERVE,
        Extra::Droppable => 0,
    };
    let kind = match (droppable, shared) {
        (true, _) => MAP_DROPPABLE,
        (false, true) => MAP_SHARED,
        (false, false) => MAP_PRIVATE,
    };
    kind | MAP_ANONYMOUS | place | extra
}

/// mremap flags and destination offset; the destination is clamped so that the new
/// length fits in the window.
fn remap_args(how: How, new_len: u64) -> (u64, u64) {
    let top = WINDOW_PAGES * 4096;
    let dst = |p: u8| span(p, 0).0.min(top - new_len.min(top));
    match how {
        How::InPlace => (0, 0),
        How::MayMove => (MREMAP_MAYMOVE, 0),
        How::Fixed(p) => (MREMAP_MAYMOVE | MREMAP_FIXED, dst(p)),
        How::DontUnmap(p) => (MREMAP_MAYMOVE | MREMAP_DONTUNMAP, dst(p)),
        How::FixedDontUnmap(p) => (MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, dst(p)),
    }
}

impl Op {
    /// The system call this op makes (ranges clamped to the window).
    pub fn call(&self) -> Call {
        let access = |page: u8, offset: u16| span(page, 0).0 + u64::from(offset);
        match *self {
            Op::Mmap {
                page,
                pages,
                prot,
                shared,
                place,
                extra,
            } => {
                let (off, len) = span(page, pages);
                let prot = PROTS[usize::from(prot)];
                let flags = mmap_flags(shared, place, extra);
                Call::Mmap {
                    off,
                    len,
                    prot,
                    flags,
                }
            }
            Op::Munmap { page, pages } => {
                let (off, len) = span(page, pages);
                Call::Munmap { off, len }
            }
            Op::Mprotect { page, pages, prot } => {
                let (off, len) = span(page, pages);
                let prot = PROTS[usize::from(prot)];
                Call::Mprotect { off, len, prot }
            }
            Op::Madvise {
                page,
                pages,
                advice,
            } => {
                let (off, len) = span(page, pages);
                let advice = ADVICE[usize::from(advice)].0;
                Call::Madvise { off, len, advice }
            }
            Op::Mremap {
                page,
                old,
                new,
                how,
            } => {
                let (off, old_len) = span(page, old);
                let new_len = u64::from(new).min(WINDOW_PAGES) * 4096;
                let (flags, dst) = remap_args(how, new_len);
                Call::Mremap {
                    off,
                    old_len,
                    new_len,
                    flags,
                    dst,
                }
            }
            Op::Mlock {
                page,
                pages,
                onfault,
            } => {
                let (off, len) = span(page, pages);
                let flags = if onfault { MLOCK_ONFAULT } else { 0 };
                Call::Mlock { off, len, flags }
            }
            Op::Munlock { page, pages } => {
                let (off, len) = span(page, pages);
                Call::Munlock { off, len }
            }
            Op::Mlockall { onfault } => Call::Mlockall {
                flags: MCL_CURRENT | if onfault { MCL_ONFAULT } else { 0 },
            },
            Op::Munlockall => Call::Munlockall,
            Op::Write {
                page,
                offset,
                len,
                byte,
            } => Call::Fill {
                off: access(page, offset),
                len: u64::from(len),
                byte,
            },
            Op::Read { page, offset, len } => Call::Read {
                off: access(page, offset),
                len: u64::from(len),
            },
        }
    }
}

/// A window offset as a script expression: `$w+3*4K`, `$w-2*4K`, `$w+100`.
pub fn at(off: i64) -> String {
    match off {
        0 => "$w".to_string(),
        o if o % 4096 == 0 && o > 0 => format!("$w+{}*4K", o / 4096),
        o if o % 4096 == 0 => format!("$w-{}*4K", -o / 4096),
        o if o > 0 => format!("$w+{o}"),
        o => format!("$w-{}", -o),
    }
}

/// A byte length as a script expression.
pub fn len(bytes: u64) -> String {
    if bytes.is_multiple_of(4096) && bytes > 0 {
        format!("{}*4K", bytes / 4096)
    } else {
        bytes.to_string()
    }
}

/// `A|B|C` of the names of the bits set in `value` (`none` when there is none).
fn names(value: u64, table: &[(u64, &str)], none: &str) -> String {
    let v: Vec<&str> = table
        .iter()
        .filter(|(b, _)| value & b == *b && *b != 0)
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        none.to_string()
    } else {
        v.join("|")
    }
}

fn prot_names(prot: u64) -> String {
    let table = [
        (PROT_READ, "PROT_READ"),
        (PROT_WRITE, "PROT_WRITE"),
        (PROT_EXEC, "PROT_EXEC"),
    ];
    names(prot, &table, "PROT_NONE")
}

fn map_names(flags: u64) -> String {
    let kind = match flags & MAP_TYPE {
        MAP_SHARED => "MAP_SHARED",
        MAP_DROPPABLE => "MAP_DROPPABLE",
        _ => "MAP_PRIVATE",
    };
    let table = [
        (MAP_ANONYMOUS, "MAP_ANONYMOUS"),
        (MAP_FIXED, "MAP_FIXED"),
        (MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"),
        (MAP_POPULATE, "MAP_POPULATE"),
        (MAP_LOCKED, "MAP_LOCKED"),
        (MAP_NORESERVE, "MAP_NORESERVE"),
    ];
    format!("{kind}|{}", names(flags, &table, ""))
}

impl Call {
    /// The call as a script line (without its expectation).
    pub fn text(&self) -> String {
        let a = |off: u64| at(off as i64);
        match *self {
            Call::Mmap {
                off,
                len: l,
                prot,
                flags,
            } => format!(
                "mmap({}, {}, {}, {}, -1, 0)",
                a(off),
                len(l),
                prot_names(prot),
                map_names(flags)
            ),
            Call::Munmap { off, len: l } => format!("munmap({}, {})", a(off), len(l)),
            Call::Mprotect { off, len: l, prot } => {
                format!("mprotect({}, {}, {})", a(off), len(l), prot_names(prot))
            }
            Call::Madvise {
                off,
                len: l,
                advice,
            } => {
                let name = ADVICE.iter().find(|(v, _)| *v == advice).expect("known").1;
                format!("madvise({}, {}, {name})", a(off), len(l))
            }
            Call::Mremap {
                off,
                old_len,
                new_len,
                flags,
                dst,
            } => {
                let table = [
                    (MREMAP_MAYMOVE, "MREMAP_MAYMOVE"),
                    (MREMAP_FIXED, "MREMAP_FIXED"),
                    (MREMAP_DONTUNMAP, "MREMAP_DONTUNMAP"),
                ];
                let to = flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0;
                let new_addr = if to { a(dst) } else { "0".to_string() };
                let f = names(flags, &table, "0");
                let (o, n) = (len(old_len), len(new_len));
                format!("mremap({}, {o}, {n}, {f}, {new_addr})", a(off))
            }
            Call::Mlock { off, len: l, flags } => {
                let f = names(flags, &[(MLOCK_ONFAULT, "MLOCK_ONFAULT")], "0");
                format!("mlock2({}, {}, {f})", a(off), len(l))
            }
            Call::Munlock { off, len: l } => format!("munlock({}, {})", a(off), len(l)),
            Call::Mlockall { flags } => {
                let table = [(MCL_CURRENT, "MCL_CURRENT"), (MCL_ONFAULT, "MCL_ONFAULT")];
                format!("mlockall({})", names(flags, &table, "0"))
            }
            Call::Munlockall => "munlockall()".to_string(),
            Call::Fill { off, len, byte } => format!("fill({}, {len}, {byte:#04x})", a(off)),
            Call::Read { off, len } => format!("peek({}, {len})", a(off)),
        }
    }
}
