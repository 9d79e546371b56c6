//! Decoding a call: its name and argument text into an [`Op`], its result text into a
//! [`Ret`].
//!
//! Only the calls the replay acts on are decoded, each with its exact argument count; any
//! other name is [`Op::Other`] and its arguments are not looked at. Errors name the call and
//! the 1-based argument (`mmap: argument 3: unknown flag ...`).

use super::{
    Op, Ret,
    args::{self, Args},
    names,
};
use crate::script::consts;

type Table = &'static [(&'static str, u64)];

const PROT: &[Table] = &[consts::PROT];
const MAP: &[Table] = &[consts::MAP_TYPES, consts::MAP_BITS];
const MADV: &[Table] = &[consts::MADV];
const MREMAP: &[Table] = &[consts::MREMAP];
const MLOCK2: &[Table] = &[consts::MLOCK2];
const MCL: &[Table] = &[consts::MCL];
const MS: &[Table] = &[consts::MS];
const CLONE: &[Table] = &[names::CLONE];

/// Whether a call of this name creates a process or thread (its child may run before the
/// call returns).
pub(super) fn is_clone(name: &str) -> bool {
    matches!(name, "clone" | "clone3" | "fork" | "vfork")
}

/// Decodes the call `name(args)`.
pub(super) fn decode(name: &str, args: &str) -> Result<Op, String> {
    let d = Decoder { name };
    match name {
        "clone" => d.clone(args),
        "clone3" => d.clone3(args),
        "fork" => d.with(args, 0, |_| {
            Ok(Op::Clone {
                flags: names::SIGCHLD,
            })
        }),
        "vfork" => d.with(args, 0, |_| {
            Ok(Op::Clone {
                flags: names::VFORK_FLAGS,
            })
        }),
        "execve" => d.execve(args, 0),
        "execveat" => d.execve(args, 1),
        "exit_group" => d.with(args, 1, |v| {
            let code = args::signed(v[0]).map_err(|e| d.err(0, &e))?;
            Ok(Op::ExitGroup { code })
        }),
        _ => d.memory(args).unwrap_or_else(|| {
            Ok(Op::Other {
                name: name.to_string(),
            })
        }),
    }
}

/// Decodes a result: `0x7f...`, `0`, `1235`, `3</path>`, `-1 ENOMEM (...)`, `?`.
pub(super) fn result(s: &str) -> Result<Ret, String> {
    let s = s.trim_start();
    if s.starts_with('?') {
        return Ok(Ret::Unknown);
    }
    let len = s
        .bytes()
        .take_while(|&c| c.is_ascii_alphanumeric() || c == b'-')
        .count();
    let (token, rest) = s.split_at(len);
    if token == "-1" {
        let name = rest.split_whitespace().next().unwrap_or("");
        return match names::errno_number(name) {
            Some(e) => Ok(Ret::Err(e)),
            None if name.is_empty() => Ok(Ret::Val(u64::MAX)),
            None => Err(format!("unknown errno `{}`", super::line::excerpt(name))),
        };
    }
    args::number(token)
        .map(Ret::Val)
        .map_err(|e| format!("result: {e}"))
}

/// Decodes the arguments of one call, naming it in errors.
struct Decoder<'n> {
    name: &'n str,
}

