//! The subcommands of `softmm`, one module each.

pub mod bench;
pub mod replay;
pub mod run;
pub mod stress;
