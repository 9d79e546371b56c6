//! Driving a replay: parse a trace, apply its records, compare with the maps files that
//! capture-trace.sh saved next to it.

use std::path::Path;

use indicatif::ProgressBar;
use serde::Serialize;
use softmm::Config;

use super::{
    engine::{Replay, Summary},
    maps_cmp::{PageCompare, compare, parse_maps},
    strace::{ParseError, Parser, Record},
};

/// A finished replay.
pub struct Outcome {
    /// The replay (its machine and snapshots).
    pub replay: Replay,
    /// Lines that could not be parsed (skipped).
    pub malformed: Vec<ParseError>,
    /// Lines read.
    pub lines: usize,
}

/// Parse `text`; with `strict`, the first malformed line is an error.
pub fn parse_trace(
    text: &str,
    strict: bool,
    progress: &ProgressBar,
) -> Result<(Vec<Record>, Vec<ParseError>, usize), ParseError> {
    let mut parser = Parser::new();
    let mut records = Vec::new();
    let mut malformed = Vec::new();
    let mut lines = 0;
    for (i, line) in text.lines().enumerate() {
        lines = i + 1;
        if i % 4096 == 0 {
            progress.set_position(i as u64);
        }
        match parser.feed(i + 1, line) {
            Some(Ok(r)) => records.push(r),
            Some(Err(e)) if strict => return Err(e),
            Some(Err(e)) => malformed.push(e),
            None => {}
        }
    }
    for e in parser.finish() {
        if strict {
            return Err(e);
        }
        malformed.push(e);
    }
    Ok((records, malformed, lines))
}

/// Records parsed per message from the parsing thread.
const CHUNK: usize = 4096;

/// What the parsing thread sends.
enum Parsed {
    /// Records, and the line below which every call that started has been sent.
    Records(Vec<Record>, usize),
    /// The end: malformed lines and the line count (or the first error with `strict`).
    End(Result<(Vec<ParseError>, usize), ParseError>),
}

/// Replay `text` on a fresh machine with `config`. The trace is parsed in a second
/// thread while the first replays what is parsed so far (the engine looks ahead only as
/// far as the oldest call still unfinished).
pub fn replay_text(
    text: &str,
    config: Config,
    strict: bool,
    progress: &ProgressBar,
) -> Result<Outcome, ParseError> {
    replay_against(text, config, strict, progress, &[])
}

/// [`replay_text`], with Linux's maps of some processes at their dumps (`(pid, text)`, from
/// [`dump_files`]): each dump is placed among the calls in flight while it was read so
/// that it agrees with Linux's where some order allows.
pub fn replay_against(
    text: &str,
    config: Config,
    strict: bool,
    progress: &ProgressBar,
    dumps: &[(u64, String)],
) -> Result<Outcome, ParseError> {
    let mut replay = Replay::new(config).map_err(|e| ParseError {
        line: 0,
        message: format!("cannot create the machine: {}", e.message()),
    })?;
    for (pid, maps) in dumps {
        replay.expect_dump(*pid, maps);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<Parsed>(8);
    let end = std::thread::scope(|s| {
        s.spawn(move || {
            let mut parser = Parser::new();
            let mut chunk = Vec::with_capacity(CHUNK);
            let mut malformed = Vec::new();
            let mut lines = 0;
            for (i, line) in text.lines().enumerate() {
                lines = i + 1;
                match parser.feed(i + 1, line) {
                    Some(Ok(r)) => {
                        chunk.push(r);
                        if chunk.len() == CHUNK {
                            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                            let below = parser.oldest_pending().unwrap_or(usize::MAX);
                            if tx.send(Parsed::Records(full, below)).is_err() {
                                return;
                            }
                        }
                    }
                    Some(Err(e)) if strict => {
                        let _ = tx.send(Parsed::End(Err(e)));
                        return;
                    }
                    Some(Err(e)) => malformed.push(e),
                    None => {}
                }
            }
            let _ = tx.send(Parsed::Records(chunk, usize::MAX));
            let left = parser.finish();
            let end = match (strict, left.first()) {
                (true, Some(e)) => Err(e.clone()),
                _ => {
                    malformed.extend(left);
                    Ok((malformed, lines))
                }
            };
            let _ = tx.send(Parsed::End(end));
        });
        let mut done = 0u64;
        loop {
            match rx.recv() {
                Ok(Parsed::Records(rs, below)) => {
                    done += rs.len() as u64;
                    for r in rs {
                        replay.push(r);
                    }
                    replay.release(below);
                    progress.set_position(done);
                }
                Ok(Parsed::End(end)) => return end,
                Err(_) => {
                    return Err(ParseError {
                        line: 0,
                        message: "the parser stopped".into(),
                    });
                }
            }
        }
    });
    let (malformed, lines) = end?;
    replay.finish(lines);
    progress.finish_and_clear();
    Ok(Outcome {
        replay,
        malformed,
        lines,
    })
}

/// One process's maps compared with Linux's.
#[derive(Clone, Debug, Serialize)]
pub struct MapsCompare {
    /// The pid (the `maps.PID` file).
    pub pid: u64,
    /// The comparison; `None` when softmm has no snapshot of that process.
    pub result: Option<PageCompare>,
}

/// The `maps.PID` files next to `trace`, by pid.
pub fn maps_files(trace: &Path) -> Vec<(u64, std::path::PathBuf)> {
    let dir = trace.parent().unwrap_or(Path::new("."));
    let mut out: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let pid = name.strip_prefix("maps.")?.parse().ok()?;
            Some((pid, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// The `maps.PID` files next to `trace`, read (those that cannot be read are left out).
pub fn dump_files(trace: &Path) -> Vec<(u64, String)> {
    maps_files(trace)
        .into_iter()
        .filter_map(|(pid, path)| Some((pid, std::fs::read_to_string(path).ok()?)))
        .collect()
}

/// Compare the snapshot of `pid` with the Linux maps text `linux`.
pub fn compare_pid(out: &Outcome, pid: u64, linux: &str) -> Result<MapsCompare, String> {
    let linux = parse_maps(linux)?;
    let Some(snap) = out.replay.snapshot(pid) else {
        return Ok(MapsCompare { pid, result: None });
    };
    let ours = parse_maps(&snap.maps)?;
    Ok(MapsCompare {
        pid,
        result: Some(compare(&ours, &linux, &snap.known)),
    })
}

/// The JSON summary of a replay.
#[derive(Clone, Debug, Serialize)]
pub struct Report<'a> {
    /// The trace file.
    pub trace: String,
    /// Lines read.
    pub lines: usize,
    /// Malformed lines (skipped).
    pub malformed: usize,
    /// The replay's counts.
    #[serde(flatten)]
    pub summary: &'a Summary,
    /// Replay speed, traced calls per second (records per second of the replay step).
    pub calls_per_second: f64,
    /// Maps comparisons made.
    pub maps: Vec<MapsCompare>,
}
