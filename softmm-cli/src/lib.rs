//! The `softmm` command: run scripts against the softmm memory manager (and, in later
//! issues, replay traces, stress and benchmark it).
//!
//! [`script`] is the script language and its runner; [`cmd`] holds one module per
//! subcommand, called by `main.rs`.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod cmd;
pub mod script;
pub mod stress;
