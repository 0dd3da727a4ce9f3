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

/// What each module may use: the crate's own modules and the external crates, by name. An
/// allow-list, so that a new dependency between layers (or on a new crate) fails until someone
/// decides it belongs here and in ARCHITECTURE.md.
struct Layer {
    /// The module (a directory or file under `src/`, without `.rs`).
    module: &'static str,
    /// Modules of this crate it may name (`crate::x` or `plait::x`).
    internal: &'static [&'static str],
    /// External crates its code may name.
    external: &'static [&'static str],
    /// External crates its tests alone may name (files under `tests/`, or `*_tests.rs`, or
    /// `conformance.rs`, `fault.rs`).
    test_external: &'static [&'static str],
}

const LAYERS: &[Layer] = &[
    // The wire format: values in, values out.
    Layer {
        module: "protocol",
        internal: &[],
        external: &["base64", "serde_json", "sha2", "thiserror", "infer"],
        test_external: &[],
    },
    // The only user of diamond-types.
    Layer {
        module: "text",
        internal: &["protocol"],
        external: &["diamond_types", "smallvec", "similar", "crc32c", "base64", "thiserror"],
        test_external: &["rand"],
    },
    // The folders' change log: records, cursors, folder rules, listing pages on the store.
    Layer {
        module: "changes",
        internal: &["store"],
        external: &["serde", "serde_json", "thiserror", "tracing"],
        test_external: &[],
    },
    // Resumable uploads' durable records and rules: keys and batch ops, no I/O.
    Layer {
        module: "upload",
        internal: &["store"],
        external: &["serde", "serde_json", "thiserror", "hex", "rand"],
        test_external: &[],
    },
    // The file merge type's version graph: pure, no bytes of content.
    Layer { module: "file", internal: &[], external: &["serde", "serde_json", "thiserror", "hex"], test_external: &[] },
    // Bytes and keys; RocksDB only in store/rocks.rs (checked below).
    Layer {
        module: "store",
        internal: &[],
        external: &["rocksdb", "tokio", "thiserror", "tracing", "rand"],
        test_external: &["tempfile"],
    },
    // File bytes as chunks: the key-value store's batches and trait for references, never
    // documents, HTTP routing or diamond-types; RocksDB only in chunks/rocks.rs, object_store
    // and the S3 engine's HTTP client only in chunks/s3/ (checked below).
    Layer {
        module: "chunks",
        internal: &["store"],
        external: &[
            "fastcdc",
            "blake3",
            "sha2",
            "lz4_flex",
            "ring",
            "crc32c",
            "rocksdb",
            "thiserror",
            "hex",
            "object_store",
            "hyper",
            "hyper_util",
            "hyper_rustls",
            "tokio_rustls",
            "rustls_native_certs",
            "http",
            "http_body_util",
            "bytes",
            "futures_util",
            "tokio",
            "async_trait",
            "quick_xml",
            "serde",
            "tracing",
        ],
        test_external: &["rand", "tempfile"],
    },
    // The document core: no I/O, so no tokio but its clock type, and the store's value types
    // only (checked below).
    Layer {
        module: "document",
        internal: &["protocol", "text", "store", "file", "chunks", "changes"],
        external: &["tokio", "bytes", "serde", "serde_json", "thiserror", "tracing"],
        test_external: &[],
    },
    Layer {
        module: "hub",
        internal: &["document", "protocol", "text", "store", "file", "chunks", "changes", "upload"],
        // futures_util: the `Stream` of an upload's request body.
        external: &[
            "tokio",
            "bytes",
            "serde",
            "serde_json",
            "thiserror",
            "tracing",
            "hex",
            "sha2",
            "sha1",
            "futures_util",
        ],
        test_external: &["rand", "tokio_stream"],
    },
    // Credentials: the store's bytes, never documents or HTTP.
    Layer {
        module: "auth",
        internal: &["store"],
        external: &["tokio", "serde", "serde_json", "sha2", "subtle", "base64", "rand", "thiserror", "tracing", "hex"],
        test_external: &[],
    },
    // The only module that knows axum and hyper; text for the edit values it builds and diffs;
    // file and chunks for their value types (version ids, chunk ids) and error mapping.
    Layer {
        module: "http",
        internal: &["hub", "document", "auth", "protocol", "text", "file", "chunks", "changes", "upload"],
        external: &[
            "hex",
            "axum",
            "hyper",
            "hyper_util",
            "http",
            "http_body",
            "http_body_util",
            "tower",
            "tower_http",
            "tokio",
            "tokio_stream",
            "tokio_rustls",
            "rustls_pki_types",
            "bytes",
            "futures_util",
            "serde",
            "serde_json",
            "rand",
            "base64",
            "sha2",
            "thiserror",
            "tracing",
            "httpdate",
        ],
        test_external: &[],
    },
    // The client commands and sync daemon: a client of the server over HTTP. Of the server's
    // modules only the pure ones it must agree with the server on (wire format, chunk cuts)
    // and the store engines (its local database); axum only in its control API (checked below).
    Layer {
        module: "client",
        internal: &["protocol", "chunks", "store"],
        external: &[
            "reqwest",
            "tokio",
            "tokio_stream",
            "futures_util",
            "bytes",
            "serde",
            "serde_json",
            "clap",
            "clap_complete",
            "notify",
            "ignore",
            "indicatif",
            "directories",
            "toml",
            "rpassword",
            "rustix",
            "similar",
            "sha2",
            "sha1",
            "blake3",
            "base64",
            "hex",
            "rand",
            "httpdate",
            "tracing",
            "axum",
            "thiserror",
            "anyhow",
        ],
        test_external: &["tempfile"],
    },
    Layer {
        module: "config",
        internal: &["hub", "document", "client"],
        external: &["clap", "anyhow"],
        test_external: &[],
    },
    // The composition root: builds engines and wires layers, but speaks no HTTP itself.
    Layer {
        module: "app",
        internal: &["config", "http", "hub", "store", "auth", "chunks"],
        external: &["anyhow", "tokio", "tracing"],
        test_external: &[],
    },
    Layer {
        module: "main",
        internal: &["config", "app", "http", "client"],
        external: &["clap", "anyhow", "tokio", "tracing", "tracing_subscriber"],
        test_external: &[],
    },
    Layer { module: "lib", internal: &[], external: &[], test_external: &[] },
];

