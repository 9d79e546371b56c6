//! The `softmm` command: run scripts against the softmm memory manager, replay traces of
//! real programs, stress it with a content oracle, and benchmark it beside the host kernel.
//!
//! [`script`] is the script language and its runner; [`replay`] re-runs recorded strace
//! traces; [`stress`] and [`bench`](mod@bench) are the checking and measuring harnesses;
//! [`input`] reads every text input within its limits; [`cmd`] holds one module per
//! subcommand, called by `main.rs`.
#![warn(missing_docs)]
// Only `bench`'s host side (real mmap and real loads and stores) opts back in.
#![deny(unsafe_code)]

pub mod bench;
pub mod cmd;
pub mod config;
pub mod fuzz;
pub mod input;
pub mod replay;
pub mod script;
pub mod stress;
