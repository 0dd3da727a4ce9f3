//! Fuzz target `text_edit`: see `check_text_edit` in fuzz/src/checks.rs for the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plait_fuzz::checks::check_text_edit(data));
