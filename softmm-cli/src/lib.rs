//! The `softmm` command: run scripts against the softmm memory manager, replay traces,
//! stress and benchmark it.
//!
//! [`script`] is the script language and its runner; [`replay`] re-runs recorded traces;
//! [`stress`] and [`bench`] are the checking and measuring harnesses; [`input`] reads every
//! text input within its limits; [`cmd`] holds one module per subcommand, called by
//! `main.rs`.
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
