//! The `plait` command line: flags and their `PLAIT_*` environment variables.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::server::plait_binary;

/// Starts `plait serve` with only environment configuration; returns its first stdout line.
fn start_line(env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(plait_binary());
    cmd.arg("serve").env("PLAIT_LOG", "warn").env("PLAIT_AUTH", "none").stdout(Stdio::piped()).stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).expect("no start-up line");
    let _ = child.kill();
    let _ = child.wait();
    line
}

#[test]
fn configuration_comes_from_the_environment_too() {
    let line = start_line(&[("PLAIT_LISTEN", "127.0.0.1:0"), ("PLAIT_MEMORY", "1")]);
    assert!(line.starts_with("plait listening on http://127.0.0.1:"), "{line}");
    assert!(line.contains("store: memory"), "{line}");
    let dir = tempfile::tempdir().unwrap();
    let line = start_line(&[("PLAIT_LISTEN", "127.0.0.1:0"), ("PLAIT_DATA_DIR", dir.path().to_str().unwrap())]);
    assert!(line.contains(&format!("store: rocksdb at {}", dir.path().display())), "{line}");
    assert!(dir.path().join("CURRENT").exists(), "RocksDB was not created in PLAIT_DATA_DIR");
}

#[test]
fn bad_configuration_is_refused_with_a_message() {
    let out = Command::new(plait_binary()).args(["serve", "--listen", "not-an-address"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"), "{}", String::from_utf8_lossy(&out.stderr));
    let help = Command::new(plait_binary()).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in ["--listen", "--data-dir", "--memory", "--cors-origins", "PLAIT_LISTEN", "PLAIT_DATA_DIR"] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
}

#[test]
fn tls_needs_both_files_and_says_which_one_is_wrong() {
    let serve = |args: &[&str]| {
        let out = Command::new(plait_binary())
            .args(["serve", "--memory", "--listen", "127.0.0.1:0", "--auth", "none"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} should be refused");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = serve(&["--tls-cert", "/nonexistent/cert.pem"]);
    assert!(err.contains("--tls-key"), "{err}");
    let err = serve(&["--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"]);
    assert!(err.contains("TLS certificate") && err.contains("/nonexistent/cert.pem"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "not a certificate").unwrap();
    let err = serve(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", "/nonexistent/key.pem"]);
    assert!(err.contains("no CERTIFICATE"), "{err}");
}
