#![no_main]
//! libFuzzer entry for `stored_value` in fuzz/targets.rs (docs/FUZZING.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| phr_fuzz::stored_value(data));
