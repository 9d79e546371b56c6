//! Tests of the strace parser, grouped by behaviour: the line forms strace writes (every
//! literal is real strace 6.1 output unless a comment says otherwise), split calls, pids,
//! the shared traces, robustness (proptest) and a throughput measurement.

mod bench;
mod forms;
mod props;
mod split;
mod traces;

use super::{Event, Op, ParseError, Parsed, Parser, Record, Ret, parse};

/// The only record of a one-line log; panics with the errors otherwise.
#[track_caller]
fn one(line: &str) -> Record {
    let Parsed { records, errors } = parse(line);
    assert!(errors.is_empty(), "{line}\n  errors: {errors:?}");
    assert_eq!(records.len(), 1, "{line}\n  records: {records:?}");
    records.into_iter().next().unwrap()
}

/// The call and result of a one-line log.
#[track_caller]
fn call(line: &str) -> (Op, Ret) {
    match one(line).event {
        Event::Call { op, ret } => (op, ret),
        other => panic!("{line}: not a call: {other:?}"),
    }
}

/// The op of a one-line log.
#[track_caller]
fn op(line: &str) -> Op {
    call(line).0
}

/// The only error of a one-line log (no record).
#[track_caller]
fn error(line: &str) -> ParseError {
    let Parsed { records, errors } = parse(line);
    assert!(records.is_empty(), "{line}\n  records: {records:?}");
    assert_eq!(errors.len(), 1, "{line}\n  errors: {errors:?}");
    errors.into_iter().next().unwrap()
}

/// Checks rule 1 of the module doc on a finished parse of `text`: every line is a record,
/// an error, ignored or a consumed head, and no line has two outcomes.
#[track_caller]
fn assert_accounted(text: &str) -> Parsed {
    let mut parser = Parser::new();
    let mut parsed = Parsed::default();
    let mut lines = 0;
    for (i, line) in text.lines().enumerate() {
        lines += 1;
        match parser.feed(i + 1, line) {
            Some(Ok(r)) => parsed.records.push(r),
            Some(Err(e)) => parsed.errors.push(e),
            None => {}
        }
        let s = parser.stats();
        assert_eq!(
            s.lines,
            s.records + s.errors + s.ignored + s.resumed + parser.pending(),
            "after line {}: {s:?}",
            i + 1
        );
    }
    parsed.errors.extend(parser.finish());
    let s = parser.stats();
    assert_eq!(s.lines, lines);
    assert_eq!(parser.pending(), 0);
    assert_eq!(
        s.lines,
        s.records + s.errors + s.ignored + s.resumed,
        "{s:?}"
    );
    assert_eq!(
        (s.records, s.errors),
        (parsed.records.len(), parsed.errors.len())
    );
    let mut seen: Vec<usize> = parsed.records.iter().map(|r| r.line).collect();
    seen.extend(parsed.errors.iter().map(|e| e.line));
    seen.sort_unstable();
    let n = seen.len();
    seen.dedup();
    assert_eq!(seen.len(), n, "a line has two outcomes");
    assert!(seen.iter().all(|&l| (1..=lines).contains(&l)));
    parsed
}
