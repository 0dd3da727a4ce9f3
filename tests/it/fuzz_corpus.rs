//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the same invariant
//! checks the fuzz targets run (`fuzz/src/checks.rs`, included below), on stable Rust, so every
//! seed and every past crash stays a regression test without cargo-fuzz or nightly.

#[path = "../../fuzz/src/checks.rs"]
mod checks;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// Runs `check` on every file of `fuzz/corpus/<target>/` and fails listing the files (and the
/// broken invariants) that panicked.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    assert!(paths.len() >= 10, "{}: only {} seeds", dir.display(), paths.len());
    let mut failures = Vec::new();
    for path in &paths {
        let data = std::fs::read(path).unwrap();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&data))) {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            failures.push(format!("{}: {msg}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {target} inputs broke an invariant:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
}

#[test]
fn version_header() {
    replay("version_header", checks::check_version_header);
}

#[test]
fn content_range() {
    replay("content_range", checks::check_content_range);
}

#[test]
fn patches_body() {
    replay("patches_body", checks::check_patches_body);
}

#[test]
fn subscription_decoder() {
    replay("subscription_decoder", checks::check_subscription_decoder);
}

#[test]
fn text_edit() {
    replay("text_edit", checks::check_text_edit);
}

#[test]
fn folder_and_upload_headers() {
    replay("folder_and_upload_headers", checks::check_folder_and_upload_headers);
}

#[test]
fn stored_bytes() {
    replay("stored_bytes", checks::check_stored_bytes);
}

/// The re-sealing helper the `stored_bytes` target uses keeps valid encodings byte-identical.
#[test]
fn reseal_keeps_valid_encodings() {
    let doc = checks::run_text_edit(
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/text_edit/t11-hello-world-delete"))
            .unwrap(),
    );
    let bytes = doc.encode_full();
    assert_eq!(checks::reseal(&bytes), bytes);
    assert_eq!(doc.text(), "ello world");
}
