//! Differential: an op list decoded from the bytes runs on a softmm `AddressSpace` and on
//! the reference model of Linux's mm (`softmm/tests/model/`), compared after every op as
//! the property test compares them. Any difference is a finding (the message carries the
//! ops as a script).
#![no_main]
// The model's proptest strategies and script writer are compiled in but not used here.
#![expect(dead_code)]

use libfuzzer_sys::fuzz_target;

#[path = "../../softmm/tests/model/call.rs"]
mod call;
#[path = "../../softmm/tests/model/calls.rs"]
mod calls;
#[path = "../../softmm/tests/model/decode.rs"]
mod decode;
#[path = "../../softmm/tests/model/harness.rs"]
mod harness;
#[path = "../../softmm/tests/model/memory.rs"]
mod memory;
#[path = "../../softmm/tests/model/ops.rs"]
mod ops;
#[path = "../../softmm/tests/model/remap.rs"]
mod remap;
#[path = "../../softmm/tests/model/space.rs"]
mod space;
#[path = "../../softmm/tests/model/vmflags.rs"]
mod vmflags;

fuzz_target!(|data: &[u8]| {
    let (ops, every) = decode::ops(data);
    if let Err(e) = harness::run(&ops, space::Quirks::library(), every) {
        panic!("softmm and the model differ:\n{e}");
    }
});
