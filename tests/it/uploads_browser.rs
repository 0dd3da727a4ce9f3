//! Uploads from a real browser (headless Chromium through playwright-core), on a server that
//! needs a token, through a TCP proxy that cuts the connection at about half way
//! (`tests/js/cut_proxy.mjs`): the folder page's own uploader (tus-js-client, vendored into the
//! binary) and stock Uppy (Core + Tus, the npm bundle). The files are made here from a seeded
//! RNG; once the scripts are done, every committed version is read back with `GET` and its bytes
//! and `Repr-Digest` checked against the file's SHA-256. The vendored tus-js-client is checked
//! to be the npm package's file under its licence comment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use crate::support::client::request;
use crate::support::server::{Engine, TestServer};

const MIB: usize = 1 << 20;

pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn needs_browser() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run .ci/setup (the README's test command does)"
    );
    assert!(
        repo().join("tests/js/node_modules/uppy/dist/uppy.min.mjs").exists(),
        "tests/js/node_modules is missing uppy: run .ci/setup (the README's test command does)"
    );
}

/// Writes `size` bytes from a seeded RNG to `dir/name`; returns their SHA-256.
pub(crate) fn make_file(dir: &Path, name: &str, size: usize, seed: u64) -> [u8; 32] {
    let mut bytes = vec![0u8; size];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    std::fs::write(dir.join(name), &bytes).unwrap();
    Sha256::digest(&bytes).into()
}

/// A server with access control on, and a write token for `/up/` labelled "page uploads".
async fn server_and_token() -> (TestServer, String) {
    let admin: String = (0..40).map(|i| char::from(b'a' + (i * 11 % 26) as u8)).collect();
    let s = TestServer::start_with(Engine::Rocks, |cfg| {
        cfg.auth = plait::config::AuthMode::Token;
        cfg.admin_token = Some(admin.clone());
    })
    .await;
    let bearer = format!("Bearer {admin}");
    let body = br#"{"label": "page uploads", "rights": "write", "prefixes": ["/up/"]}"#;
    let res = request(s.addr, "POST", "/.plait/tokens", &[("authorization", &bearer)], body).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let token = res.json()["token"].as_str().unwrap().to_string();
    (s, token)
}

/// Runs a script of tests/js with `args` (after the server's URL) and returns its `RESULT` JSON.
pub(crate) async fn run_script(script: &str, addr: SocketAddr, args: &[&str], limit: Duration) -> serde_json::Value {
    let child = tokio::process::Command::new("node")
        .arg(repo().join("tests/js").join(script))
        .arg(format!("http://{addr}"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node is required for the browser tests");
    let out = tokio::time::timeout(limit, child.wait_with_output()).await.expect("the script timed out").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stdout.contains(" passed, 0 failed"), "{script} failed:\n{stdout}\n{stderr}");
    eprintln!("{stdout}");
    let line = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")).expect("a RESULT line");
    serde_json::from_str(line).unwrap()
}

/// The committed version at `path` has exactly the bytes whose SHA-256 is `sha256`, and says so
/// in `Repr-Digest`.
async fn assert_committed(s: &TestServer, token: &str, path: &str, sha256: &[u8; 32]) {
    assert_committed_at(s.addr, Some(token), path, sha256).await
}

/// [`assert_committed`] on the server at `addr`, with a token or none.
pub(crate) async fn assert_committed_at(addr: SocketAddr, token: Option<&str>, path: &str, sha256: &[u8; 32]) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let auth: Vec<(&str, &str)> = bearer.iter().map(|b| ("authorization", b.as_str())).collect();
    let res = request(addr, "GET", path, &auth, b"").await;
    assert_eq!(res.status, 200, "GET {path}: {}", res.text());
    assert_eq!(Sha256::digest(&res.body).as_slice(), sha256, "{path}: the bytes differ from the file");
    let want = format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(sha256));
    assert_eq!(res.header("repr-digest"), Some(want.as_str()), "{path}: Repr-Digest");
}

