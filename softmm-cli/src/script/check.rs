//! Whether a result meets a line's expectation, and the `expected X, got Y` texts when not.
//!
//! The rules are linux-run's (its `check`):
//! - `$name` binds any integer, bytes or text result while unbound (a failed call or a fault
//!   leaves it unbound); once bound the result must equal it.
//! - An integer expression must equal the result modulo 2^64; `-1` also matches any failure.
//! - `-1 ENAME` must be a failure with that errno; `SIGSEGV`/`SIGBUS` a fault with that signal.
//! - A string equals bytes exactly; against text it is compared entry by entry for `layout`
//!   (blanks around commas ignored) and as a set of words for `vmflags`.

use std::collections::BTreeSet;

use super::{
    ast::{CallName, Expect, Value},
    backend::Outcome,
    errno::{errno_name, signal_name},
    eval::Vars,
    format::{cstr, fmt_int_result, fmt_result},
};

/// A failed expectation: what was expected and what came instead, as the FAIL line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The `X` of `expected X`.
    pub expected: String,
    /// The `Y` of `got Y`.
    pub got: String,
}

/// Checks `res` of `call` against `expect`, binding a variable where the expectation binds.
pub fn check(
    call: CallName,
    expect: &Expect,
    res: &Outcome,
    vars: &mut Vars,
) -> Result<(), Mismatch> {
    let got = || fmt_result(call, res);
    let fail = |expected: String| {
        Err(Mismatch {
            expected,
            got: got(),
        })
    };
    match expect {
        Expect::Bind(name) => check_bind(name, res, vars).or_else(fail),
        Expect::Int(e) => {
            let want = match vars.num(e) {
                Ok(v) => v,
                Err(err) => return fail(err.0),
            };
            match res {
                Outcome::Int(v) if *v == want => Ok(()),
                Outcome::Err(_) if want == u64::MAX => Ok(()),
                _ => fail(fmt_int_result(call, want)),
            }
        }
        Expect::Err(e) => match res {
            Outcome::Err(got) if got == e => Ok(()),
            _ => fail(format!("-1 {}", errno_name(*e))),
        },
        Expect::Sig(s) => match res {
            Outcome::Signal(got) if got == s => Ok(()),
            _ => fail(signal_name(*s)),
        },
        Expect::Str(want) => {
            if str_matches(call, want, res) {
                Ok(())
            } else {
                fail(cstr(want))
            }
        }
    }
}

/// `= $name`: bind or compare. `Err` is the expected text.
fn check_bind(name: &str, res: &Outcome, vars: &mut Vars) -> Result<(), String> {
    let Some(want) = vars.get(name) else {
        let v = match res {
            Outcome::Int(v) => Value::Int(*v),
            Outcome::Bytes(b) => Value::Bytes(b.clone()),
            Outcome::Text(t) => Value::Bytes(t.as_bytes().to_vec()),
            _ => return Err(format!("a value for ${name}")),
        };
        vars.set(name, v);
        return Ok(());
    };
    match want {
        Value::Bytes(want) => {
            let have = match res {
                Outcome::Bytes(b) => Some(b.as_slice()),
                Outcome::Text(t) => Some(t.as_bytes()),
                _ => None,
            };
            if have == Some(want.as_slice()) {
                Ok(())
            } else {
                Err(format!("${name} = {}", cstr(want)))
            }
        }
        Value::Int(want) => {
            if *res == Outcome::Int(*want) {
                return Ok(());
            }
            let signed = *want as i64;
            let shown = if signed.unsigned_abs() >= 1 << 20 {
                format!("{want:#x}")
            } else {
                signed.to_string()
            };
            Err(format!("${name} = {shown}"))
        }
    }
}

/// Whether a string expectation holds.
fn str_matches(call: CallName, want: &[u8], res: &Outcome) -> bool {
    match res {
        Outcome::Bytes(b) => b == want,
        Outcome::Text(have) => {
            // The expectation's bytes as text, one character per byte (latin-1).
            let want: String = want.iter().map(|&b| char::from(b)).collect();
            if call == CallName::Vmflags {
                words(have) == words(&want)
            } else {
                layout_entries(have) == layout_entries(&want)
            }
        }
        _ => false,
    }
}

