#![no_main]
//! libFuzzer entry for `clinic_ticket` in fuzz/targets.rs (docs/FUZZING.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| phr_fuzz::clinic_ticket(data));
