//! Scripts: strace-syntax scenarios of memory-management calls with expected results
//! (`docs/scripts.md`), run by `softmm run`.
//!
//! The pipeline is `text → parse → Script → run → output`:
//! - [`lexer`] and [`parse`] turn the text into a [`Script`] ([`ast`]), or the first
//!   [`ScriptError`] (`LINE:COL: message`); nothing runs when the script is malformed;
//! - [`run`] executes it against a [`Backend`], evaluating expressions ([`eval`]), typing the
//!   calls ([`resolve`]), echoing them in strace form ([`format`](mod@format), [`consts`], [`errno`]) and
//!   checking the results ([`check`]);
//! - [`softmm_backend`] is the backend over the softmm library.
//!
//! Everything but `softmm_backend` is independent of the library, and mirrors linux-run
//! (`shared/tools/linux-run`), the runner of the same scripts against the real kernel: same
//! parser messages, same echo, same FAIL lines and summary.

pub mod ast;
pub mod backend;
pub mod check;
pub mod consts;
pub mod errno;
pub mod eval;
pub mod format;
pub mod lexer;
pub mod parse;
pub mod resolve;
pub mod run;
pub mod softmm_backend;

pub use self::{
    ast::{CallName, Expect, Expr, Line, Script, Value},
    backend::{Backend, Buf, Call, Outcome, Pid, VmaView, layout_text},
    lexer::ScriptError,
    parse::parse_script,
    run::{Summary, run_script},
    softmm_backend::SoftmmBackend,
};
