//! The subcommands of `softmm`, one module each.

pub mod run;
