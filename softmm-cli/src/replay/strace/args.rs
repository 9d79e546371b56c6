//! Argument text: splitting it at top-level commas, and reading one argument as a number,
//! flags, a file descriptor with its `-y` path, or a string.
//!
//! The splitter walks bytes, skipping what may hold a comma or a bracket that is not one:
//! `"strings"` (backslash escapes), `/* comments */`, and `-y` annotations (`3</a, b>`,
//! `AT_FDCWD</tmp>`). An annotation opens at a `<` right after a letter or digit (so `<<` of
//! `21<<MAP_HUGE_SHIFT` and `<... resuming ...>` are not one) and closes at the `>` that
//! balances it *and* is followed by a separator: strace 6 escapes `<` and `>` in paths (`\76`),
//! older ones do not, and `-yy` nests (`3</dev/zero<char 1:5>>`). Every position the splitter
//! cuts at is an ASCII byte, so slicing is always on a character boundary.

use super::names;

/// Most arguments a decoded call has (`mmap`: 6; `clone3`'s struct: 8 or so).
const MAX_ARGS: usize = 16;

/// The top-level arguments of a call, trimmed, without allocating.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Args<'a> {
    items: [&'a str; MAX_ARGS],
    len: usize,
}

impl<'a> Args<'a> {
    /// The arguments as a slice.
    pub(super) fn as_slice(&self) -> &[&'a str] {
        &self.items[..self.len]
    }

    fn push(&mut self, s: &'a str) -> Result<(), String> {
        let slot = self
            .items
            .get_mut(self.len)
            .ok_or_else(|| format!("more than {MAX_ARGS} arguments"))?;
        *slot = s;
        self.len += 1;
        Ok(())
    }
}

/// Splits `s` at its top-level commas (`()` is no argument, `(,)` is two empty ones).
pub(super) fn split(s: &str) -> Result<Args<'_>, String> {
    let b = s.as_bytes();
    let mut out = Args::default();
    let (mut depth, mut start, mut i) = (0usize, 0, 0);
    while i < b.len() {
        i = match b[i] {
            b'"' => skip_string(b, i).ok_or("unterminated string")?,
            b'/' if b.get(i + 1) == Some(&b'*') => {
                skip_comment(b, i).ok_or("unterminated comment")?
            }
            b'<' if b.get(i + 1) == Some(&b'<') => i + 2,
            b'<' if i > 0 && b[i - 1].is_ascii_alphanumeric() => {
                annotation_end(b, i).ok_or("unterminated `<...>` annotation")? + 1
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                i + 1
            }
            b')' | b']' | b'}' => {
                depth = depth.checked_sub(1).ok_or("unbalanced brackets")?;
                i + 1
            }
            b',' if depth == 0 => {
                out.push(s[start..i].trim())?;
                start = i + 1;
                i + 1
            }
            _ => i + 1,
        };
    }
    if depth != 0 {
        return Err("unbalanced brackets".into());
    }
    let last = s[start..].trim();
    if out.len > 0 || !last.is_empty() {
        out.push(last)?;
    }
    Ok(out)
}

/// The index after the string that opens at `b[open] == '"'`.
fn skip_string(b: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The index after the comment that opens at `b[open..]` == `/*`.
fn skip_comment(b: &[u8], open: usize) -> Option<usize> {
    let from = open + 2;
    b.get(from..)?
        .windows(2)
        .position(|w| w == b"*/")
        .map(|p| from + p + 2)
}

/// The index of the `>` closing the annotation that opens at `b[open] == '<'`.
pub(super) fn annotation_end(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'<' => depth += 1,
            b'>' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    if closes_annotation(&b[i + 1..]) {
                        return Some(i);
                    }
                    // An unescaped `>` inside a path (strace before 6).
                    depth = 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether what follows a `>` ends an annotation.
fn closes_annotation(after: &[u8]) -> bool {
    match after.first() {
        None | Some(b',' | b')' | b']' | b'}' | b' ' | b'\t' | b'>') => true,
        Some(_) => after.starts_with(b"(deleted)"),
    }
}

/// `s` without a trailing `/* comment */` (`-X verbose`, `/* 37 vars */`), trimmed.
fn uncommented(s: &str) -> &str {
    // A byte scan: `find("/*")` builds a substring searcher on every call.
    let b = s.as_bytes();
    match (0..b.len().saturating_sub(1)).find(|&i| b[i] == b'/' && b[i + 1] == b'*') {
        Some(i) => s[..i].trim_end(),
        None => s,
    }
}

/// A number: decimal, `0x` hex, `NULL`; a leading `-` wraps (`-1` is `u64::MAX`).
pub(super) fn number(s: &str) -> Result<u64, String> {
    let s = uncommented(s);
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let value = if let Some(hex) = digits.strip_prefix("0x") {
        radix(hex, 16)
    } else if digits == "NULL" && !neg {
        Some(0)
    } else {
        radix(digits, 10)
    };
    let value = value.ok_or_else(|| format!("bad number `{}`", super::line::excerpt(s)))?;
    Ok(if neg { value.wrapping_neg() } else { value })
}

/// A non-empty run of digits in base 16 or 10 that fits a u64.
fn radix(digits: &str, base: u64) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.bytes().try_fold(0u64, |v, c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' if base == 16 => c - b'a' + 10,
            b'A'..=b'F' if base == 16 => c - b'A' + 10,
            _ => return None,
        };
        v.checked_mul(base)?.checked_add(u64::from(d))
    })
}

