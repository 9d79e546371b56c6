//! strace-style printing of arguments and results.
//!
//! Each argument is printed by its [`ArgKind`]: flags by name and or-ed in table order with
//! unknown bits in hex (`MAP_PRIVATE|MAP_ANONYMOUS|0x200`), addresses in hex or `NULL`,
//! lengths in decimal, strings C-escaped. Results are printed as strace prints them:
//! `0x7ffff7ffd000` for the calls that return an address, `-1 EINVAL (Invalid argument)` for a
//! failure, `SIGSEGV` for a fault. This is linux-run's `fmt_arg` / `fmt_result`, so both
//! runners' echo is the same text.

use super::{
    ast::{ArgKind, CallName, Value},
    backend::Outcome,
    consts::{self, HUGE_MASK, HUGE_SHIFT},
    errno::{errno_message, errno_name, signal_name},
};

/// A byte string as a C string literal, as strace prints it.
pub fn cstr(b: &[u8]) -> String {
    let mut out = String::from("\"");
    for (i, &ch) in b.iter().enumerate() {
        match ch {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            0 => {
                // "\0" followed by a digit would read as an octal escape.
                let next_is_digit = b.get(i + 1).is_some_and(u8::is_ascii_digit);
                out.push_str(if next_is_digit { "\\x00" } else { "\\0" });
            }
            32..=126 => out.push(char::from(ch)),
            _ => out.push_str(&format!("\\x{ch:02x}")),
        }
    }
    out.push('"');
    out
}

/// `v` as or-ed names from `table` (in table order) and leftover bits in hex; `zero` when
/// `v` is 0.
pub fn flags(v: u64, table: &[(&str, u64)], zero: &str) -> String {
    if v == 0 {
        return zero.to_string();
    }
    let mut v = v;
    let mut parts: Vec<String> = Vec::new();
    for &(name, bits) in table {
        if bits != 0 && v & bits == bits {
            parts.push(name.to_string());
            v &= !bits;
        }
    }
    if v != 0 {
        parts.push(format!("{v:#x}"));
    }
    parts.join("|")
}

/// mmap flags: the mapping type, the flag bits, then the huge-page size.
pub fn fmt_mapflags(v: u64) -> String {
    let mut v = v;
    let mut parts = Vec::new();
    if let Some((name, _)) = consts::MAP_TYPES.iter().find(|(_, t)| *t == v & 0x0f) {
        parts.push((*name).to_string());
        v &= !0x0f;
    }
    let huge = (v >> HUGE_SHIFT) & HUGE_MASK;
    v &= !(HUGE_MASK << HUGE_SHIFT);
    let rest = flags(v, consts::MAP_BITS, "");
    if !rest.is_empty() {
        parts.push(rest);
    }
    if huge != 0 {
        parts.push(match consts::huge_size_name(huge) {
            Some(size) => format!("MAP_HUGE_{size}"),
            None => format!("{huge}<<MAP_HUGE_SHIFT"),
        });
    }
    if parts.is_empty() {
        "0".to_string()
    } else {
        parts.join("|")
    }
}

/// memfd_create flags: the flag bits, then the huge-page size.
fn fmt_mfdflags(v: u64) -> String {
    let huge = (v >> HUGE_SHIFT) & HUGE_MASK;
    let s = flags(v & !(HUGE_MASK << HUGE_SHIFT), consts::MFD, "0");
    if huge == 0 {
        return s;
    }
    let h = match consts::huge_size_name(huge) {
        Some(size) => format!("MFD_HUGE_{size}"),
        None => format!("MFD_HUGE_{huge}"),
    };
    if s == "0" { h } else { format!("{s}|{h}") }
}

/// open flags: the access mode, then the other bits.
fn fmt_oflags(v: u64) -> String {
    let acc = consts::O_ACC[(v & 3) as usize];
    let rest = flags(v & !3, consts::O_BITS, "");
    if rest.is_empty() {
        acc.to_string()
    } else {
        format!("{acc}|{rest}")
    }
}

