//! The character-level reader of one script line: blanks and comments, identifiers, numbers
//! and strings.
//!
//! A [`Cursor`] walks a line by characters (Unicode scalar values), so a column in an error
//! message is the 1-based character position, as linux-run counts it. Every token reader
//! skips blanks (space, tab, carriage return) first, and `#` ends the line. The grammar on top
//! lives in [`parse`](super::parse).

use std::fmt;

/// A malformed script: where and why. Displayed as `LINE:COL: message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ScriptError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.msg)
    }
}

/// The result of a step of the parser.
pub type PResult<T> = Result<T, ScriptError>;

/// A position in one line of a script.
pub struct Cursor {
    chars: Vec<char>,
    /// Index of the next character.
    pub i: usize,
    line: usize,
}

/// `c` as an error message shows it: a control character (a NUL, an escape) as its Rust
/// escape (`\u{0}`), so that the message stays readable on a terminal.
pub fn visible(c: char) -> String {
    if c.is_control() {
        c.escape_default().to_string()
    } else {
        c.to_string()
    }
}

/// `s` as an error message shows it: control characters escaped as by [`visible`].
pub fn visible_str(s: &str) -> String {
    s.chars().map(visible).collect()
}

/// Whether `c` may appear in an identifier (a call, constant, variable or errno name).
pub fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Cursor {
    /// A cursor at the start of `text`, which is line `line` of the script.
    pub fn new(text: &str, line: usize) -> Self {
        Self {
            chars: text.chars().collect(),
            i: 0,
            line,
        }
    }

    /// An error at column `col` (0-based index), or at the cursor.
    pub fn err_at<T>(&self, col: usize, msg: impl Into<String>) -> PResult<T> {
        Err(ScriptError {
            line: self.line,
            col: col + 1,
            msg: msg.into(),
        })
    }

    /// An error at the cursor.
    pub fn err<T>(&self, msg: impl Into<String>) -> PResult<T> {
        self.err_at(self.i, msg)
    }

    /// The number of characters in the line.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Whether the line is empty.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The character at index `j`, if any.
    pub fn at(&self, j: usize) -> Option<char> {
        self.chars.get(j).copied()
    }

    /// The text from index `j` to the end.
    pub fn rest_from(&self, j: usize) -> String {
        self.chars[j.min(self.chars.len())..].iter().collect()
    }

    /// Skips blanks; a `#` skips to the end of the line.
    pub fn ws(&mut self) {
        while matches!(self.at(self.i), Some(' ' | '\t' | '\r')) {
            self.i += 1;
        }
        if self.at(self.i) == Some('#') {
            self.i = self.chars.len();
        }
    }

    /// The next character after blanks, without consuming it (`None` at the end).
    pub fn peek(&mut self) -> Option<char> {
        self.ws();
        self.at(self.i)
    }

    /// Consumes `ch` if it is next (after blanks).
    pub fn eat(&mut self, ch: char) -> bool {
        if self.peek() == Some(ch) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `ch`, or fails with `expected 'CH', found ...`.
    pub fn expect(&mut self, ch: char) -> PResult<()> {
        if self.eat(ch) {
            return Ok(());
        }
        let found = match self.peek() {
            Some(c) => format!("'{}'", visible(c)),
            None => "end of line".to_string(),
        };
        self.err(format!("expected '{ch}', found {found}"))
    }

    /// Reads an identifier after blanks (empty when there is none).
    pub fn ident(&mut self) -> String {
        self.ws();
        let mut j = self.i;
        while self.at(j).is_some_and(is_ident_char) {
            j += 1;
        }
        let s: String = self.chars[self.i..j].iter().collect();
        self.i = j;
        s
    }

    /// Reads a string literal; the cursor is on its opening `"`. C escapes are decoded;
    /// other characters are taken as their UTF-8 bytes.
    pub fn string(&mut self) -> PResult<Vec<u8>> {
        let start = self.i;
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.at(self.i) else {
                return self.err_at(start, "unterminated string");
            };
            match c {
                '"' => {
                    self.i += 1;
                    return Ok(out);
                }
                '\\' => self.escape(start, &mut out)?,
                _ => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    self.i += 1;
                }
            }
        }
    }

    /// Decodes the escape at the cursor (on its backslash) into `out`.
    fn escape(&mut self, start: usize, out: &mut Vec<u8>) -> PResult<()> {
        let Some(e) = self.at(self.i + 1) else {
            return self.err_at(start, "unterminated string");
        };
        let byte = match e {
            'n' => 10,
            't' => 9,
            'r' => 13,
            '0' => 0,
            '\\' => 92,
            '"' => 34,
            '\'' => 39,
            'a' => 7,
            'b' => 8,
            'f' => 12,
            'v' => 11,
            'x' => {
                let hi = self.at(self.i + 2).and_then(|c| c.to_digit(16));
                let lo = self.at(self.i + 3).and_then(|c| c.to_digit(16));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return self.err("\\x needs two hex digits");
                };
                out.push((hi * 16 + lo) as u8);
                self.i += 4;
                return Ok(());
            }
            _ => return self.err(format!("unknown escape \\{e}")),
        };
        out.push(byte);
        self.i += 2;
        Ok(())
    }

    /// Reads an integer literal after blanks: decimal, `0x` hex or `0`-prefixed octal, with an
    /// optional `K`/`M`/`G` suffix. The value is taken modulo 2^64.
    pub fn number(&mut self) -> PResult<u64> {
        self.ws();
        let start = self.i;
        let mut j = self.i;
        let is_hex_prefix = self.at(j) == Some('0') && matches!(self.at(j + 1), Some('x' | 'X'));
        let mut v: u64 = 0;
        if is_hex_prefix {
            j += 2;
            while let Some(d) = self.at(j).and_then(|c| c.to_digit(16)) {
                v = v.wrapping_mul(16).wrapping_add(u64::from(d));
                j += 1;
            }
            if j == self.i + 2 {
                return self.err("bad hex number");
            }
        } else {
            while self.at(j).is_some_and(|c| c.is_ascii_digit()) {
                j += 1;
            }
            let digits = &self.chars[self.i..j];
            let radix = if digits.len() > 1 && digits[0] == '0' {
                if digits.iter().any(|c| matches!(c, '8' | '9')) {
                    return self.err("bad octal number");
                }
                8
            } else {
                10
            };
            for c in digits {
                let d = u64::from(c.to_digit(radix).unwrap_or(0));
                v = v.wrapping_mul(u64::from(radix)).wrapping_add(d);
            }
        }
        if let Some(shift) = self.at(j).and_then(suffix_shift) {
            v <<= shift;
            j += 1;
        }
        if self.at(j).is_some_and(is_ident_char) {
            self.i = j;
            return self.err_at(start, "bad number");
        }
        self.i = j;
        Ok(v)
    }
}

