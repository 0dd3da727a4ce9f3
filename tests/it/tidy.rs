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
    files_under("src")
}

/// The load generator's sources (`clients/bench/src`, package `plait-bench`).
fn bench_files() -> Vec<(String, String)> {
    files_under("clients/bench/src")
}

/// Every `.rs` file under `dir` (relative to the repository), named relative to `dir`.
fn files_under(dir: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
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
];

/// The load generator is a client: it drives servers over sockets, never their core. It uses
/// the `plait` library only for the references built from the server's own modules
/// (`text::reference*`, `store::open_synced`, `protocol` decoding, `http::serve_noop`).
const BENCH_FORBIDDEN_CRATES: &[&str] = &["axum", "diamond_types", "rocksdb"];
/// Modules of the `plait` library it must not name (as a path segment, grouped imports too).
const BENCH_FORBIDDEN_MODULES: &[&str] = &["hub", "app"];

/// Whether `code` names `module::` as a path segment (not as the tail of a longer name).
fn names_module(code: &str, module: &str) -> bool {
    let needle = format!("{module}::");
    code.match_indices(&needle)
        .any(|(at, _)| !code[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_'))
}

#[test]
fn the_load_generator_is_a_client() {
    let mut violations = Vec::new();
    let files = bench_files();
    assert!(files.iter().any(|(f, _)| f == "lib.rs"), "clients/bench/src/lib.rs not found");
    for (file, text) in files {
        let code = code(&text);
        for t in BENCH_FORBIDDEN_CRATES {
            if code.contains(t) {
                violations.push(format!("clients/bench/src/{file} uses {t}"));
            }
        }
        for m in BENCH_FORBIDDEN_MODULES {
            if names_module(&code, m) {
                violations.push(format!("clients/bench/src/{file} uses plait::{m}"));
            }
        }
    }
    // And the server does not ship it: no `src/bench`, none of its dependencies.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if root.join("src/bench").exists() {
        violations.push("src/bench exists: the load generator lives in clients/bench".into());
    }
    let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let deps = manifest.split("\n[dependencies]\n").nth(1).unwrap().split("\n[").next().unwrap();
    for dep in ["flate2", "tempfile"] {
        if deps.lines().any(|l| l.starts_with(&format!("{dep} "))) {
            violations.push(format!("Cargo.toml: the server depends on {dep}, which only the load generator needs"));
        }
    }
    assert!(violations.is_empty(), "the load generator's rules broken:\n{}", violations.join("\n"));
}

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
    let mut all = Vec::new();
    for (dir, files) in [("src", src_files()), ("clients/bench/src", bench_files())] {
        all.extend(files.into_iter().map(|(file, text)| (format!("{dir}/{file}"), file, text)));
    }
    for (path, file, text) in all {
        let lines = text.lines().count();
        if lines > 600 && !text.contains("tidy: allow-long-file") {
            problems.push(format!("{path} has {lines} lines (over 600 needs a `tidy: allow-long-file: <reason>`)"));
        }
        if !text.trim_start().starts_with("//!") {
            problems.push(format!("{path} does not start with a //! doc saying what it is"));
        }
        let code = code(&text);
        if code.contains("dbg!(") {
            problems.push(format!("{path} has dbg!"));
        }
        if code.contains("println!(") && file != "main.rs" {
            problems.push(format!("{path} prints to stdout (use tracing)"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
