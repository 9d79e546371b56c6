//! `softmm run` on arbitrary bytes: reading, parsing and running a script on a small
//! machine. Malformed scripts and failed lines are fine; a panic, an abort, a hang or an
//! unbounded allocation is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = softmm_cli::fuzz::script(data);
});
