#![no_main]
//! libFuzzer entry for `pair_ticket` in fuzz/targets.rs (docs/FUZZING.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| phr_fuzz::pair_ticket(data));
