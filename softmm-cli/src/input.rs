//! Reading the commands' text inputs (scripts, traces, configurations) within stated limits.
//!
//! Every input is read through [`read_text`], which never holds more than the input's limit
//! in memory, whatever the file is (a FIFO, `/dev/zero`, a file that grows while it is
//! read):
//! - at most [`Limits::max_bytes`] bytes in all ([`InputError::TooLarge`]);
//! - at most [`MAX_LINE`] bytes in one line, newline excluded ([`InputError::LineTooLong`]),
//!   checked while the line is read, so an endless line stops at the limit;
//! - UTF-8: an invalid byte is an error at its line and column ([`InputError::Utf8`]), or,
//!   when the caller skips bad lines (a non-strict replay), that line is read as empty and
//!   reported in [`Text::invalid`].
//!
//! Columns count characters from 1, as the script parser counts them.

use std::{
    fs::File,
    io::{self, BufRead, BufReader, Read},
    path::Path,
};

/// The longest line any input may have, in bytes (newline excluded).
pub const MAX_LINE: usize = 1 << 20;

/// The size limit of one kind of input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes the whole input may hold.
    pub max_bytes: u64,
}

/// Scripts (`softmm run`): 16 MiB.
pub const SCRIPT: Limits = Limits {
    max_bytes: 16 << 20,
};

/// Traces (`softmm replay`): 1 GiB.
pub const TRACE: Limits = Limits { max_bytes: 1 << 30 };

/// Configuration files (`--config`) and Linux's `maps.PID` files: 1 MiB.
pub const SMALL: Limits = Limits { max_bytes: 1 << 20 };

/// Why an input could not be read. Displayed as `message` or `LINE[:COL]: message`, to
/// follow the file name (`FILE:LINE:COL: message`).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be opened or read.
    #[error("{0}")]
    Io(String),
    /// The input is longer than its limit.
    #[error("input larger than {max} bytes (the limit for this input)")]
    TooLarge {
        /// The limit.
        max: u64,
    },
    /// A line is longer than [`MAX_LINE`].
    #[error("{line}: line longer than {max} bytes", max = MAX_LINE)]
    LineTooLong {
        /// 1-based line number.
        line: usize,
    },
    /// A byte sequence that is not UTF-8.
    #[error("{line}:{col}: invalid UTF-8")]
    Utf8 {
        /// 1-based line number.
        line: usize,
        /// 1-based column (characters before the bad byte, plus one).
        col: usize,
    },
}

impl InputError {
    /// The message after the file name `shown`: `FILE: message` for the whole file,
    /// `FILE:LINE[:COL]: message` for a place in it.
    pub fn at(&self, shown: &str) -> String {
        if self.is_located() {
            format!("{shown}:{self}")
        } else {
            format!("{shown}: {self}")
        }
    }

    /// Whether the error names a line (then it reads as a parse error, `FILE:LINE...`).
    pub fn is_located(&self) -> bool {
        matches!(
            self,
            InputError::LineTooLong { .. } | InputError::Utf8 { .. }
        )
    }
}

/// A line read as empty because it was not UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidLine {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column of the first bad byte.
    pub col: usize,
}

/// An input's text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text {
    /// The text; lines that were not UTF-8 are empty when they were skipped.
    pub text: String,
    /// The lines skipped for invalid UTF-8 (only with `skip_invalid`).
    pub invalid: Vec<InvalidLine>,
}

/// An I/O error as the commands print it: the errno's text (`No such file or directory`)
/// without Rust's `(os error N)` suffix.
pub fn io_message(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => crate::script::errno::errno_message(code),
        None => e.to_string(),
    }
}

/// Reads the file at `path` within `limits`; `skip_invalid` reads a line that is not UTF-8
/// as empty (and lists it) instead of failing.
pub fn read_text(path: &Path, limits: Limits, skip_invalid: bool) -> Result<Text, InputError> {
    let file = File::open(path).map_err(|e| InputError::Io(io_message(&e)))?;
    if let Ok(meta) = file.metadata()
        && meta.is_file()
        && meta.len() > limits.max_bytes
    {
        return Err(InputError::TooLarge {
            max: limits.max_bytes,
        });
    }
    read_from(BufReader::new(file), limits, skip_invalid)
}

/// [`read_text`] over any reader.
pub fn read_from<R: BufRead>(
    mut reader: R,
    limits: Limits,
    skip_invalid: bool,
) -> Result<Text, InputError> {
    let mut out = Text::default();
    let mut total = 0u64;
    let mut line = Vec::new();
    for no in 1.. {
        line.clear();
        // One byte more than a line may hold (newline included) shows that it is too long.
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 2)
            .read_until(b'\n', &mut line)
            .map_err(|e| InputError::Io(io_message(&e)))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > limits.max_bytes {
            return Err(InputError::TooLarge {
                max: limits.max_bytes,
            });
        }
        let ends = line.last() == Some(&b'\n');
        if line.len() - usize::from(ends) > MAX_LINE {
            return Err(InputError::LineTooLong { line: no });
        }
        match std::str::from_utf8(&line) {
            Ok(s) => out.text.push_str(s),
            Err(e) => {
                let good = &line[..e.valid_up_to()];
                // The prefix up to the first bad byte is valid by construction.
                let col = String::from_utf8_lossy(good).chars().count() + 1;
                if !skip_invalid {
                    return Err(InputError::Utf8 { line: no, col });
                }
                out.invalid.push(InvalidLine { line: no, col });
                if ends {
                    out.text.push('\n');
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8], max: u64, skip: bool) -> Result<Text, InputError> {
        read_from(bytes, Limits { max_bytes: max }, skip)
    }

    #[test]
    fn reads_text_within_the_limits() {
        let t = read(b"a\nb\n", 4, false).unwrap();
        assert_eq!(t.text, "a\nb\n");
        assert!(t.invalid.is_empty());
        assert!(matches!(
            read(b"a\nb\n", 3, false),
            Err(InputError::TooLarge { max: 3 })
        ));
    }

    #[test]
    fn a_long_line_is_refused_at_its_number() {
        let mut input = b"ok\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE));
        input.push(b'\n');
        assert_eq!(
            read(&input, u64::MAX, false).unwrap().text.len(),
            input.len()
        );
        input.pop();
        input.extend(b"y\n");
        let e = read(&input, u64::MAX, false).unwrap_err();
        assert_eq!(e.to_string(), "2: line longer than 1048576 bytes");
    }

    #[test]
    fn an_endless_line_stops_at_the_limit() {
        let zeros = io::repeat(0).take(u64::MAX);
        let e = read_from(BufReader::new(zeros), TRACE, false).unwrap_err();
        assert!(matches!(e, InputError::LineTooLong { line: 1 }));
    }

    #[test]
    fn invalid_utf8_names_line_and_column() {
        let nul = read("ok\nmmäp\u{0}\n".as_bytes(), 100, false).unwrap();
        assert_eq!(nul.text, "ok\nmmäp\u{0}\n", "a NUL is valid UTF-8");
        let e = read(b"ok\nm\xc3\xa4p\xff(\n", 100, false).unwrap_err();
        assert_eq!(e.to_string(), "2:4: invalid UTF-8");
    }

    #[test]
    fn invalid_lines_can_be_skipped() {
        let t = read(b"a\n\xfe\nc", 100, true).unwrap();
        assert_eq!(t.text, "a\n\nc");
        assert_eq!(t.invalid, vec![InvalidLine { line: 2, col: 1 }]);
    }
}
