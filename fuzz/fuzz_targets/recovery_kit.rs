#![no_main]
//! libFuzzer entry for `recovery_kit` in fuzz/targets.rs (docs/FUZZING.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| phr_fuzz::recovery_kit(data));
