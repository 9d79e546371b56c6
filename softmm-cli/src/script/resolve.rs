//! From evaluated arguments to a typed [`Call`]: the runtime type checks of a line.
//!
//! The parser already rejects a string literal where an integer belongs and the reverse, but a
//! variable may hold bytes (from `peek`), so the executor checks again with linux-run's
//! messages: `argument N of CALL must be an integer`, `poke: a byte string is used as an
//! integer`, `poke data must be a string`, `peek of more than 16777216 bytes` (and, softmm's
//! own bound, `count of more than 1073741824 bytes`). A missing
//! optional argument (`mremap`'s new address, `openat`'s mode) is 0, as the raw system call
//! sees it.

use super::{
    ast::{ArgKind, CallName, Value},
    backend::{Buf, Call},
};

/// The most bytes one `peek` may read (and a `pwrite64` string is padded to).
pub const PEEK_MAX: u64 = 16 << 20;

/// The most bytes one `count` may read: it reads through the MMU a chunk at a time, and a
/// range of untouched memory costs no frames, so only this bounds its time.
pub const COUNT_MAX: u64 = 1 << 30;

/// Builds the call a line makes from its evaluated arguments, or the FAIL message.
pub fn resolve(call: CallName, args: &[Value]) -> Result<Call, String> {
    check_types(call, args)?;
    let int = |i: usize| match args.get(i) {
        Some(Value::Int(v)) => *v,
        _ => 0,
    };
    let bytes = |i: usize| match args.get(i) {
        Some(Value::Bytes(b)) => b.clone(),
        _ => Vec::new(),
    };
    let (a0, a1, a2) = (int(0), int(1), int(2));
    Ok(match call {
        CallName::Mmap => Call::Mmap {
            addr: a0,
            len: a1,
            prot: a2,
            flags: int(3),
            fd: int(4),
            off: int(5),
        },
        CallName::Munmap => Call::Munmap { addr: a0, len: a1 },
        CallName::Mprotect => Call::Mprotect {
            addr: a0,
            len: a1,
            prot: a2,
        },
        CallName::Mremap => Call::Mremap {
            old_addr: a0,
            old_len: a1,
            new_len: a2,
            flags: int(3),
            new_addr: int(4),
        },
        CallName::Madvise => Call::Madvise {
            addr: a0,
            len: a1,
            advice: a2,
        },
        CallName::Brk => Call::Brk { addr: a0 },
        CallName::Mlock => Call::Mlock { addr: a0, len: a1 },
        CallName::Mlock2 => Call::Mlock2 {
            addr: a0,
            len: a1,
            flags: a2,
        },
        CallName::Munlock => Call::Munlock { addr: a0, len: a1 },
        CallName::Mlockall => Call::Mlockall { flags: a0 },
        CallName::Munlockall => Call::Munlockall,
        CallName::Msync => Call::Msync {
            addr: a0,
            len: a1,
            flags: a2,
        },
        CallName::MemfdCreate => Call::MemfdCreate {
            name: bytes(0),
            flags: a1,
        },
        CallName::Openat => Call::Openat {
            dirfd: a0,
            path: bytes(1),
            flags: a2,
            mode: int(3),
        },
        CallName::Ftruncate => Call::Ftruncate { fd: a0, len: a1 },
        CallName::Pwrite64 => pwrite64(args, a0, a2, int(3)),
        CallName::Close => Call::Close { fd: a0 },
        CallName::Fork => Call::Fork,
        CallName::ExitGroup => Call::ExitGroup { code: a0 },
        CallName::Poke => Call::Poke {
            addr: a0,
            data: bytes(1),
        },
        CallName::Fill => Call::Fill {
            addr: a0,
            len: a1,
            byte: a2 as u8,
        },
        CallName::Peek => Call::Peek { addr: a0, len: a1 },
        CallName::Count => Call::Count {
            addr: a0,
            len: a1,
            byte: a2 as u8,
        },
        CallName::Layout => Call::Layout { addr: a0, len: a1 },
        CallName::Resident => Call::Resident { addr: a0, len: a1 },
        CallName::Smaps => Call::Smaps {
            addr: a0,
            // latin-1: one character per byte, as linux-run decodes the field name.
            field: bytes(1).into_iter().map(char::from).collect(),
        },
        CallName::Vmflags => Call::Vmflags { addr: a0 },
        CallName::Maps => Call::Maps,
        CallName::SmapsAll => Call::SmapsAll,
    })
}