/// Every external crate the server depends on (a name not in this list fails the test too).
const EXTERNAL: &[&str] = &[
    "axum",
    "hyper",
    "hyper_util",
    "tokio",
    "tokio_stream",
    "tower",
    "tower_http",
    "http",
    "http_body",
    "http_body_util",
    "bytes",
    "futures_util",
    "serde",
    "serde_json",
    "diamond_types",
    "rocksdb",
    "clap",
    "thiserror",
    "tracing",
    "tracing_subscriber",
    "anyhow",
    "sha2",
    "crc32c",
    "subtle",
    "base64",
    "rand",
    "smallvec",
    "similar",
    "tokio_rustls",
    "rustls_pki_types",
    "tempfile",
    "fastcdc",
    "hex",
    "blake3",
    "lz4_flex",
    "ring",
    "object_store",
    "hyper_rustls",
    "rustls_native_certs",
    "async_trait",
    "quick_xml",
    "reqwest",
    "notify",
    "ignore",
    "indicatif",
    "clap_complete",
    "directories",
    "toml",
    "sha1",
    "httpdate",
    "infer",
    "rpassword",
    "rustix",
];

fn is_test_file(file: &str) -> bool {
    file.contains("/tests/")
        || file.ends_with("_tests.rs")
        || file.ends_with("/conformance.rs")
        || file.ends_with("/fault.rs")
}

/// Whether the file imports this crate's module `name` itself (`crate::name::{self` or
/// `crate::name;`), so that `name::` in it is the module, not the external crate of that name.
fn imports_module_itself(code: &str, name: &str) -> bool {
    code.contains(&format!("crate::{name}::{{self")) || code.contains(&format!("crate::{name};"))
}

/// The paths a file's code names: `crate::x`/`plait::x` modules and external crate roots.
fn names(code: &str) -> (Vec<String>, Vec<String>) {
    let mut internal = Vec::new();
    let mut external = Vec::new();
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if is_ident(bytes[i]) && (i == 0 || !(is_ident(bytes[i - 1]) || bytes[i - 1] == b':')) {
            let start = i;
            while i < bytes.len() && is_ident(bytes[i]) {
                i += 1;
            }
            let word = &code[start..i];
            if code[i..].starts_with("::") {
                let rest = &code[i + 2..];
                let next: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                match word {
                    "crate" | "plait" => internal.push(next),
                    // `use crate::http::{self, ..}` makes `http::` this crate's module.
                    w if imports_module_itself(code, w) => {}
                    w if EXTERNAL.contains(&w) => external.push(w.to_string()),
                    _ => {}
                }
            } else if code[..start].trim_end().ends_with("use") && EXTERNAL.contains(&word) {
                external.push(word.to_string());
            }
        } else {
            i += 1;
        }
    }
    (internal, external)
}

