//! `plait bench --smoke`: every benchmark scenario runs end to end at a tiny size, so the
//! load generator keeps working (benchmarks are not timed tests: no figure is asserted here,
//! only that each scenario ran, checked its own correctness, and reported its rows).

use std::process::Command;

use crate::support::server::plait_binary;

#[test]
fn every_scenario_runs_at_smoke_size() {
    let traces = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/editing-traces");
    let out = Command::new(plait_binary())
        .args(["bench", "--smoke", "--traces"])
        .arg(&traces)
        .env("PLAIT_TRACES", &traces)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "plait bench --smoke failed:\n{stdout}\n{stderr}");
    for scenario in ["B1", "B2", "B3", "B4", "B5", "B6", "B7"] {
        assert!(stdout.contains(&format!("| {scenario}")), "no {scenario} row in:\n{stdout}");
    }
    assert!(stdout.starts_with("| scenario | metric |"), "a Markdown table on stdout:\n{stdout}");
}
