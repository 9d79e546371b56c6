//! What the fuzz targets (`fuzz/`, `scripts/fuzz.sh`) run, and the corpus regression test
//! with them: each entry point takes the bytes a command would read from a file and does
//! what the command does with them, on a small machine, returning what it would report.
//!
//! None of them may panic, abort, hang or allocate without a bound, whatever the bytes;
//! the fuzzer checks that, and `tests/fuzz_corpus.rs` replays the kept corpus on stable.

use std::io;

use indicatif::ProgressBar;
use softmm::{Config, Machine, abi::*};

use crate::{
    config::{Format, parse_config},
    input::{SCRIPT, TRACE, read_from},
    replay::{engine::Summary as ReplaySummary, run::replay_text},
    script::{SoftmmBackend, Summary, parse_script, run_script},
};

/// The machine of a fuzzed script or trace: 64 MiB of frames, so a script that touches
/// much memory runs out of frames instead of host memory.
pub fn small_config() -> Config {
    Config {
        phys_mem_bytes: 64 << 20,
        ..Config::default()
    }
}

/// `softmm run` on `data`: the summary, or the message of a malformed script (exit 2).
pub fn script(data: &[u8]) -> Result<Summary, String> {
    let text = read_from(data, SCRIPT, false).map_err(|e| e.to_string())?;
    let script = parse_script(&text.text).map_err(|e| e.to_string())?;
    let mut backend = SoftmmBackend::new(small_config()).map_err(|e| e.message().to_string())?;
    run_script(&script, &mut backend, true, &mut io::sink()).map_err(|e| e.to_string())
}

/// `softmm replay` (not strict) on `data`: the replay's summary and the number of lines
/// skipped as malformed, or why the trace could not be read.
pub fn trace(data: &[u8]) -> Result<(ReplaySummary, usize), String> {
    let text = read_from(data, TRACE, true).map_err(|e| e.to_string())?;
    let out = replay_text(&text.text, small_config(), false, &ProgressBar::hidden())
        .map_err(|e| e.to_string())?;
    let skipped = out.malformed.len() + text.invalid.len();
    Ok((out.replay.summary().clone(), skipped))
}

/// A `--config` file in either format: the configuration, checked by building a machine
/// with it and making one mapping and one write there; `Err` when neither format parses
/// or the machine refuses the configuration.
pub fn config(data: &[u8]) -> Result<Config, String> {
    let text = read_from(data, crate::input::SMALL, false).map_err(|e| e.to_string())?;
    let config = parse_config(&text.text, Format::Toml)
        .or_else(|_| parse_config(&text.text, Format::Json))?;
    crate::config::check(&config)?;
    let m = Machine::new(config.clone()).map_err(|e| e.message().to_string())?;
    let pid = m.spawn(None).map_err(|e| e.message().to_string())?;
    let flags = MAP_PRIVATE | MAP_ANONYMOUS;
    let a = m
        .mmap(pid, 0, 8192, PROT_READ | PROT_WRITE, flags, -1, 0)
        .map_err(|e| e.message().to_string())?;
    let cpu = m.cpu(pid).map_err(|e| e.message().to_string())?;
    cpu.write(a + 4090, b"crosses a page")
        .map_err(|f| format!("{f:?}"))?;
    Ok(config)
}
