//! The streaming parser: one line in, at most one record or error out.
//!
//! The state between lines is small: the unfinished calls, one per pid (a thread is in at
//! most one system call), and the pid bookkeeping of [`pids`](super::pids). A `resumed` line
//! takes its pid's unfinished head, joins the two argument texts and decodes the whole call,
//! so a split call gives exactly the record an unsplit one would, at the `resumed` line.
//!
//! Accounting (rule 1 of the [module doc](super)): after every [`Parser::feed`],
//! `lines == records + errors + ignored + resumed + pending`, where `resumed` counts heads
//! consumed by a `resumed` line and `pending` the lines still waiting for a later one (heads,
//! and a line cut by strace's note, whose text goes into the next line's outcome and which
//! then counts as ignored); [`Parser::finish`] turns the pending ones into errors.

use std::collections::HashMap;

use super::{
    Event, Op, ParseError, Record, Ret,
    line::{self, Body},
    ops,
    pids::{Hint, Pids},
};

/// What a [`Parser`] has seen so far; see the module doc for how the counts add up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Lines fed.
    pub lines: usize,
    /// Records returned.
    pub records: usize,
    /// Errors returned (by [`Parser::feed`] and [`Parser::finish`]).
    pub errors: usize,
    /// Blank lines and strace's notes.
    pub ignored: usize,
    /// Unfinished heads that a `resumed` line consumed.
    pub resumed: usize,
}

/// An unfinished call's first half.
#[derive(Debug, Default)]
struct Pending {
    line: usize,
    name: String,
    head: String,
}

/// A streaming parser of `strace -f -y` logs: feed it lines in order, then call
/// [`finish`](Parser::finish). [`parse`](super::parse) is the same over a whole text.
#[derive(Debug, Default)]
pub struct Parser {
    /// Unfinished calls by (resolved) pid.
    pending: HashMap<u64, Pending>,
    /// Emptied `Pending`s, reused so that split calls allocate nothing once warm.
    spare: Vec<Pending>,
    pids: Pids,
    stats: Stats,
    /// The buffer a split call's argument text is joined in.
    joined: String,
    /// The start of a line that strace cut with one of its notes (see [`note_cut`]), and
    /// that line's number.
    carry: String,
    carry_line: usize,
}

/// Where strace's `strace: Process N attached` note starts, when it cut a line in two: with
/// `-f` to stderr and without `-q`, strace prints it in the middle of the parent's line
/// (`vfork(strace: Process 5 attached`) and the line goes on after the newline
/// (` <unfinished ...>`).
fn note_cut(line: &str) -> Option<usize> {
    if !line.ends_with(" attached") {
        return None;
    }
    let at = line.rfind("strace: Process ")?;
    (!line[..at].trim().is_empty()).then_some(at)
}

impl Parser {
    /// A parser at the start of a log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses line number `line_no` (1-based): a record, an error (about this line, or about
    /// an earlier unfinished call this line shows will never complete), or `None` (blank,
    /// ignored, or the first half of a split call).
    pub fn feed(&mut self, line_no: usize, line: &str) -> Option<Result<Record, ParseError>> {
        self.stats.lines += 1;
        if let Some(at) = note_cut(line) {
            if self.carry.is_empty() {
                self.carry_line = line_no;
            } else {
                self.stats.ignored += 1;
            }
            self.carry.push_str(&line[..at]);
            return None;
        }
        let out = if self.carry.is_empty() {
            self.step(line_no, line)
        } else {
            // The cut line's text is part of this line's outcome.
            self.stats.ignored += 1;
            let mut whole = std::mem::take(&mut self.carry);
            whole.push_str(line);
            let out = self.step(line_no, &whole);
            whole.clear();
            self.carry = whole;
            out
        };
        match &out {
            Some(Ok(_)) => self.stats.records += 1,
            Some(Err(_)) => self.stats.errors += 1,
            None => {}
        }
        out
    }

    /// Ends the log: every call still unfinished becomes an error at its line, in line order.
    pub fn finish(&mut self) -> Vec<ParseError> {
        let mut left: Vec<ParseError> = self
            .pending
            .drain()
            .map(|(pid, p)| ParseError {
                line: p.line,
                message: format!("{}: unfinished call of pid {pid} never resumed", p.name),
            })
            .collect();
        if !self.carry.is_empty() {
            self.carry.clear();
            left.push(ParseError {
                line: self.carry_line,
                message: "line cut by `strace: Process N attached` and never continued".into(),
            });
        }
        left.sort_by_key(|e| e.line);
        self.stats.errors += left.len();
        left
    }

    /// The counts so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// How many lines wait for a later one: unfinished calls, and a line that strace cut.
    pub fn pending(&self) -> usize {
        self.pending.len() + usize::from(!self.carry.is_empty())
    }

