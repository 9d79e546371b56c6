//! The executor: runs a parsed script line by line against a [`Backend`] and prints what
//! linux-run prints.
//!
//! For each line: find the process (`[pid P] ` prefixes the echo of lines that name one),
//! evaluate the arguments, resolve them to a [`super::backend::Call`], run it, echo
//! `CALL(ARGS) = RESULT` in strace form, and check the expectation. A failed expectation adds
//! `FAIL line N: expected X, got Y`; a line that cannot run at all (an unbound variable, an
//! unknown pid, an unsupported call) prints `... = ?` and `FAIL line N: why` and counts as
//! failed whatever it expected. Quiet mode prints only the lines that fail. The run ends with
//! the [`Summary`] line `N calls, E expectations, F failed`.
//!
//! The executor owns the process table: pid 1 exists from the start, `fork`'s result adds the
//! child, `exit_group` ends a process (later lines in it get `-1 ESRCH`). At most
//! [`MAX_PROCS`] processes are alive at once: a `fork` beyond gets `-1 EAGAIN`.

use std::{
    collections::BTreeMap,
    fmt,
    io::{self, Write},
};

use super::{
    ast::{CallName, Line, Script, Value},
    backend::{Backend, Call, Outcome, Pid},
    check::check,
    eval::{EvalError, Vars},
    format::{fmt_arg, fmt_result},
    resolve::resolve,
};

/// `ESRCH`: the errno of a call in a process that has exited.
const ESRCH: i32 = 3;

/// `EAGAIN`: the errno of a `fork` beyond [`MAX_PROCS`] (as Linux's at `RLIMIT_NPROC`).
const EAGAIN: i32 = 11;

/// The most processes a script may have alive at once. Each fork copies the address
/// space's VMAs and page tables, so without a bound a script of many `fork()` lines would
/// make the runner grow without limit.
pub const MAX_PROCS: usize = 64;

/// Counts of a run; displayed as the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Lines run (every call line of the script).
    pub calls: usize,
    /// Lines with an expectation.
    pub expectations: usize,
    /// Lines that failed: a wrong result, or a line that could not run.
    pub failed: usize,
}

impl Summary {
    /// The exit status: 0 when nothing failed, else 1.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.failed > 0)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} calls, {} expectations, {} failed",
            self.calls, self.expectations, self.failed
        )
    }
}

/// Where a line runs.
enum Target {
    /// In this process, with this echo prefix.
    Run(Pid, String),
    /// The PROC prefix names no process.
    Unknown(Pid),
}

/// Whether a script process can still run calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProcState {
    Alive,
    Exited,
}

/// Runs `script` against `backend`, printing to `out`; `quiet` prints only failures and the
/// summary. Returns the counts (the summary line is already printed).
pub fn run_script<B: Backend + ?Sized, W: Write>(
    script: &Script,
    backend: &mut B,
    quiet: bool,
    out: &mut W,
) -> io::Result<Summary> {
    let mut runner = Runner {
        backend,
        out,
        quiet,
        vars: Vars::new(),
        procs: BTreeMap::from([(1, ProcState::Alive)]),
        summary: Summary::default(),
    };
    for line in &script.lines {
        runner.line(line)?;
    }
    writeln!(runner.out, "{}", runner.summary)?;
    Ok(runner.summary)
}

struct Runner<'a, B: ?Sized, W> {
    backend: &'a mut B,
    out: &'a mut W,
    quiet: bool,
    vars: Vars,
    procs: BTreeMap<Pid, ProcState>,
    summary: Summary,
}

