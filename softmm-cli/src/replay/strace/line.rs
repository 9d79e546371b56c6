//! One line's shape: the pid, timestamp and instruction-pointer prefix, then what the body
//! is (a call, half of a split call, an exit, a signal, a note), as borrowed slices.
//!
//! Nothing here decodes arguments or results ([`ops`](super::ops) does), so this is the part
//! every line pays for, and it allocates nothing. Finding the result of a call scans from the
//! end for `) = `: strace pads the result to a column with spaces, and a result never
//! contains ` = `, while arguments (strings) may.

/// What a line's body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body<'a> {
    /// Nothing (an empty or all-blank line without a pid).
    Blank,
    /// One of strace's notes (`strace: ...`, `--- stopped by ... ---`).
    Ignored,
    /// `name(args) = ret`.
    Call {
        name: &'a str,
        args: &'a str,
        ret: &'a str,
    },
    /// `name(head <unfinished ...>`.
    Unfinished { name: &'a str, head: &'a str },
    /// `<... name resumed>tail) = ret`.
    Resumed {
        name: &'a str,
        tail: &'a str,
        ret: &'a str,
    },
    /// `+++ exited with N +++`.
    Exited(i64),
    /// `+++ killed by SIG... +++`.
    Killed(&'a str),
    /// `+++ superseded by execve in pid N +++`: thread N's pending `execve` now belongs to
    /// this pid (the thread took over the leader's id).
    Superseded(u64),
    /// `--- SIG... {...} ---`.
    Signal(&'a str),
}

const UNFINISHED: &str = "<unfinished ...>";

/// Splits a line into its pid (if it has one) and its body.
pub(super) fn split(line: &str) -> Result<(Option<u64>, Body<'_>), String> {
    let (pid, rest) = split_prefix(line)?;
    let body = rest.trim_end();
    if body.is_empty() {
        return match pid {
            None => Ok((None, Body::Blank)),
            Some(_) => Err("nothing after the pid (truncated line?)".into()),
        };
    }
    let body = if let Some(r) = body.strip_prefix("+++ ") {
        process_note(r)?
    } else if let Some(r) = body.strip_prefix("--- ") {
        signal_note(r)?
    } else if let Some(r) = body.strip_prefix("<... ") {
        resumed(r)?
    } else if body.starts_with("strace: ") || body.starts_with("[ Process PID=") {
        Body::Ignored
    } else {
        call(body)?
    };
    Ok((pid, body))
}

/// Reads `1234 `, `[pid 1234] ` or nothing, then skips a timestamp and `[ip]`.
fn split_prefix(line: &str) -> Result<(Option<u64>, &str), String> {
    let s = line.trim_start_matches([' ', '\t']);
    let (pid, rest) = if let Some(r) = s.strip_prefix("[pid") {
        let end = r.find(']').ok_or("unterminated `[pid N]`")?;
        (
            Some(decimal(r[..end].trim()).ok_or("bad pid in `[pid N]`")?),
            &r[end + 1..],
        )
    } else {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        match s.as_bytes().get(digits) {
            Some(b' ' | b'\t') | None if digits > 0 => {
                (Some(decimal(&s[..digits]).ok_or("bad pid")?), &s[digits..])
            }
            _ => (None, s),
        }
    };
    let rest = skip_timestamp(rest.trim_start_matches([' ', '\t']));
    Ok((pid, skip_ip(rest)))
}

/// A decimal number that fits a u64.
pub(super) fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Skips `02:35:25`, `02:35:25.812713`, `1795574125.847019` or `0.000123`, and the blanks
/// after it.
fn skip_timestamp(s: &str) -> &str {
    let len = s
        .bytes()
        .take_while(|&c| c.is_ascii_digit() || c == b':' || c == b'.')
        .count();
    let token = &s.as_bytes()[..len];
    let stamped =
        len > 0 && token[0].is_ascii_digit() && token.iter().any(|&c| !c.is_ascii_digit());
    if stamped && matches!(s.as_bytes().get(len), Some(b' ' | b'\t')) {
        s[len..].trim_start_matches([' ', '\t'])
    } else {
        s
    }
}

/// Skips `-i`'s `[00007f8cc4e7e123] `.
fn skip_ip(s: &str) -> &str {
    let Some(r) = s.strip_prefix('[') else {
        return s;
    };
    let hex = r.bytes().take_while(u8::is_ascii_hexdigit).count();
    match r[hex..].strip_prefix(']') {
        Some(rest) if hex > 0 => rest.trim_start_matches([' ', '\t']),
        _ => s,
    }
}

/// `exited with N +++`, `killed by SIG... [(core dumped)] +++`,
/// `superseded by execve in pid N +++`.
fn process_note(r: &str) -> Result<Body<'_>, String> {
    let r = r
        .strip_suffix("+++")
        .ok_or("`+++` line without its closing `+++` (truncated line?)")?
        .trim_end();
    if let Some(code) = r.strip_prefix("exited with ") {
        let code = code.trim();
        let value = match code.strip_prefix('-') {
            Some(d) => decimal(d).and_then(|v| i64::try_from(v).ok()).map(|v| -v),
            None => decimal(code).and_then(|v| i64::try_from(v).ok()),
        };
        return value
            .map(Body::Exited)
            .ok_or_else(|| format!("bad exit status `{code}`"));
    }
    if let Some(sig) = r.strip_prefix("killed by ") {
        let sig = sig.strip_suffix("(core dumped)").unwrap_or(sig).trim();
        return if is_ident(sig) {
            Ok(Body::Killed(sig))
        } else {
            Err(format!("bad signal `{sig}` in `killed by`"))
        };
    }
    if let Some(pid) = r.strip_prefix("superseded by execve in pid ") {
        return decimal(pid.trim())
            .map(Body::Superseded)
            .ok_or_else(|| format!("bad pid `{pid}` in `superseded by execve`"));
    }
    Err(format!("unknown `+++ {r} +++` line"))
}

