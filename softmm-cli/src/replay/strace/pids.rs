//! Which process a line belongs to, for logs where some lines have no pid.
//!
//! With `-f -o FILE` every line has its pid and [`Pids::resolve`] returns it untouched (the
//! first branch, no lookup). Without `-f`, no line has one and all of them are pid 0, "the
//! first process". With `-f` to stderr, strace writes `[pid N]` only while several processes
//! are traced, so the first process is pid-less at first and `[pid N]` later; this module
//! recognises N and maps it to 0 as well:
//!
//! - a pid that a traced clone returned is a child, never the first process;
//! - a pid that resumes the call the first process left unfinished is the first process;
//! - while the first process is inside `clone`/`fork`/`vfork`, an unknown pid is the new
//!   child (it runs before the call returns);
//! - otherwise the first unknown pid is the first process.
//!
//! Later pid-less lines belong to the only process still traced: the one live pid when the
//! exits seen leave exactly one, else 0.

use std::collections::HashSet;

/// What [`Pids::resolve`] needs to know about the line and the unfinished calls.
pub(super) struct Hint<'a> {
    /// The call a `<... name resumed>` line completes, if the line is one.
    pub resumes: Option<&'a str>,
    /// The call that pid 0 left unfinished, if any.
    pub first_pending: Option<&'a str>,
    /// Whether the line's own pid has an unfinished call.
    pub own_pending: bool,
}

/// Whether an unknown pid is the first process (module doc).
fn is_first(hint: &Hint<'_>) -> bool {
    if hint.own_pending {
        return false;
    }
    match (hint.resumes, hint.first_pending) {
        (Some(name), Some(pending)) => name == pending,
        (None, Some(pending)) => !super::ops::is_clone(pending),
        (_, None) => true,
    }
}

/// The pid bookkeeping of one log.
#[derive(Debug, Default)]
pub(super) struct Pids {
    /// A line without a pid was seen: pid 0 is in use.
    bare: bool,
    /// The real pid of the first process, once recognised.
    first: Option<u64>,
    /// Pids that traced clones returned.
    children: HashSet<u64>,
    /// Processes alive (only kept once `bare` is set).
    live: HashSet<u64>,
}

impl Pids {
    /// The pid a line is reported under.
    pub(super) fn resolve<'a>(&mut self, raw: Option<u64>, hint: impl FnOnce() -> Hint<'a>) -> u64 {
        let Some(pid) = raw else {
            return self.bare_pid();
        };
        if !self.bare {
            return pid;
        }
        if self.first == Some(pid) {
            return 0;
        }
        let known = self.children.contains(&pid) || self.live.contains(&pid);
        if self.first.is_none() && !known && is_first(&hint()) {
            self.first = Some(pid);
            self.live.insert(0);
            return 0;
        }
        self.live.insert(pid);
        pid
    }

    fn bare_pid(&mut self) -> u64 {
        if !self.bare {
            self.bare = true;
            self.live.insert(0);
        }
        match (self.first, self.live.len()) {
            (Some(_), 1) => self.live.iter().next().copied().unwrap_or(0),
            _ => 0,
        }
    }

    /// The pid a pid named inside a line (not its prefix) is reported under.
    pub(super) fn known(&self, raw: u64) -> u64 {
        if self.first == Some(raw) { 0 } else { raw }
    }

    /// A clone returned `child`.
    pub(super) fn cloned(&mut self, child: u64) {
        self.children.insert(child);
        if self.bare {
            self.live.insert(child);
        }
    }

    /// `pid` exited or was killed.
    pub(super) fn gone(&mut self, pid: u64) {
        if self.bare {
            self.live.remove(&pid);
        }
    }
}
