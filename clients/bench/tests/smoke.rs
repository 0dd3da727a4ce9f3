//! `plait-bench --smoke`: every benchmark scenario runs end to end at a tiny size, against the
//! `plait` binary built next to it, so the load generator keeps working (benchmarks are not
//! timed tests: no figure is asserted here, only that each scenario ran, checked its own
//! correctness, and reported its rows). Also: a missing `plait` binary is a clear error.
//!
//! The `plait` binary is the one `cargo test` builds for the server's own integration tests
//! (both packages are default members of the workspace, so the README's `cargo test` builds
//! both before running any test).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn plait_bench() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plait-bench"))
}

fn traces() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/editing-traces")
}

/// Runs `exe` with `args`, with no `PLAIT_BIN` from the caller's environment.
fn run(exe: &Path, args: &[&str]) -> Output {
    Command::new(exe)
        .args(args)
        .arg("--traces")
        .arg(traces())
        .env_remove("PLAIT_BIN")
        .env_remove("PLAIT_TRACES")
        .output()
        .unwrap()
}

#[test]
fn every_scenario_runs_at_smoke_size() {
    let out = run(&plait_bench(), &["--smoke"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "plait-bench --smoke failed:\n{stdout}\n{stderr}");
    for scenario in [
        "B1", "B2", "B3", "B4", "B5", "B6", "B7", "I15 ref", "FILES", "F1", "F2", "F3", "F4", "F5", "U1", "U2", "U3",
        "S1", "S2", "S3",
    ] {
        assert!(stdout.contains(&format!("| {scenario}")), "no {scenario} row in:\n{stdout}");
    }
    assert!(stdout.starts_with("| scenario | metric |"), "a Markdown table on stdout:\n{stdout}");
}

#[test]
fn a_missing_plait_binary_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();

    // Named with --plait: the flag and the path are in the message.
    let missing = dir.path().join("no-such-plait");
    let out = run(&plait_bench(), &["--smoke", "--scenarios", "B7", "--plait", missing.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "ran without a plait binary:\n{stderr}");
    assert!(stderr.contains("--plait") && stderr.contains("no-such-plait"), "unclear error:\n{stderr}");
    assert!(out.stdout.is_empty(), "printed a table:\n{}", String::from_utf8_lossy(&out.stdout));

    // Not named, and no `plait` next to the executable: says how to build it.
    let lonely = dir.path().join("plait-bench");
    std::fs::copy(plait_bench(), &lonely).unwrap();
    let out = run(&lonely, &["--smoke", "--scenarios", "B7"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "ran without a plait binary:\n{stderr}");
    assert!(stderr.contains("cargo build --release") && stderr.contains("--plait"), "unclear error:\n{stderr}");
}
