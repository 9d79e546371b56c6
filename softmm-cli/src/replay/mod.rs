//! `softmm replay TRACE`: re-running the memory-management calls of a real program, recorded
//! by `strace -f -y` (`tools/capture-trace.sh`), against softmm.
//!
//! [`strace`] turns the log into records, independently of the replay engine; [`engine`]
//! applies them to a [`softmm::Machine`]; [`maps_cmp`] compares the resulting
//! `/proc/PID/maps` with Linux's page by page; [`run`] drives the three.

pub mod engine;
pub mod maps_cmp;
pub mod ranges;
pub mod run;
pub mod strace;
pub mod synth;