/// The load generator is a client: it drives servers over sockets, never their core. It uses
/// the `plait` library only for the references built from the server's own modules
/// (`text::reference*`, `store::open_synced`, `protocol` decoding, `http::serve_noop`).
const BENCH_FORBIDDEN_CRATES: &[&str] = &["axum", "diamond_types", "rocksdb"];
/// Modules of the `plait` library it must not name (as a path segment, grouped imports too).
const BENCH_FORBIDDEN_MODULES: &[&str] = &["hub", "document", "app"];

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
        let module = file.split(['/', '.']).next().unwrap_or_default();
        let Some(layer) = LAYERS.iter().find(|l| l.module == module) else {
            violations.push(format!("src/{file}: module {module} has no entry in tidy's LAYERS"));
            continue;
        };
        let code = code(&text);
        // An inline `#[cfg(test)]` module is test code, held to the layer's test allowances.
        let (main_code, test_code) = match code.find("#[cfg(test)]\nmod ") {
            Some(at) => (&code[..at], &code[at..]),
            None => (code.as_str(), ""),
        };
        let (internal, external) = names(main_code);
        let (test_internal, test_external) = names(test_code);
        let internal = internal.into_iter().chain(test_internal);
        let external = external.into_iter().map(|e| (e, false)).chain(test_external.into_iter().map(|e| (e, true)));
        for m in internal {
            if m != module && !layer.internal.contains(&m.as_str()) {
                violations.push(format!("src/{file} uses crate::{m}, which {module} may not"));
            }
        }
        for (e, in_test_module) in external {
            let allowed = layer.external.contains(&e.as_str())
                || ((in_test_module || is_test_file(&file)) && layer.test_external.contains(&e.as_str()));
            if !allowed {
                violations.push(format!("src/{file} uses the crate {e}, which {module} may not"));
            }
        }
        if code.contains("rocksdb::") && file != "store/rocks.rs" && file != "chunks/rocks.rs" {
            violations.push(format!("src/{file}: only src/store/rocks.rs and src/chunks/rocks.rs may use rocksdb"));
        }
        // The S3 engine is the one place that knows object stores and opens client connections.
        for (name, what) in [
            ("object_store", "object_store"),
            ("hyper_rustls", "hyper_rustls"),
            ("hyper_util::client", "an HTTP client"),
            ("quick_xml", "quick_xml"),
        ] {
            if names_module(&code, name) && !file.starts_with("chunks/s3/") {
                violations.push(format!("src/{file}: only src/chunks/s3/ may use {what}"));
            }
        }
        // The sync daemon's control API is the client's one HTTP server.
        if module == "client" && names_module(&code, "axum") && !file.starts_with("client/sync/control") {
            violations.push(format!("src/{file}: in the client only src/client/sync/control* may use axum"));
        }
        if module == "client" && names_module(&code, "reqwest") && file.starts_with("client/sync/control") {
            violations.push(format!("src/{file}: the control API serves; it does not call servers"));
        }
        if module == "document" && !is_test_file(&file) {
            // The core does no I/O: of the store it knows the value types, of tokio the clock.
            for token in [
                "Store",
                "Committer",
                "MemoryStore",
                "RocksStore",
                "tokio::sync",
                "tokio::task",
                "tokio::spawn",
                "std::fs",
                "std::net",
                "std::thread",
            ] {
                if code
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != ':')
                    .any(|w| w == token || w.starts_with(&format!("{token}::")))
                {
                    violations.push(format!("src/{file}: the document core may not use {token}"));
                }
            }
        }
    }
    assert!(violations.is_empty(), "architecture rules broken (see ARCHITECTURE.md):\n{}", violations.join("\n"));
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
        // Commands write their results to stdout through one module; everything else logs.
        if code.contains("println!(") && file != "main.rs" && !path.starts_with("src/client/") {
            problems.push(format!("{path} prints to stdout (use tracing)"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The repository stands on its own: no tracked text file may point at documents that live
/// outside it (a sibling `shared` checkout, a machine's absolute work directory, or the
/// team's private wire and diamond-types notes). What the code relies on is written down in
/// `spec/WIRE.md` and `docs/DIAMOND-TYPES.md` instead. The needles are assembled from pieces
/// so that this file does not match itself.
#[test]
fn no_references_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let needles = [
        ["..", "/shared"].concat(),
        ["/wo", "rk/"].concat(),
        ["braid-wire", ".md"].concat(),
        ["-notes", ".md"].concat(),
    ];
    let scope = ["src", "spec", "docs", "tests", "clients", "fuzz", "README.md", "ARCHITECTURE.md"];
    let listed = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z", "--"])
        .args(scope)
        .output()
        .expect("git ls-files (the tidy rule reads the tracked files)");
    assert!(listed.status.success(), "git ls-files failed: {}", String::from_utf8_lossy(&listed.stderr));
    let files: Vec<String> = listed
        .stdout
        .split(|&b| b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    assert!(files.iter().any(|f| f == "README.md"), "git ls-files listed no tracked files under {root:?}");
    let mut problems = Vec::new();
    for file in &files {
        let skipped = file.split('/').any(|part| part == "node_modules" || part == "target")
            || (file.starts_with("tests/data/editing-traces/") && file.ends_with(".gz"));
        if skipped {
            continue;
        }
        // A file deleted in the work tree but still tracked has nothing to check.
        let Ok(bytes) = fs::read(root.join(file)) else { continue };
        // Binary files (fuzz inputs, golden byte streams, compressed traces) are not prose.
        let Ok(text) = std::str::from_utf8(&bytes) else { continue };
        if text.contains('\0') {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            for needle in &needles {
                if line.contains(needle.as_str()) {
                    problems.push(format!("{file}:{}: names `{needle}`: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "references outside the repository (write what is needed into spec/WIRE.md or docs/DIAMOND-TYPES.md \
         and cite that instead):\n{}",
        problems.join("\n")
    );
}
