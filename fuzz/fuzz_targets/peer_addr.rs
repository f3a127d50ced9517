#![no_main]
//! libFuzzer entry for `peer_addr` in fuzz/targets.rs (docs/FUZZING.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| phr_fuzz::peer_addr(data));