impl Decoder<'_> {
    fn err(&self, i: usize, msg: &str) -> String {
        format!("{}: argument {}: {msg}", self.name, i + 1)
    }

    /// Splits `args`, checks there are `n`, and builds the op from them.
    fn with(
        &self,
        args: &str,
        n: usize,
        build: impl FnOnce(&[&str]) -> Result<Op, String>,
    ) -> Result<Op, String> {
        let split = self.split(args)?;
        let v = split.as_slice();
        if v.len() != n {
            return Err(format!(
                "{}: expected {n} arguments, found {}",
                self.name,
                v.len()
            ));
        }
        build(v)
    }

    fn split<'a>(&self, args: &'a str) -> Result<Args<'a>, String> {
        args::split(args).map_err(|e| format!("{}: {e}", self.name))
    }

    fn num(&self, v: &[&str], i: usize) -> Result<u64, String> {
        args::number(v[i]).map_err(|e| self.err(i, &e))
    }

    fn flags(&self, v: &[&str], i: usize, tables: &[Table]) -> Result<u64, String> {
        args::flags(v[i], tables).map_err(|e| self.err(i, &e))
    }

    /// The memory calls; `None` for any other name.
    fn memory(&self, args: &str) -> Option<Result<Op, String>> {
        let range = |v: &[&str]| Ok::<_, String>((self.num(v, 0)?, self.num(v, 1)?));
        Some(match self.name {
            "mmap" => self.mmap(args),
            "mremap" => self.mremap(args),
            "munmap" => self.with(args, 2, |v| {
                let (addr, len) = range(v)?;
                Ok(Op::Munmap { addr, len })
            }),
            "mprotect" | "pkey_mprotect" => {
                let n = if self.name == "mprotect" { 3 } else { 4 };
                self.with(args, n, |v| {
                    let (addr, len) = range(v)?;
                    let prot = self.flags(v, 2, PROT)?;
                    Ok(Op::Mprotect { addr, len, prot })
                })
            }
            "madvise" => self.with(args, 3, |v| {
                let (addr, len) = range(v)?;
                let advice = self.flags(v, 2, MADV)?;
                Ok(Op::Madvise { addr, len, advice })
            }),
            "brk" => self.with(args, 1, |v| {
                Ok(Op::Brk {
                    addr: self.num(v, 0)?,
                })
            }),
            "mlock" => self.with(args, 2, |v| {
                let (addr, len) = range(v)?;
                Ok(Op::Mlock { addr, len })
            }),
            "mlock2" => self.with(args, 3, |v| {
                let (addr, len) = range(v)?;
                let flags = self.flags(v, 2, MLOCK2)?;
                Ok(Op::Mlock2 { addr, len, flags })
            }),
            "munlock" => self.with(args, 2, |v| {
                let (addr, len) = range(v)?;
                Ok(Op::Munlock { addr, len })
            }),
            "mlockall" => self.with(args, 1, |v| {
                let flags = self.flags(v, 0, MCL)?;
                Ok(Op::Mlockall { flags })
            }),
            "munlockall" => self.with(args, 0, |_| Ok(Op::Munlockall)),
            "msync" => self.with(args, 3, |v| {
                let (addr, len) = range(v)?;
                let flags = self.flags(v, 2, MS)?;
                Ok(Op::Msync { addr, len, flags })
            }),
            _ => return None,
        })
    }

    fn mmap(&self, args: &str) -> Result<Op, String> {
        self.with(args, 6, |v| {
            let (fd, path) = args::fd(v[4]).map_err(|e| self.err(4, &e))?;
            Ok(Op::Mmap {
                addr: self.num(v, 0)?,
                len: self.num(v, 1)?,
                prot: self.flags(v, 2, PROT)?,
                flags: self.flags(v, 3, MAP)?,
                fd,
                path,
                off: self.num(v, 5)?,
            })
        })
    }

    fn mremap(&self, args: &str) -> Result<Op, String> {
        let split = self.split(args)?;
        let v = split.as_slice();
        if !(4..=5).contains(&v.len()) {
            return Err(format!(
                "mremap: expected 4 or 5 arguments, found {}",
                v.len()
            ));
        }
        Ok(Op::Mremap {
            old_addr: self.num(v, 0)?,
            old_len: self.num(v, 1)?,
            new_len: self.num(v, 2)?,
            flags: self.flags(v, 3, MREMAP)?,
            new_addr: if v.len() == 5 {
                Some(self.num(v, 4)?)
            } else {
                None
            },
        })
    }

    /// `clone(child_stack=..., flags=..., ...)`, or `-X raw`'s `clone(0x1200011, ...)`.
    fn clone(&self, args: &str) -> Result<Op, String> {
        let split = self.split(args)?;
        let v = split.as_slice();
        let (i, text) = match v.iter().position(|a| a.starts_with("flags=")) {
            Some(i) => (i, &v[i]["flags=".len()..]),
            None if !v.is_empty() && !v[0].contains('=') => (0, v[0]),
            None => return Err("clone: no `flags=` argument".into()),
        };
        let flags = args::flags(text, CLONE).map_err(|e| self.err(i, &e))?;
        Ok(Op::Clone { flags })
    }

    /// `clone3({flags=..., exit_signal=..., ...} => {parent_tid=[N]}, size)`.
    fn clone3(&self, args: &str) -> Result<Op, String> {
        let split = self.split(args)?;
        let v = split.as_slice();
        let first = v.first().copied().unwrap_or("");
        let inner = first
            .strip_prefix('{')
            .and_then(|s| s.find('}').map(|end| &s[..end]))
            .ok_or_else(|| self.err(0, "expected `{flags=...}`"))?;
        let fields = self.split(inner)?;
        let field = |key: &str| {
            fields
                .as_slice()
                .iter()
                .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
        };
        let flags = match field("flags") {
            Some(text) => args::flags(text, CLONE).map_err(|e| self.err(0, &e))?,
            None => 0,
        };
        let signal = match field("exit_signal") {
            Some(text) => args::flags(text, CLONE).map_err(|e| self.err(0, &e))?,
            None => 0,
        };
        Ok(Op::Clone {
            flags: flags | (signal & 0xff),
        })
    }

    /// `execve(path, argv, envp)`, or `execveat(dirfd, path, ...)` with `at` = 1.
    fn execve(&self, args: &str, at: usize) -> Result<Op, String> {
        let split = self.split(args)?;
        let path = split
            .as_slice()
            .get(at)
            .ok_or_else(|| self.err(at, "missing path"))?;
        Ok(Op::Execve {
            path: args::string(path),
        })
    }
}
