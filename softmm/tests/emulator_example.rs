//! Runs `examples/emulator.rs` as a test, so CI runs it: its `main` asserts the counter
//! both vCPUs incremented and the `siginfo` of each fault (unmapped load, store to a
//! read-only page, fetch from an NX page).
#![cfg(not(any(loom, shuttle)))]

#[path = "../examples/emulator.rs"]
mod emulator;

#[test]
fn the_emulator_example_delivers_the_right_signals() {
    emulator::main();
}
