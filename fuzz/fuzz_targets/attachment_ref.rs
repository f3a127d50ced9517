#![no_main]
//! libFuzzer entry for `attachment_ref` in fuzz/targets.rs (docs/FUZZING.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| phr_fuzz::attachment_ref(data));