fn words(s: &str) -> BTreeSet<&str> {
    s.split_whitespace().collect()
}

/// The comma-separated entries of a layout text, blanks normalised.
fn layout_entries(s: &str) -> Vec<String> {
    if s.trim().is_empty() {
        return Vec::new();
    }
    s.split(',')
        .map(|x| x.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::ast::Expr;

    fn mismatch(expected: &str, got: &str) -> Result<(), Mismatch> {
        Err(Mismatch {
            expected: expected.into(),
            got: got.into(),
        })
    }

    #[test]
    fn bind_then_compare() {
        let mut vars = Vars::new();
        let bind = Expect::Bind("p".into());
        assert_eq!(
            check(CallName::Mmap, &bind, &Outcome::Int(0x7000_0000), &mut vars),
            Ok(())
        );
        assert_eq!(vars.get("p"), Some(&Value::Int(0x7000_0000)));
        assert_eq!(
            check(CallName::Mmap, &bind, &Outcome::Int(0x7000_0000), &mut vars),
            Ok(())
        );
        assert_eq!(
            check(CallName::Mmap, &bind, &Outcome::Int(0x6000_0000), &mut vars),
            mismatch("$p = 0x70000000", "0x60000000")
        );
        vars.set("n", Value::Int(5));
        assert_eq!(
            check(
                CallName::Count,
                &Expect::Bind("n".into()),
                &Outcome::Err(22),
                &mut vars
            ),
            mismatch("$n = 5", "-1 EINVAL (Invalid argument)")
        );
        vars.set("m", Value::Int(u64::MAX));
        assert_eq!(
            check(
                CallName::Count,
                &Expect::Bind("m".into()),
                &Outcome::Int(1),
                &mut vars
            ),
            mismatch("$m = -1", "1")
        );
    }

    #[test]
    fn bind_fails_on_error_or_signal() {
        let mut vars = Vars::new();
        let bind = Expect::Bind("q".into());
        assert_eq!(
            check(CallName::Mmap, &bind, &Outcome::Err(12), &mut vars),
            mismatch("a value for $q", "-1 ENOMEM (Cannot allocate memory)")
        );
        assert_eq!(
            check(CallName::Peek, &bind, &Outcome::Signal(11), &mut vars),
            mismatch("a value for $q", "SIGSEGV")
        );
        assert_eq!(vars.get("q"), None);
    }

    #[test]
    fn bind_bytes() {
        let mut vars = Vars::new();
        let bind = Expect::Bind("h".into());
        let ab = Outcome::Bytes(b"a\tb".to_vec());
        assert_eq!(check(CallName::Peek, &bind, &ab, &mut vars), Ok(()));
        assert_eq!(check(CallName::Peek, &bind, &ab, &mut vars), Ok(()));
        assert_eq!(
            check(
                CallName::Peek,
                &bind,
                &Outcome::Bytes(b"x".to_vec()),
                &mut vars
            ),
            mismatch(r#"$h = "a\tb""#, r#""x""#)
        );
        let text = Expect::Bind("t".into());
        let lay = Outcome::Text("rw-p 4096".into());
        assert_eq!(check(CallName::Layout, &text, &lay, &mut vars), Ok(()));
        assert_eq!(vars.get("t"), Some(&Value::Bytes(b"rw-p 4096".to_vec())));
    }

    #[test]
    fn integers() {
        let mut vars = Vars::new();
        let four = Expect::Int(Expr::Num(4096));
        assert_eq!(
            check(CallName::Fill, &four, &Outcome::Int(4096), &mut vars),
            Ok(())
        );
        assert_eq!(
            check(CallName::Fill, &four, &Outcome::Signal(11), &mut vars),
            mismatch("4096", "SIGSEGV")
        );
        let addr = Expect::Int(Expr::Num(0x7000));
        assert_eq!(
            check(CallName::Mmap, &addr, &Outcome::Err(17), &mut vars),
            mismatch("0x7000", "-1 EEXIST (File exists)")
        );
        let minus_one = Expect::Int(Expr::Neg(Box::new(Expr::Num(1))));
        assert_eq!(
            check(CallName::Munmap, &minus_one, &Outcome::Err(22), &mut vars),
            Ok(())
        );
        assert_eq!(
            check(CallName::Munmap, &minus_one, &Outcome::Int(0), &mut vars),
            mismatch("-1", "0")
        );
        let unbound = Expect::Int(Expr::Var("gone".into()));
        assert_eq!(
            check(CallName::Munmap, &unbound, &Outcome::Int(0), &mut vars),
            mismatch("$gone is unbound (the line that binds it failed)", "0")
        );
    }

    #[test]
    fn errors_and_signals() {
        let mut vars = Vars::new();
        let einval = Expect::Err(22);
        assert_eq!(
            check(CallName::Munmap, &einval, &Outcome::Err(22), &mut vars),
            Ok(())
        );
        assert_eq!(
            check(CallName::Munmap, &einval, &Outcome::Err(12), &mut vars),
            mismatch("-1 EINVAL", "-1 ENOMEM (Cannot allocate memory)")
        );
        assert_eq!(
            check(
                CallName::Munmap,
                &Expect::Err(11),
                &Outcome::Int(0),
                &mut vars
            ),
            mismatch("-1 EAGAIN", "0")
        );
        let segv = Expect::Sig(11);
        assert_eq!(
            check(CallName::Poke, &segv, &Outcome::Signal(11), &mut vars),
            Ok(())
        );
        assert_eq!(
            check(CallName::Poke, &segv, &Outcome::Signal(7), &mut vars),
            mismatch("SIGSEGV", "SIGBUS")
        );
        assert_eq!(
            check(CallName::Poke, &Expect::Sig(7), &Outcome::Int(1), &mut vars),
            mismatch("SIGBUS", "1")
        );
    }

    #[test]
    fn strings() {
        let mut vars = Vars::new();
        let s = |b: &[u8]| Expect::Str(b.to_vec());
        let peek = Outcome::Bytes(b"\0\0hello\0".to_vec());
        assert_eq!(
            check(CallName::Peek, &s(b"\0\0hello\0"), &peek, &mut vars),
            Ok(())
        );
        assert_eq!(
            check(CallName::Peek, &s(b"hello"), &peek, &mut vars),
            mismatch(r#""hello""#, r#""\0\0hello\0""#)
        );
        let lay = Outcome::Text("rw-p 4096, unmapped 4096".into());
        assert_eq!(
            check(
                CallName::Layout,
                &s(b" rw-p  4096 ,unmapped 4096"),
                &lay,
                &mut vars
            ),
            Ok(())
        );
        assert_eq!(
            check(
                CallName::Layout,
                &s(b"unmapped 4096, rw-p 4096"),
                &lay,
                &mut vars
            ),
            mismatch(
                r#""unmapped 4096, rw-p 4096""#,
                r#""rw-p 4096, unmapped 4096""#
            )
        );
        let flags = Outcome::Text("rd wr mr mw me ac".into());
        assert_eq!(
            check(
                CallName::Vmflags,
                &s(b"ac me mw mr wr rd"),
                &flags,
                &mut vars
            ),
            Ok(())
        );
        assert_eq!(
            check(CallName::Vmflags, &s(b"rd wr"), &flags, &mut vars),
            mismatch(r#""rd wr""#, r#""rd wr mr mw me ac""#)
        );
        assert_eq!(
            check(CallName::Vmflags, &s(b"rd"), &Outcome::Err(12), &mut vars),
            mismatch(r#""rd""#, "-1 ENOMEM (Cannot allocate memory)")
        );
        assert_eq!(
            check(
                CallName::Layout,
                &s(b""),
                &Outcome::Text(String::new()),
                &mut vars
            ),
            Ok(())
        );
    }
}
