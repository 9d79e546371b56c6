//! The `--config` loader on arbitrary bytes (TOML, then JSON), and a machine built with
//! every configuration it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = softmm_cli::fuzz::config(data);
});
