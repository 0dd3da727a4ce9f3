//! Tidy: the architecture rules of ARCHITECTURE.md, checked as an ordinary test so they
//! cannot drift (the layering is only real if something fails when it is broken).

use std::fs;
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src_files() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
            (rel, fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Code without comment lines, so prose may name other layers.
fn code(text: &str) -> String {
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// module prefix → tokens its code must not contain.
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "protocol/",
        &[
            "tokio",
            "axum",
            "hyper",
            "diamond_types",
            "rocksdb",
            "crate::store",
            "crate::text",
            "crate::hub",
            "crate::http",
        ],
    ),
    ("text/", &["tokio", "axum", "hyper", "rocksdb", "crate::store", "crate::hub", "crate::http"]),
    ("store/", &["axum", "hyper", "diamond_types", "crate::protocol", "crate::text", "crate::hub", "crate::http"]),
    ("hub/", &["axum", "hyper::", "diamond_types", "rocksdb", "crate::http", "crate::config", "crate::auth"]),
    // Access control knows credentials and the store's bytes, not documents or HTTP.
    (
        "auth/",
        &["axum", "hyper", "diamond_types", "rocksdb", "crate::http", "crate::hub", "crate::text", "crate::config"],
    ),
    ("http/", &["diamond_types", "rocksdb", "crate::store", "crate::config"]),
    // The load generator is a client: it drives servers over sockets, never their core.
    ("bench/", &["axum", "diamond_types", "rocksdb", "crate::hub", "crate::app"]),
];

#[test]
fn layers_only_use_what_they_may() {
    let mut violations = Vec::new();
    for (file, text) in src_files() {
        let code = code(&text);
        for (prefix, tokens) in FORBIDDEN {
            if file.starts_with(prefix) {
                for t in *tokens {
                    if code.contains(t) {
                        violations.push(format!("src/{file} uses {t}"));
                    }
                }
            }
        }
        if code.contains("diamond_types") && !file.starts_with("text/") {
            violations.push(format!("src/{file}: only src/text may use diamond_types"));
        }
        if code.contains("rocksdb::") && file != "store/rocks.rs" {
            violations.push(format!("src/{file}: only src/store/rocks.rs may use rocksdb"));
        }
    }
    assert!(violations.is_empty(), "architecture rules broken:\n{}", violations.join("\n"));
}

#[test]
fn files_stay_small_documented_and_quiet() {
    let mut problems = Vec::new();
    for (file, text) in src_files() {
        let lines = text.lines().count();
        if lines > 600 && !text.contains("tidy: allow-long-file") {
            problems.push(format!("src/{file} has {lines} lines (over 600 needs a `tidy: allow-long-file: <reason>`)"));
        }
        if !text.trim_start().starts_with("//!") {
            problems.push(format!("src/{file} does not start with a //! doc saying what it is"));
        }
        let code = code(&text);
        if code.contains("dbg!(") {
            problems.push(format!("src/{file} has dbg!"));
        }
        if code.contains("println!(") && file != "main.rs" {
            problems.push(format!("src/{file} prints to stdout (use tracing)"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
