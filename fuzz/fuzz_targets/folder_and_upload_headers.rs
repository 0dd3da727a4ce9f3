//! Fuzz target `folder_and_upload_headers`: see `check_folder_and_upload_headers` in
//! fuzz/src/checks.rs for the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plait_fuzz::checks::check_folder_and_upload_headers(data));
