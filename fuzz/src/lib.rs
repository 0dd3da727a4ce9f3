//! Plait's fuzz harness. The invariants live in [`checks`] (shared with the main test suite,
//! which replays `fuzz/corpus/` through them on stable Rust); the targets in `fuzz_targets/`
//! only call them.

pub mod checks;

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};

thread_local! {
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `check` on `data` for targets that reach code which catches panics on purpose
/// (`TextDoc::decode_full`/`apply_encoded` catch diamond-types' panics on corrupt bytes).
///
/// libfuzzer-sys installs a panic hook that aborts at the first panic, even one that would be
/// caught; this replaces it with a hook that only remembers the message, and aborts (printing
/// it) when a panic escapes `check`, i.e. when plait let one through or an invariant failed.
pub fn run_allowing_caught_panics(data: &[u8], check: fn(&[u8])) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        panic::set_hook(Box::new(|info| LAST_PANIC.with(|last| *last.borrow_mut() = info.to_string())));
    });
    if panic::catch_unwind(AssertUnwindSafe(|| check(data))).is_err() {
        LAST_PANIC.with(|last| eprintln!("panic escaped the check: {}", last.borrow()));
        std::process::abort();
    }
}
