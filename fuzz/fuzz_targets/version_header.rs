//! Fuzz target `version_header`: see `check_version_header` in fuzz/src/checks.rs for the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plait_fuzz::checks::check_version_header(data));
