#![no_main]
//! libFuzzer entry for `fhir_resource` in fuzz/targets.rs (docs/FUZZING.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| phr_fuzz::fhir_resource(data));
