#![no_main]
//! libFuzzer entry for `sync_batch` in fuzz/targets.rs (docs/FUZZING.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| phr_fuzz::sync_batch(data));
