//! `softmm run [-q] SCRIPT`: run a script against a fresh softmm machine.
//!
//! Exit status: 0 when every expectation held, 1 when one failed, 2 when the script is
//! malformed (`SCRIPT:LINE:COL: message` on stderr, nothing run) or cannot be read.

use std::{
    io::{self, Write},
    path::PathBuf,
    process::ExitCode,
};

use softmm::Config;

use crate::{
    input::{SCRIPT, read_text},
    script::{SoftmmBackend, parse_script, run_script},
};

/// Arguments of `softmm run`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
The script format is docs/scripts.md in the softmm repository.

Limits: a script of at most 16 MiB, lines of at most 1 MiB, UTF-8, expressions at most 256
levels deep; peek reads at most 16 MiB and count at most 1 GiB per call; pwrite64 counts are
capped at 0x7ffff000 (EFAULT past the buffer); at most 64 processes alive (fork: EAGAIN).

Exit status: 0 every expectation held; 1 an expectation failed; 2 the script is malformed
(FILE:LINE:COL: message, nothing run), cannot be read or breaks a limit (I/O errors are 2
in every softmm command).")]
pub struct RunArgs {
    /// Print only FAIL lines (with the failing call) and the summary.
    #[arg(short, long)]
    pub quiet: bool,
    /// The script to run (format: docs/scripts.md).
    pub script: PathBuf,
}

/// Runs the command; the exit status is the run's.
pub fn main(args: &RunArgs) -> ExitCode {
    let shown = args.script.display();
    let text = match read_text(&args.script, SCRIPT, false) {
        Ok(t) => t.text,
        Err(e) => {
            // A place in the script reads as a parse error; the whole file as softmm's.
            let prefix = if e.is_located() { "" } else { "softmm: " };
            eprintln!("{prefix}{}", e.at(&shown.to_string()));
            return ExitCode::from(2);
        }
    };
    let script = match parse_script(&text) {
        Ok(script) => script,
        Err(e) => {
            eprintln!("{shown}:{e}");
            return ExitCode::from(2);
        }
    };
    let mut backend = match SoftmmBackend::new(Config::default()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("softmm: cannot create the machine: {}", e.message());
            return ExitCode::from(2);
        }
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match run_script(&script, &mut backend, args.quiet, &mut out).and_then(|s| {
        out.flush()?;
        Ok(s)
    }) {
        Ok(summary) => ExitCode::from(summary.exit_code()),
        Err(e) => {
            eprintln!("softmm: writing the output: {e}");
            ExitCode::from(2)
        }
    }
}