    /// The line of the oldest call still unfinished (or of a line strace cut), if any: every
    /// call that starts before it has been returned as a record or is still to come at a
    /// later line, so a consumer that needs every call begun before line `n` has them once
    /// this is above `n`.
    pub fn oldest_pending(&self) -> Option<usize> {
        let cut = (!self.carry.is_empty()).then_some(self.carry_line);
        self.pending.values().map(|p| p.line).chain(cut).min()
    }

    fn step(&mut self, n: usize, text: &str) -> Option<Result<Record, ParseError>> {
        let (raw, body) = match line::split(text) {
            Ok(split) => split,
            Err(message) => return Some(Err(ParseError { line: n, message })),
        };
        if matches!(body, Body::Blank | Body::Ignored) {
            self.stats.ignored += 1;
            return None;
        }
        let pending = &self.pending;
        let pid = self.pids.resolve(raw, || Hint {
            resumes: match body {
                Body::Resumed { name, .. } => Some(name),
                _ => None,
            },
            first_pending: pending.get(&0).map(|p| p.name.as_str()),
            own_pending: raw.is_some_and(|r| pending.contains_key(&r)),
        });
        let mut start = n;
        let event = match body {
            Body::Blank | Body::Ignored => return None,
            Body::Call { name, args, ret } => self.call(name, args, ret),
            Body::Unfinished { name, head } => return self.unfinished(n, pid, name, head),
            Body::Resumed { name, tail, ret } => self.resumed(pid, name, tail, ret, &mut start),
            Body::Superseded(from) => {
                self.stats.ignored += 1;
                return self.supersede(pid, from);
            }
            Body::Exited(code) => {
                self.pids.gone(pid);
                Ok(Event::Exited { code })
            }
            Body::Killed(signal) => {
                self.pids.gone(pid);
                Ok(Event::Killed {
                    signal: signal.to_string(),
                })
            }
            Body::Signal(name) => Ok(Event::Signal {
                name: name.to_string(),
            }),
        };
        Some(match event {
            Ok(event) => Ok(Record {
                line: n,
                start,
                pid,
                event,
            }),
            Err(message) => Err(ParseError { line: n, message }),
        })
    }

    fn call(&mut self, name: &str, args: &str, ret: &str) -> Result<Event, String> {
        let op = ops::decode(name, args)?;
        let ret = ops::result(ret).map_err(|e| format!("{name}: {e}"))?;
        if let (Op::Clone { .. }, Ret::Val(child)) = (&op, ret) {
            self.pids.cloned(child);
        }
        Ok(Event::Call { op, ret })
    }

    fn unfinished(
        &mut self,
        n: usize,
        pid: u64,
        name: &str,
        head: &str,
    ) -> Option<Result<Record, ParseError>> {
        let mut p = self.spare.pop().unwrap_or_default();
        p.line = n;
        p.name.clear();
        p.name.push_str(name);
        p.head.clear();
        p.head.push_str(head);
        let old = self.pending.insert(pid, p)?;
        let message = format!(
            "{}: unfinished call never resumed (pid {pid} started another at line {n})",
            old.name
        );
        let line = old.line;
        self.spare.push(old);
        Some(Err(ParseError { line, message }))
    }

    /// The second half of `pid`'s unfinished call; `start` becomes the head's line.
    fn resumed(
        &mut self,
        pid: u64,
        name: &str,
        tail: &str,
        ret: &str,
        start: &mut usize,
    ) -> Result<Event, String> {
        let Some(head) = self.pending.remove(&pid) else {
            return Err(format!(
                "<... {name} resumed> without an unfinished call of pid {pid}"
            ));
        };
        self.stats.resumed += 1;
        *start = head.line;
        let out = if head.name == name {
            let mut joined = std::mem::take(&mut self.joined);
            joined.clear();
            joined.push_str(&head.head);
            joined.push_str(tail);
            let out = self.call(name, &joined, ret);
            self.joined = joined;
            out
        } else {
            Err(format!(
                "<... {name} resumed> but the unfinished call of pid {pid} (line {}) is {}",
                head.line, head.name
            ))
        };
        self.spare.push(head);
        out
    }

    /// `+++ superseded by execve in pid FROM +++` on `pid`: thread FROM's unfinished `execve`
    /// completes under `pid`, the id it took over.
    fn supersede(&mut self, pid: u64, from: u64) -> Option<Result<Record, ParseError>> {
        let from = self.pids.known(from);
        let moved = self.pending.remove(&from)?;
        let old = self.pending.insert(pid, moved)?;
        let message = format!(
            "{}: unfinished call never resumed (pid {pid} superseded by execve)",
            old.name
        );
        let line = old.line;
        self.spare.push(old);
        Some(Err(ParseError { line, message }))
    }
}