/// The shift of a size suffix (`K` → 10).
fn suffix_shift(c: char) -> Option<u32> {
    match c {
        'K' => Some(10),
        'M' => Some(20),
        'G' => Some(30),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> PResult<u64> {
        Cursor::new(s, 1).number()
    }

    fn string(s: &str) -> PResult<Vec<u8>> {
        Cursor::new(s, 1).string()
    }

    fn err(line: usize, col: usize, msg: &str) -> ScriptError {
        ScriptError {
            line,
            col,
            msg: msg.to_string(),
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(num("4096"), Ok(4096));
        assert_eq!(num("0x7f0000000000"), Ok(0x7f00_0000_0000));
        assert_eq!(num("0X1f"), Ok(0x1f));
        assert_eq!(num("0644"), Ok(0o644));
        assert_eq!(num("0"), Ok(0));
        assert_eq!(num("8K"), Ok(8192));
        assert_eq!(num("2M"), Ok(2 << 20));
        assert_eq!(num("1G"), Ok(1 << 30));
        assert_eq!(num("0x10K"), Ok(16 << 10));
        assert_eq!(num("  12 rest"), Ok(12));
        assert_eq!(num("18446744073709551617"), Ok(1));
    }

    #[test]
    fn bad_numbers() {
        assert_eq!(num("0x"), Err(err(1, 1, "bad hex number")));
        assert_eq!(num("09"), Err(err(1, 1, "bad octal number")));
        assert_eq!(num("4k"), Err(err(1, 1, "bad number")));
        assert_eq!(num("  12abc"), Err(err(1, 3, "bad number")));
        assert_eq!(num("8KB"), Err(err(1, 1, "bad number")));
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(string(r#""hello""#), Ok(b"hello".to_vec()));
        assert_eq!(
            string(r#""a\tb\n\"q\"\\\x7f\0z""#),
            Ok(b"a\tb\n\"q\"\\\x7f\0z".to_vec())
        );
        assert_eq!(
            string(r#""\r\a\b\f\v\'""#),
            Ok(b"\r\x07\x08\x0c\x0b'".to_vec())
        );
        assert_eq!(string(r#""\xFF\x00""#), Ok(vec![0xff, 0]));
        assert_eq!(string("\"é\""), Ok("é".as_bytes().to_vec()));
        assert_eq!(string("\"#\"x"), Ok(b"#".to_vec()));
    }

    #[test]
    fn bad_strings() {
        assert_eq!(string(r#""abc"#), Err(err(1, 1, "unterminated string")));
        assert_eq!(string(r#""abc\"#), Err(err(1, 1, "unterminated string")));
        assert_eq!(string(r#""ab\q""#), Err(err(1, 4, "unknown escape \\q")));
        assert_eq!(
            string(r#""\x4""#),
            Err(err(1, 2, "\\x needs two hex digits"))
        );
        assert_eq!(
            string(r#""\xg0""#),
            Err(err(1, 2, "\\x needs two hex digits"))
        );
    }

    #[test]
    fn blanks_comments_and_idents() {
        let mut c = Cursor::new("  mmap_2( # comment", 3);
        assert_eq!(c.ident(), "mmap_2");
        assert!(c.eat('('));
        assert_eq!(c.peek(), None);
        assert_eq!(
            c.expect(')'),
            Err(err(3, 20, "expected ')', found end of line"))
        );
        let mut c = Cursor::new("x ,", 1);
        c.ident();
        assert_eq!(c.expect(')'), Err(err(1, 3, "expected ')', found ','")));
    }
}