impl<B: Backend + ?Sized, W: Write> Runner<'_, B, W> {
    fn line(&mut self, line: &Line) -> io::Result<()> {
        self.summary.calls += 1;
        if line.expect.is_some() {
            self.summary.expectations += 1;
        }
        let name = line.call.name();
        let (pid, prefix) = match self.process(line) {
            Ok(Target::Run(pid, prefix)) => (pid, prefix),
            Ok(Target::Unknown(pid)) => {
                writeln!(
                    self.out,
                    "[pid {pid}] {name}(...) = -1 ESRCH (No such process)"
                )?;
                return self.fail(line, &format!("no process with pid {pid}"));
            }
            Err(e) => return self.not_evaluated(line, &e),
        };
        let args = match line
            .args
            .iter()
            .map(|a| self.vars.eval(a))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(args) => args,
            Err(e) => return self.not_evaluated(line, &e),
        };
        let res = self.execute(line, pid, &args);
        let echo = format!("{prefix}{name}({})", echo_args(line, &args));
        self.report(line, &echo, &res)
    }

    /// The process a line runs in, and its echo prefix.
    fn process(&self, line: &Line) -> Result<Target, EvalError> {
        let Some(proc) = &line.proc else {
            return Ok(Target::Run(1, String::new()));
        };
        let pid = self.vars.num(proc)?;
        if self.procs.contains_key(&pid) {
            Ok(Target::Run(pid, format!("[pid {pid}] ")))
        } else {
            Ok(Target::Unknown(pid))
        }
    }

    /// Runs the call, keeping the process table up to date.
    fn execute(&mut self, line: &Line, pid: Pid, args: &[Value]) -> Outcome {
        if self.procs.get(&pid) == Some(&ProcState::Exited) {
            return Outcome::Err(ESRCH);
        }
        let alive = self.procs.values().filter(|&&p| p == ProcState::Alive);
        if line.call == CallName::Fork && alive.count() >= MAX_PROCS {
            return Outcome::Err(EAGAIN);
        }
        let call = match resolve(line.call, args) {
            Ok(call) => call,
            Err(msg) => return Outcome::Error(msg),
        };
        let res = self.backend.call(pid, &call);
        match (&call, &res) {
            (Call::Fork, Outcome::Int(child)) => {
                self.procs.insert(*child, ProcState::Alive);
            }
            (_, Outcome::Exit) => {
                self.procs.insert(pid, ProcState::Exited);
            }
            _ => {}
        }
        res
    }

    /// Prints the echo and checks the expectation.
    fn report(&mut self, line: &Line, echo: &str, res: &Outcome) -> io::Result<()> {
        let shown = fmt_result(line.call, res);
        match res {
            Outcome::Print(text) => {
                if !self.quiet {
                    writeln!(self.out, "{echo}")?;
                    self.out.write_all(text.as_bytes())?;
                }
                return Ok(());
            }
            Outcome::Error(msg) => {
                writeln!(self.out, "{echo} = ?")?;
                return self.fail(line, msg);
            }
            _ => {}
        }
        if !self.quiet {
            writeln!(self.out, "{echo} = {shown}")?;
        }
        let Some(expect) = &line.expect else {
            return Ok(());
        };
        if let Err(m) = check(line.call, expect, res, &mut self.vars) {
            if self.quiet {
                writeln!(self.out, "{echo} = {shown}")?;
            }
            let msg = format!("expected {}, got {}", m.expected, m.got);
            self.fail(line, &msg)?;
        }
        Ok(())
    }

    /// A line whose PROC or arguments could not be evaluated: echoed without them.
    fn not_evaluated(&mut self, line: &Line, e: &EvalError) -> io::Result<()> {
        let prefix = if line.proc.is_some() { "[pid ?] " } else { "" };
        writeln!(self.out, "{prefix}{}(...) = ?", line.call.name())?;
        self.fail(line, &e.0)
    }

    fn fail(&mut self, line: &Line, msg: &str) -> io::Result<()> {
        self.summary.failed += 1;
        writeln!(self.out, "FAIL line {}: {msg}", line.no)
    }
}

/// The arguments as strace prints them.
fn echo_args(line: &Line, args: &[Value]) -> String {
    line.call
        .args()
        .iter()
        .zip(args)
        .map(|(spec, v)| fmt_arg(spec.kind, v))
        .collect::<Vec<_>>()
        .join(", ")
}
