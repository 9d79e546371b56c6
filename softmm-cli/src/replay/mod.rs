//! `softmm replay TRACE`: re-running the memory-management calls of a real program, recorded
//! by `strace -f -y` (`shared/tools/capture-trace.sh`), against softmm.
//!
//! [`strace`] turns the log into records, independently of the replay engine.

pub mod strace;