/// `SIGCHLD {si_signo=...} ---`, `stopped by SIGSTOP ---`.
fn signal_note(r: &str) -> Result<Body<'_>, String> {
    let r = r
        .strip_suffix("---")
        .ok_or("`---` line without its closing `---` (truncated line?)")?;
    if r.starts_with("stopped by ") {
        return Ok(Body::Ignored);
    }
    let name = r.split([' ', '\t']).next().unwrap_or("");
    if name.starts_with("SIG") && is_ident(name) {
        Ok(Body::Signal(name))
    } else {
        Err(format!("unknown `--- {} ---` line", r.trim()))
    }
}

/// `name resumed>tail) = ret`, the tail possibly ` <unfinished ...>` (the process died in
/// the call).
fn resumed(r: &str) -> Result<Body<'_>, String> {
    let len = name_len(r);
    let name = &r[..len];
    let rest = r[len..]
        .strip_prefix(" resumed>")
        .filter(|_| len > 0)
        .ok_or("bad `<... name resumed>`")?;
    let (tail, ret) = split_result(rest)
        .ok_or_else(|| format!("{name}: no `) = result` after `resumed>` (truncated line?)"))?;
    let tail = tail.trim_start();
    let tail = tail.strip_prefix(UNFINISHED).unwrap_or(tail);
    Ok(Body::Resumed { name, tail, ret })
}

/// `name(args) = ret` or `name(head <unfinished ...>`.
fn call(body: &str) -> Result<Body<'_>, String> {
    let len = name_len(body);
    let name = &body[..len];
    let after = body[len..]
        .strip_prefix('(')
        .filter(|_| len > 0)
        .ok_or_else(|| format!("expected `name(` at `{}`", excerpt(body)))?;
    if let Some(head) = after.strip_suffix(UNFINISHED) {
        return Ok(Body::Unfinished {
            name,
            head: head.trim_end(),
        });
    }
    let (args, ret) =
        split_result(after).ok_or_else(|| format!("{name}: no `) = result` (truncated line?)"))?;
    Ok(Body::Call { name, args, ret })
}

/// Splits `args) = ret` at the last `)` followed by blanks and ` = `.
fn split_result(s: &str) -> Option<(&str, &str)> {
    // A byte scan: `rfind(" = ")` builds a substring searcher on every call.
    let b = s.as_bytes();
    let mut end = b.len();
    while let Some(eq) = b[..end].iter().rposition(|&c| c == b'=') {
        let spaced = eq > 0 && b[eq - 1] == b' ' && b.get(eq + 1) == Some(&b' ');
        // `spaced` first: `eq - 1` is a character boundary only when it is the space.
        if spaced && let Some(args) = s[..eq - 1].trim_end().strip_suffix(')') {
            return Some((args, &s[eq + 2..]));
        }
        end = eq;
    }
    None
}

/// The length of the call name at the start of `s`: an identifier, or `???`, which strace
/// prints for a call it could not name (a thread killed as it entered one).
fn name_len(s: &str) -> usize {
    if s.starts_with("???") {
        3
    } else {
        ident_len(s)
    }
}

/// The length of the identifier (`[A-Za-z0-9_]*`) at the start of `s`.
fn ident_len(s: &str) -> usize {
    s.bytes()
        .take_while(|&c| c.is_ascii_alphanumeric() || c == b'_')
        .count()
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && ident_len(s) == s.len()
}

/// The start of `s`, short enough for an error message.
pub(super) fn excerpt(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
