//! `softmm replay` (not strict) on arbitrary bytes: the strace parser, then the replay of
//! whatever it parsed on a small machine.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = softmm_cli::fuzz::trace(data);
});