/// A signed number (`-1`, `0`, `3`).
pub(super) fn signed(s: &str) -> Result<i64, String> {
    let v = number(s)?;
    let neg = uncommented(s).starts_with('-');
    // Reject what does not fit: `-0x8000000000000001` or `0x8000000000000000`.
    match (neg, v as i64) {
        (true, x) if x <= 0 => Ok(x),
        (false, x) if x >= 0 => Ok(x),
        _ => Err(format!("number `{}` out of range", super::line::excerpt(s))),
    }
}

/// `|`-joined flags: names (from `tables`, then any name strace uses), numbers and
/// `N<<NAME` shifts.
pub(super) fn flags(s: &str, tables: &[&[(&str, u64)]]) -> Result<u64, String> {
    let s = uncommented(s);
    if s.is_empty() {
        return Err("empty flags".into());
    }
    let mut value = 0;
    for part in s.split('|') {
        let part = part.trim();
        value |= if part
            .as_bytes()
            .first()
            .is_some_and(|c| c.is_ascii_digit() || *c == b'-')
        {
            match part.split_once("<<") {
                Some((n, shift)) => {
                    let shift = names::resolve(shift.trim(), &[])
                        .or_else(|| number(shift).ok())
                        .ok_or_else(|| format!("unknown shift `{shift}`"))?;
                    u32::try_from(shift)
                        .ok()
                        .and_then(|sh| number(n).ok()?.checked_shl(sh))
                        .ok_or_else(|| format!("bad shift `{part}`"))?
                }
                None => number(part)?,
            }
        } else {
            names::resolve(part, tables)
                .ok_or_else(|| format!("unknown flag `{}`", super::line::excerpt(part)))?
        };
    }
    Ok(value)
}

/// A file descriptor with its `-y` path: `-1`, `3</usr/lib/libc.so.6>`,
/// `3</memfd:x>(deleted)`, `3</dev/zero<char 1:5>>`.
pub(super) fn fd(s: &str) -> Result<(i64, Option<String>), String> {
    let s = uncommented(s);
    let Some(open) = s.find('<') else {
        return Ok((signed(s)?, None));
    };
    let fd = signed(&s[..open])?;
    let b = s.as_bytes();
    let close = annotation_end(b, open).ok_or("unterminated `<...>` after the fd")?;
    let mut inner = &s[open + 1..close];
    // `-yy`'s `<char 1:5>` suffix.
    if let Some(i) = inner.rfind('<').filter(|&i| i > 0 && inner.ends_with('>')) {
        inner = &inner[..i];
    }
    let mut path = unescape(inner);
    match s[close + 1..].trim() {
        "" => {}
        "(deleted)" => path.push_str(" (deleted)"),
        rest => {
            return Err(format!(
                "unexpected `{}` after the fd",
                super::line::excerpt(rest)
            ));
        }
    }
    Ok((fd, Some(path)))
}

/// A string argument `"..."` (possibly truncated: `"..."...`), unescaped; anything else
/// (a pointer strace could not read) is returned as it is.
pub(super) fn string(s: &str) -> String {
    let s = uncommented(s);
    let Some(body) = s.strip_prefix('"') else {
        return s.to_string();
    };
    match skip_string(s.as_bytes(), 0) {
        Some(end) => unescape(&body[..end - 2]),
        None => unescape(body),
    }
}

/// Undoes strace's C escapes: `\n`, `\t`, `\"`, `\\`, `\76` (octal), `\x3e` (hex).
pub(super) fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 == b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let (byte, used) = escape(&b[i + 1..]);
        out.push(byte);
        i += 1 + used;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The byte an escape stands for (after its backslash), and how many bytes it used.
fn escape(e: &[u8]) -> (u8, usize) {
    let simple = match e[0] {
        b'n' => Some(b'\n'),
        b't' => Some(b'\t'),
        b'r' => Some(b'\r'),
        b'v' => Some(0x0b),
        b'f' => Some(0x0c),
        b'a' => Some(0x07),
        b'b' => Some(0x08),
        _ => None,
    };
    if let Some(byte) = simple {
        return (byte, 1);
    }
    if e[0] == b'x' {
        let n = e[1..]
            .iter()
            .take(2)
            .take_while(|c| c.is_ascii_hexdigit())
            .count();
        if n > 0 {
            let v = e[1..=n].iter().fold(0u8, |v, &c| (v << 4) | hex_digit(c));
            return (v, 1 + n);
        }
    }
    let n = e
        .iter()
        .take(3)
        .take_while(|c| (b'0'..=b'7').contains(c))
        .count();
    if n > 0 {
        let v = e[..n]
            .iter()
            .fold(0u32, |v, &c| (v << 3) | u32::from(c - b'0'));
        return (u8::try_from(v).unwrap_or(u8::MAX), n);
    }
    (e[0], 1)
}

fn hex_digit(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c.wrapping_sub(b'A').wrapping_add(10) & 0xf,
    }
}
