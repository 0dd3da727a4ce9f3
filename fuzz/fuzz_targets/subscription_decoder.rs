//! Fuzz target `subscription_decoder`: see `check_subscription_decoder` in fuzz/src/checks.rs for the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plait_fuzz::checks::check_subscription_decoder(data));