/// The folder page in Chromium: sign in with a token, a 40 MiB file cut at half way resumes by
/// itself, pause and resume, a reload mid-upload and the same file chosen again, the browser
/// offline and back, a synthetic drop; the listing shows them all; the screenshot is kept under
/// the target directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_folder_page_uploads_through_cuts_pauses_and_reloads() {
    needs_browser();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("big-a.bin", 40 * MIB, 17),
        ("big-b.bin", 24 * MIB, 18),
        ("big-c.bin", 32 * MIB, 19),
        ("big-d.bin", 24 * MIB, 20),
    ];
    let digests: Vec<[u8; 32]> = files.iter().map(|(n, size, seed)| make_file(dir.path(), n, *size, *seed)).collect();
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("upload-page.png");
    let _ = std::fs::remove_file(&shot);
    let (s, token) = server_and_token().await;

    let result = run_script(
        "upload_page.mjs",
        s.addr,
        &[&token, dir.path().to_str().unwrap(), shot.to_str().unwrap()],
        Duration::from_secs(300),
    )
    .await;

    for ((name, ..), sha) in files.iter().zip(&digests) {
        assert_committed(&s, &token, &format!("/up/{name}"), sha).await;
    }
    let dropped: [u8; 32] = Sha256::digest("dropped on the page\n".repeat(1000)).into();
    assert_committed(&s, &token, "/up/dropped%20note%20%C3%A9.txt", &dropped).await;
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 1000, "no screenshot at {}", shot.display());
    eprintln!("upload page: {result}\nscreenshot: {}\ntook {:?}", shot.display(), started.elapsed());
    s.stop().await;
}

/// Stock Uppy (Core + Tus) in Chromium, from a page of another origin, through a cut at half way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_uppy_resumes_after_a_cut() {
    needs_browser();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let sha = make_file(dir.path(), "uppy-40.bin", 40 * MIB, 23);
    let (s, token) = server_and_token().await;
    let file = dir.path().join("uppy-40.bin");
    let result =
        run_script("uppy_tus.mjs", s.addr, &[&token, file.to_str().unwrap(), "/up/uppy/"], Duration::from_secs(240))
            .await;
    assert_committed(&s, &token, "/up/uppy/uppy-40.bin", &sha).await;
    // The reference for the figures (not asserted: a shared machine): the same bytes as one
    // plain PUT from curl, on the same server, in the same run.
    let t = Instant::now();
    let put = tokio::process::Command::new("curl")
        .args(["-sS", "-f", "-o", "/dev/null", "-T", file.to_str().unwrap(), "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("http://{}/up/uppy/reference.bin", s.addr))
        .status()
        .await
        .expect("curl is required (.ci/setup installs it)");
    assert!(put.success(), "the reference PUT failed");
    assert_committed(&s, &token, "/up/uppy/reference.bin", &sha).await;
    let reference_ms = t.elapsed().as_millis();
    eprintln!(
        "uppy: {result}\nreference (curl PUT of the same bytes): {reference_ms} ms\ntook {:?}",
        started.elapsed()
    );
    s.stop().await;
}

/// The tus-js-client served at `/.plait/client/tus.min.js` is npm's tus-js-client 4.3.1
/// `dist/tus.min.js`, byte for byte, under a licence comment.
#[test]
fn the_vendored_tus_js_client_is_the_npm_file() {
    let npm = repo().join("tests/js/node_modules/tus-js-client");
    let package: serde_json::Value =
        serde_json::from_slice(&std::fs::read(npm.join("package.json")).expect("run .ci/setup")).unwrap();
    assert_eq!(package["version"], "4.3.1", "tests/js pins the version the server vendors");
    let vendored = std::fs::read_to_string(repo().join("src/http/assets/tus.min.js")).unwrap();
    let (comment, rest) = vendored.split_once("*/\n").unwrap();
    assert!(comment.starts_with("/*! tus-js-client 4.3.1") && comment.contains("The MIT License"), "{comment}");
    assert_eq!(rest.as_bytes(), std::fs::read(npm.join("dist/tus.min.js")).unwrap(), "the vendored file was changed");
}