/// One argument as strace prints it.
pub fn fmt_arg(kind: ArgKind, v: &Value) -> String {
    let v = match v {
        Value::Bytes(b) => return cstr(b),
        Value::Int(v) => *v,
    };
    let signed = v as i64;
    match kind {
        ArgKind::Addr if v == 0 => "NULL".to_string(),
        ArgKind::Addr | ArgKind::Byte => format!("{v:#x}"),
        ArgKind::Len => v.to_string(),
        ArgKind::Prot => flags(v, consts::PROT, "PROT_NONE"),
        ArgKind::MapFlags => fmt_mapflags(v),
        ArgKind::Off if v == 0 => "0".to_string(),
        ArgKind::Off => format!("{v:#x}"),
        ArgKind::Advice => match consts::name_of(consts::MADV, v) {
            Some(name) => name.to_string(),
            None => format!("{v:#x} /* MADV_??? */"),
        },
        ArgKind::MremapFlags => flags(v, consts::MREMAP, "0"),
        ArgKind::Mlock2Flags => flags(v, consts::MLOCK2, "0"),
        ArgKind::MclFlags => flags(v, consts::MCL, "0"),
        ArgKind::MsFlags => flags(v, consts::MS, "0"),
        ArgKind::MfdFlags => fmt_mfdflags(v),
        ArgKind::Dirfd if v == consts::AT_FDCWD => "AT_FDCWD".to_string(),
        ArgKind::OFlags => fmt_oflags(v),
        ArgKind::Mode if v == 0 => "000".to_string(),
        ArgKind::Mode => format!("0{v:o}"),
        ArgKind::Dirfd
        | ArgKind::Fd
        | ArgKind::Int
        | ArgKind::Data
        | ArgKind::Name
        | ArgKind::Path
        | ArgKind::Field => signed.to_string(),
    }
}

/// An integer result of `call` as strace prints it (hex for addresses).
pub fn fmt_int_result(call: CallName, v: u64) -> String {
    if call.returns_address() {
        format!("{v:#x}")
    } else {
        (v as i64).to_string()
    }
}

