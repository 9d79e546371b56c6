//! The `softmm` command: run scripts against the softmm memory manager (and, in later
//! issues, replay traces, stress and benchmark it).
//!
//! [`script`] is the script language and its runner; [`replay`] re-runs recorded traces (so
//! far, the parser of strace logs); [`cmd`] holds one module per subcommand, called by
//! `main.rs`.
#![warn(missing_docs)]
// Only `bench`'s host side (real mmap and real loads and stores) opts back in.
#![deny(unsafe_code)]

pub mod bench;
pub mod cmd;
pub mod replay;
pub mod script;
pub mod stress;
