#![no_main]
//! libFuzzer entry for `capability_text` in fuzz/targets.rs (docs/FUZZING.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| phr_fuzz::capability_text(data));