/// A result as printed after `= `.
pub fn fmt_result(call: CallName, res: &Outcome) -> String {
    match res {
        Outcome::Int(v) => fmt_int_result(call, *v),
        Outcome::Err(e) => format!("-1 {} ({})", errno_name(*e), errno_message(*e)),
        Outcome::Signal(s) => signal_name(*s),
        Outcome::Bytes(b) => cstr(b),
        Outcome::Text(t) => cstr(t.as_bytes()),
        Outcome::Print(_) | Outcome::Exit | Outcome::Error(_) => "?".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(kind: ArgKind, v: u64) -> String {
        fmt_arg(kind, &Value::Int(v))
    }

    #[test]
    fn c_strings() {
        assert_eq!(cstr(b"hello"), "\"hello\"");
        assert_eq!(cstr(b"a\tb\n\"q\"\\\x7f\0z"), r#""a\tb\n\"q\"\\\x7f\0z""#);
        assert_eq!(cstr(b"\0\0hello\0"), r#""\0\0hello\0""#);
        assert_eq!(cstr(b"\x001"), r#""\x001""#);
        assert_eq!(cstr(b"\r\xff "), r#""\r\xff ""#);
        assert_eq!(cstr(b""), r#""""#);
    }

    #[test]
    fn map_flags() {
        assert_eq!(
            fmt_mapflags(0x02 | 0x20 | 0x10),
            "MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS"
        );
        assert_eq!(
            fmt_mapflags(0x02 | 0x20 | 0x100000),
            "MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE"
        );
        assert_eq!(fmt_mapflags(0x01), "MAP_SHARED");
        assert_eq!(fmt_mapflags(0x03 | 0x80000), "MAP_SHARED_VALIDATE|MAP_SYNC");
        assert_eq!(
            fmt_mapflags(0x22 | 0x40000 | (21 << 26)),
            "MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|MAP_HUGE_2MB"
        );
        assert_eq!(
            fmt_mapflags(0x22 | (5 << 26)),
            "MAP_PRIVATE|MAP_ANONYMOUS|5<<MAP_HUGE_SHIFT"
        );
        assert_eq!(fmt_mapflags(0x20), "MAP_ANONYMOUS");
        assert_eq!(
            fmt_mapflags(0x22 | 0x200),
            "MAP_PRIVATE|MAP_ANONYMOUS|0x200"
        );
        assert_eq!(fmt_mapflags(0), "0");
        assert_eq!(fmt_mapflags(0x04), "0x4");
    }

    #[test]
    fn other_flags() {
        assert_eq!(arg(ArgKind::Prot, 3), "PROT_READ|PROT_WRITE");
        assert_eq!(arg(ArgKind::Prot, 0), "PROT_NONE");
        assert_eq!(arg(ArgKind::Prot, 0x11), "PROT_READ|0x10");
        assert_eq!(arg(ArgKind::MremapFlags, 3), "MREMAP_MAYMOVE|MREMAP_FIXED");
        assert_eq!(arg(ArgKind::MremapFlags, 0), "0");
        assert_eq!(arg(ArgKind::Mlock2Flags, 1), "MLOCK_ONFAULT");
        assert_eq!(arg(ArgKind::MclFlags, 3), "MCL_CURRENT|MCL_FUTURE");
        assert_eq!(arg(ArgKind::MsFlags, 4), "MS_SYNC");
        assert_eq!(arg(ArgKind::MfdFlags, 1), "MFD_CLOEXEC");
        assert_eq!(arg(ArgKind::MfdFlags, 0), "0");
        assert_eq!(
            arg(ArgKind::MfdFlags, 4 | (21 << 26)),
            "MFD_HUGETLB|MFD_HUGE_2MB"
        );
        assert_eq!(arg(ArgKind::MfdFlags, 30 << 26), "MFD_HUGE_1GB");
        assert_eq!(arg(ArgKind::OFlags, 0o1102), "O_RDWR|O_CREAT|O_TRUNC");
        assert_eq!(arg(ArgKind::OFlags, 0), "O_RDONLY");
        assert_eq!(arg(ArgKind::OFlags, 0o2000001), "O_WRONLY|O_CLOEXEC");
    }

    #[test]
    fn scalars() {
        assert_eq!(arg(ArgKind::Addr, 0), "NULL");
        assert_eq!(arg(ArgKind::Addr, 0x7fff_f7ff_d000), "0x7ffff7ffd000");
        assert_eq!(arg(ArgKind::Len, 8192), "8192");
        assert_eq!(arg(ArgKind::Len, u64::MAX), "18446744073709551615");
        assert_eq!(arg(ArgKind::Fd, u64::MAX), "-1");
        assert_eq!(arg(ArgKind::Off, 0), "0");
        assert_eq!(arg(ArgKind::Off, 4096), "0x1000");
        assert_eq!(arg(ArgKind::Advice, 4), "MADV_DONTNEED");
        assert_eq!(arg(ArgKind::Advice, 999), "0x3e7 /* MADV_??? */");
        assert_eq!(arg(ArgKind::Dirfd, (-100i64) as u64), "AT_FDCWD");
        assert_eq!(arg(ArgKind::Dirfd, 3), "3");
        assert_eq!(arg(ArgKind::Mode, 0o644), "0644");
        assert_eq!(arg(ArgKind::Mode, 0), "000");
        assert_eq!(arg(ArgKind::Byte, 0x2a), "0x2a");
        assert_eq!(arg(ArgKind::Byte, 0), "0x0");
        assert_eq!(arg(ArgKind::Int, 11), "11");
        assert_eq!(
            fmt_arg(ArgKind::Data, &Value::Bytes(b"x".to_vec())),
            "\"x\""
        );
        assert_eq!(
            fmt_arg(ArgKind::Addr, &Value::Bytes(b"x".to_vec())),
            "\"x\""
        );
    }

    #[test]
    fn results() {
        assert_eq!(
            fmt_result(CallName::Mmap, &Outcome::Int(0x7fff_f7ff_d000)),
            "0x7ffff7ffd000"
        );
        assert_eq!(fmt_result(CallName::Brk, &Outcome::Int(0)), "0x0");
        assert_eq!(fmt_result(CallName::Munmap, &Outcome::Int(0)), "0");
        assert_eq!(fmt_result(CallName::Munmap, &Outcome::Int(u64::MAX)), "-1");
        assert_eq!(
            fmt_result(CallName::Munmap, &Outcome::Err(22)),
            "-1 EINVAL (Invalid argument)"
        );
        assert_eq!(fmt_result(CallName::Peek, &Outcome::Signal(11)), "SIGSEGV");
        assert_eq!(fmt_result(CallName::Peek, &Outcome::Signal(7)), "SIGBUS");
        assert_eq!(
            fmt_result(CallName::Peek, &Outcome::Bytes(b"ab\0".to_vec())),
            r#""ab\0""#
        );
        assert_eq!(
            fmt_result(CallName::Layout, &Outcome::Text("rw-p 4096".into())),
            r#""rw-p 4096""#
        );
        assert_eq!(fmt_result(CallName::ExitGroup, &Outcome::Exit), "?");
    }
}
