//! Fuzz target `patches_body`: see `check_patches_body` in fuzz/src/checks.rs for the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plait_fuzz::checks::check_patches_body(data));
