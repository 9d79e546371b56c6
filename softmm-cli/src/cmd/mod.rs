//! The subcommands of `softmm`, one module each.

pub mod run;
pub mod stress;
