//! Fuzz target `content_range`: see `check_content_range` in fuzz/src/checks.rs for the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plait_fuzz::checks::check_content_range(data));
