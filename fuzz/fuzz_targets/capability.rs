#![no_main]
//! libFuzzer entry for `capability` in fuzz/targets.rs (docs/FUZZING.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| phr_fuzz::capability(data));
