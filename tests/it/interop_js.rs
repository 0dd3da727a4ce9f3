//! Interop with clients nobody here wrote: braid-http's `braid_fetch` (npm), and our own
//! simpleton client in clients/js, run by Node against a real server.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::support::server::{Engine, TestServer};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn run_node(script: &str, server: &TestServer, extra: &[&str]) {
    run_node_at(script, &format!("http://{}", server.addr), extra, &[]).await;
}

/// Runs a script from tests/js against `url` (any server or proxy) with extra environment.
pub(crate) async fn run_node_at(script: &str, url: &str, extra: &[&str], env: &[(&str, &str)]) {
    let modules = repo().join("tests/js/node_modules/braid-http");
    assert!(modules.exists(), "tests/js/node_modules is missing: run .ci/setup (the README's test command does)");
    let child = tokio::process::Command::new("node")
        .arg(repo().join("tests/js").join(script))
        .arg(url)
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node is required for the interop tests");
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("node script timed out")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(" passed, 0 failed"), "{script} printed no summary:\n{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn braid_fetch_from_node() {
    let s = TestServer::start(Engine::Rocks).await;
    run_node("braid_fetch_interop.mjs", &s, &[]).await;
    s.stop().await;
}

/// braid_fetch subscribing to a file resource, as braidfs does for blobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn braid_fetch_subscribes_to_a_file() {
    let s = TestServer::start(Engine::Rocks).await;
    run_node("braid_fetch_file.mjs", &s, &[]).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simpleton_clients_converge() {
    let s = TestServer::start(Engine::Memory).await;
    for seed in ["1", "2", "3"] {
        run_node("simpleton_converge.mjs", &s, &[seed]).await;
    }
    s.stop().await;
}

/// The JavaScript client's own unit tests (node:test), so they run with the suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_client_unit_tests() {
    let dir = repo().join("clients/js");
    let out =
        tokio::process::Command::new("node").args(["--test", "test/"]).current_dir(&dir).kill_on_drop(true).output();
    let out = tokio::time::timeout(Duration::from_secs(120), out).await.expect("node --test timed out").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "clients/js tests failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("# fail 0"), "{stdout}");
}

/// The live editor in headless Chromium through playwright-core (tests/js/editor_browser.mjs).
/// The screenshot is kept as a test artifact under the target directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_editor_in_a_real_browser() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run .ci/setup (the README's test command does)"
    );
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("editor.png");
    let _ = std::fs::remove_file(&shot);
    let s = TestServer::start(Engine::Rocks).await;
    run_node("editor_browser.mjs", &s, &[shot.to_str().unwrap()]).await;
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 1000, "no screenshot at {}", shot.display());
    eprintln!("editor screenshot: {}", shot.display());
    s.stop().await;
}

/// A folder as a page in headless Chromium (tests/js/folder_page.mjs): rows for a document, a
/// file and a sub-folder, and links that open the editor, the file and the sub-folder's page.
/// The screenshot is kept as a test artifact under the target directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_is_a_page_in_a_real_browser() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run .ci/setup (the README's test command does)"
    );
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("folder.png");
    let _ = std::fs::remove_file(&shot);
    let s = TestServer::start(Engine::Rocks).await;
    run_node("folder_page.mjs", &s, &[shot.to_str().unwrap()]).await;
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 1000, "no screenshot at {}", shot.display());
    eprintln!("folder page screenshot: {}", shot.display());
    s.stop().await;
}

/// The same browser test over HTTPS (rustls, self-signed) with the pages loaded over h2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_editor_over_https_h2() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = crate::http2::self_signed(dir.path());
    let s = TestServer::start_with(Engine::Memory, |cfg| {
        cfg.tls_cert = Some(cert.clone());
        cfg.tls_key = Some(key.clone());
    })
    .await;
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("editor-h2.png");
    let url = format!("https://localhost:{}", s.addr.port());
    // Node's fetch (the script's own GETs) must accept the self-signed certificate.
    run_node_at("editor_browser.mjs", &url, &[shot.to_str().unwrap(), "h2"], &[("NODE_TLS_REJECT_UNAUTHORIZED", "0")])
        .await;
    s.stop().await;
}

/// Share links in headless Chromium on a server that requires tokens
/// (tests/js/share_browser.mjs): a write link edits with no account, a subscribe link
/// watches live, the document's own URL stays closed, and revoking the write link stops the
/// page that used it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_links_in_a_real_browser() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    use crate::support::client::request;

    let admin: String = (0..40).map(|i| char::from(b'a' + (i * 7 % 26) as u8)).collect();
    let s = TestServer::start_with(Engine::Rocks, |cfg| {
        cfg.auth = plait::config::AuthMode::Token;
        cfg.admin_token = Some(admin.clone());
    })
    .await;
    let bearer = format!("Bearer {admin}");
    let auth = [("authorization", bearer.as_str())];
    let doc = "/shared/browser-doc";
    assert_eq!(request(s.addr, "PUT", doc, &auth, b"shared").await.status, 200);
    let share = |rights: &'static str| {
        let body = format!(r#"{{"path": "{doc}", "rights": "{rights}"}}"#);
        async move {
            let res = request(s.addr, "POST", "/.plait/shares", &auth, body.as_bytes()).await;
            assert_eq!(res.status, 201, "{}", res.text());
            let json = res.json();
            (json["href"].as_str().unwrap().to_string(), json["id"].as_str().unwrap().to_string())
        }
    };
    let (write_href, write_id) = share("write").await;
    let (watch_href, _) = share("subscribe").await;

    let mut child = tokio::process::Command::new("node")
        .arg(repo().join("tests/js/share_browser.mjs"))
        .args([format!("http://{}", s.addr), write_href, watch_href, doc.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node is required for the interop tests");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let ready = tokio::time::timeout(Duration::from_secs(100), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line == "READY-TO-REVOKE";
            seen.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    let stderr = child.stderr.take().unwrap();
    if ready != Ok(true) {
        let mut err = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut tokio::io::BufReader::new(stderr), &mut err).await;
        panic!("share_browser.mjs did not get to the revocation step:\n{}\n{err}", seen.join("\n"));
    }
    let revoked = request(s.addr, "DELETE", &format!("/.plait/shares/{write_id}"), &auth, b"").await;
    assert_eq!(revoked.status, 204);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"revoked\n").await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait()).await.expect("script timed out").unwrap();
    while let Ok(Some(line)) = lines.next_line().await {
        seen.push(line);
    }
    let mut err = String::new();
    let _ = tokio::io::AsyncReadExt::read_to_string(&mut tokio::io::BufReader::new(stderr), &mut err).await;
    let out = seen.join("\n");
    assert!(status.success() && out.contains(" passed, 0 failed"), "share_browser.mjs failed:\n{out}\n{err}");
    s.stop().await;
}
