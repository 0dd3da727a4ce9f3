//! Fuzz target `stored_bytes`: see `check_stored_bytes` in fuzz/src/checks.rs for the invariants.
//! diamond-types panics on some CRC-valid garbage and plait catches that by design, so this
//! target tolerates caught panics (see `run_allowing_caught_panics`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plait_fuzz::run_allowing_caught_panics(
    data,
    plait_fuzz::checks::check_stored_bytes
));