/// `pwrite64(FD, DATA, LEN, OFF)`: a string shorter than LEN is zero-padded (the kernel would
/// read LEN bytes from the buffer); an integer is an address in the process.
fn pwrite64(args: &[Value], fd: u64, len: u64, off: u64) -> Call {
    let data = match args.get(1) {
        Some(Value::Bytes(b)) => {
            let mut b = b.clone();
            if (b.len() as u64) < len && len <= PEEK_MAX {
                b.resize(len as usize, 0);
            }
            Buf::Bytes(b)
        }
        Some(Value::Int(addr)) => Buf::Addr(*addr),
        None => Buf::Bytes(Vec::new()),
    };
    Call::Pwrite64 { fd, data, len, off }
}

/// Bytes only where the call takes bytes, and the access pseudo-calls' own limits.
fn check_types(call: CallName, args: &[Value]) -> Result<(), String> {
    let name = call.name();
    let access = matches!(
        call,
        CallName::Poke | CallName::Fill | CallName::Peek | CallName::Count
    );
    for (i, (v, spec)) in args.iter().zip(call.args()).enumerate() {
        let takes_bytes = spec.kind.is_string() || spec.kind == ArgKind::Data;
        match v {
            Value::Bytes(_) if !takes_bytes && access => {
                return Err(format!("{name}: a byte string is used as an integer"));
            }
            Value::Bytes(_) if !takes_bytes => {
                return Err(format!("argument {} of {name} must be an integer", i + 1));
            }
            Value::Int(_) if spec.kind.is_string() => {
                return Err(format!("argument {} of {name} must be a string", i + 1));
            }
            _ => {}
        }
    }
    match (call, args.get(1)) {
        (CallName::Poke, Some(Value::Int(_))) => Err("poke data must be a string".to_string()),
        (CallName::Peek, Some(Value::Int(len))) if *len > PEEK_MAX => {
            Err(format!("peek of more than {PEEK_MAX} bytes"))
        }
        (CallName::Count, Some(Value::Int(len))) if *len > COUNT_MAX => {
            Err(format!("count of more than {COUNT_MAX} bytes"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(v: &[u64]) -> Vec<Value> {
        v.iter().map(|&x| Value::Int(x)).collect()
    }

    #[test]
    fn typed_calls() {
        assert_eq!(
            resolve(CallName::Mmap, &ints(&[0, 4096, 3, 0x22, u64::MAX, 0])),
            Ok(Call::Mmap {
                addr: 0,
                len: 4096,
                prot: 3,
                flags: 0x22,
                fd: u64::MAX,
                off: 0
            })
        );
        assert_eq!(
            resolve(CallName::Mremap, &ints(&[0x1000, 4096, 8192, 1])),
            Ok(Call::Mremap {
                old_addr: 0x1000,
                old_len: 4096,
                new_len: 8192,
                flags: 1,
                new_addr: 0
            })
        );
        assert_eq!(
            resolve(CallName::Fill, &ints(&[0x1000, 10, 0x1ff])),
            Ok(Call::Fill {
                addr: 0x1000,
                len: 10,
                byte: 0xff
            })
        );
        assert_eq!(
            resolve(
                CallName::Smaps,
                &[Value::Int(0x1000), Value::Bytes(b"Rss".to_vec())]
            ),
            Ok(Call::Smaps {
                addr: 0x1000,
                field: "Rss".into()
            })
        );
    }

    #[test]
    fn pwrite_pads_short_strings() {
        let args = [
            Value::Int(3),
            Value::Bytes(b"ab".to_vec()),
            Value::Int(4),
            Value::Int(0),
        ];
        assert_eq!(
            resolve(CallName::Pwrite64, &args),
            Ok(Call::Pwrite64 {
                fd: 3,
                data: Buf::Bytes(b"ab\0\0".to_vec()),
                len: 4,
                off: 0
            })
        );
    }

    #[test]
    fn runtime_type_errors() {
        let b = || Value::Bytes(b"xy".to_vec());
        assert_eq!(
            resolve(CallName::Munmap, &[b(), Value::Int(1)]),
            Err("argument 1 of munmap must be an integer".into())
        );
        assert_eq!(
            resolve(CallName::Fill, &[Value::Int(0), Value::Int(1), b()]),
            Err("fill: a byte string is used as an integer".into())
        );
        assert_eq!(
            resolve(CallName::Poke, &ints(&[0x1000, 5])),
            Err("poke data must be a string".into())
        );
        assert_eq!(
            resolve(CallName::Peek, &ints(&[0x1000, PEEK_MAX + 1])),
            Err("peek of more than 16777216 bytes".into())
        );
        assert!(resolve(CallName::Peek, &ints(&[0x1000, PEEK_MAX])).is_ok());
        assert_eq!(
            resolve(CallName::Count, &ints(&[0x1000, COUNT_MAX + 1, 0])),
            Err("count of more than 1073741824 bytes".to_string())
        );
        assert!(resolve(CallName::Count, &ints(&[0x1000, COUNT_MAX, 0])).is_ok());
    }
}
