#![no_main]
//! libFuzzer entry for `wire_frames` in fuzz/targets.rs (docs/FUZZING.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| phr_fuzz::wire_frames(data));
