//! The daemon's shell with a fake engine: config files, folder resolution, control addresses,
//! and a whole run over a Unix socket (the control API's routes through `ask`, pause, resume
//! and rescan reaching the engines, failures on the board, a clean stop).

use std::time::Instant;

use reqwest::Method;
use serde_json::Value;

use super::*;
use crate::client::config::ServerEntry;
use crate::client::sync::ask::ask;
use crate::client::sync::status::{Activity, Conflict};

fn entry(dir: &str, url: &str) -> FolderEntry {
    FolderEntry { dir: dir.into(), url: url.into(), ..Default::default() }
}

fn user_with(origin: &str, token: &str) -> UserConfig {
    let mut u = UserConfig::default();
    u.servers.insert(origin.into(), ServerEntry { token: token.into() });
    u
}

#[test]
fn folders_resolve_to_absolute_dirs_folder_urls_and_tokens() {
    let user = user_with("http://a.test:8080", "plait_stored");
    let mut own = entry("/data/two", "http://b.test/shared");
    own.token = Some("plait_own".into());
    own.rescan_secs = Some(5);
    let specs = resolve(
        &[entry("/data/one/./x/..", "http://a.test:8080/notes/?q#f"), own],
        &Defaults { device: Some("laptop".into()), rescan_secs: Some(60) },
        &user,
    )
    .unwrap();
    assert_eq!(specs[0].dir, PathBuf::from("/data/one"));
    assert_eq!(specs[0].url.as_str(), "http://a.test:8080/notes/");
    if std::env::var_os("PLAIT_TOKEN").is_none() {
        assert_eq!(specs[0].token.as_deref(), Some("plait_stored"), "the user config's token for that server");
    }
    assert_eq!(specs[0].rescan_every, Duration::from_secs(60));
    assert_eq!(specs[1].url.as_str(), "http://b.test/shared/", "a folder URL ends in /");
    assert_eq!(specs[1].token.as_deref(), Some("plait_own"));
    assert_eq!(specs[1].rescan_every, Duration::from_secs(5));
    assert!(specs.iter().all(|s| s.device == "laptop"));
    assert_ne!(specs[0].state_dir, specs[1].state_dir);
    // The same folder with another server gets its own database.
    let other = resolve(&[entry("/data/one", "http://c.test/notes/")], &Defaults::default(), &user).unwrap();
    assert_ne!(other[0].state_dir, specs[0].state_dir);
    assert!(!other[0].device.is_empty(), "the host name by default");
}

#[test]
fn overlapping_folders_bad_urls_and_state_inside_the_folder_are_usage_errors() {
    let user = UserConfig::default();
    let d = Defaults::default();
    let usage = |entries: &[FolderEntry]| match resolve(entries, &d, &user) {
        Err(ClientError::Usage(m)) => m,
        other => panic!("expected a usage error, got {other:?}"),
    };
    assert!(usage(&[entry("/a", "http://x/1/"), entry("/a/b", "http://x/2/")]).contains("overlap"));
    assert!(usage(&[entry("/a", "http://x/1/"), entry("/a/", "http://y/1/")]).contains("overlap"));
    assert!(usage(&[entry("/a", "ftp://x/1/")]).contains("http"));
    assert!(usage(&[entry("/a", "not a url")]).contains("not a URL"));
    let mut inside = entry("/a", "http://x/1/");
    inside.state_dir = Some("/a/.state".into());
    assert!(usage(&[inside]).contains("inside the synced folder"));
    let mut never = entry("/a", "http://x/1/");
    never.rescan_secs = Some(0);
    assert!(usage(&[never]).contains("rescan_secs"));
}

#[test]
fn config_files_are_checked_and_relative_dirs_follow_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("sync.toml");
    std::fs::write(
        &path,
        "control = \"127.0.0.1:0\"\ndevice = \"d\"\n[[folder]]\ndir = \"notes\"\nurl = \"http://x/n/\"\n\
         [[folder]]\ndir = \"/abs\"\nurl = \"http://y/m/\"\ntoken = \"t\"\nrescan_secs = 9\n",
    )
    .unwrap();
    let c = DaemonConfig::load(&path).unwrap();
    assert_eq!(c.control.as_deref(), Some("127.0.0.1:0"));
    assert_eq!(c.folders.len(), 2);
    assert_eq!(c.folders[0].dir, tmp.path().join("notes"));
    assert_eq!(c.folders[1].token.as_deref(), Some("t"));
    for (text, want) in [
        ("[[folder]]\ndir = \"a\"\nurl = \"http://x/\"\ntokn = \"typo\"\n", "tokn"),
        ("device = \"d\"\n", "no [[folder]]"),
        ("[[folder]]\ndir = 3\n", "not a valid sync config"),
    ] {
        std::fs::write(&path, text).unwrap();
        let e = DaemonConfig::load(&path).unwrap_err();
        assert!(matches!(&e, ClientError::Usage(m) if m.contains(want)), "{text:?}: {e}");
    }
    let missing = DaemonConfig::load(&tmp.path().join("none.toml")).unwrap_err();
    assert_eq!(missing.exit_code() as i32, 2);
}

#[test]
fn control_addresses_are_loopback_ports_or_sockets() {
    assert_eq!(ControlAddr::parse("127.0.0.1:0").unwrap(), ControlAddr::Tcp("127.0.0.1:0".parse().unwrap()));
    assert_eq!(ControlAddr::parse("http://[::1]:99/").unwrap(), ControlAddr::Tcp("[::1]:99".parse().unwrap()));
    assert_eq!(ControlAddr::parse("unix:/run/x.sock").unwrap(), ControlAddr::Unix("/run/x.sock".into()));
    assert_eq!(ControlAddr::parse("/run/x.sock").unwrap(), ControlAddr::Unix("/run/x.sock".into()));
    assert!(matches!(ControlAddr::parse("0.0.0.0:80"), Err(ClientError::Usage(m)) if m.contains("loopback")));
    assert!(ControlAddr::parse("localhost").is_err());
    let a = ControlAddr::Tcp("127.0.0.1:5".parse().unwrap());
    assert_eq!(ControlAddr::parse(&a.display()).unwrap(), a, "the ready line's form parses back");
}

/// A fake engine: idle at once with one conflict and one activity line; follows pause and
/// resume; records rescans; a folder named `broken` fails.
fn fake_runner() -> Runner {
    Arc::new(|spec: FolderSpec, board: StatusBoard, mut stop: watch::Receiver<bool>| {
        Box::pin(async move {
            let dir = key(&spec);
            if dir.ends_with("broken") {
                return Err(ClientError::Local("database corrupt".into()));
            }
            board.update(&dir, |s| {
                s.state = FolderState::Idle;
                s.writable = true;
                s.conflicts.push(Conflict { path: "a.bin".into(), copy: "a (conflict).bin".into(), versions: vec![] });
            });
            board.record(
                &dir,
                Activity { at_ms: 1, what: "uploaded".into(), path: "a.txt".into(), detail: String::new() },
            );
            loop {
                let asked = board.asked();
                let paused = board.is_paused(&dir);
                board.update(&dir, |s| s.state = if paused { FolderState::Paused } else { FolderState::Idle });
                if board.take_rescan(&dir) {
                    board.record(
                        &dir,
                        Activity { at_ms: 2, what: "rescanned".into(), path: String::new(), detail: String::new() },
                    );
                }
                tokio::select! {
                    _ = asked => {}
                    _ = stop.wait_for(|s| *s) => return Ok(()),
                }
            }
        }) as FolderRun
    })
}

/// Asks until `check` holds on the answer, for at most 10 seconds.
async fn until(addr: &ControlAddr, route: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = ask(addr, Method::GET, route, &[]).await.unwrap();
        if check(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{route}: never got there: {v}");
        tokio::task::yield_now().await;
    }
}

fn state_of(v: &Value, dir: &Path) -> String {
    let folders = v["folders"].as_array().unwrap();
    let f = folders.iter().find(|f| f["dir"] == dir.display().to_string()).unwrap();
    f["state"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_api_shows_the_engines_and_passes_requests_to_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let entries = [entry(one.to_str().unwrap(), "http://a.test/x/"), entry(two.to_str().unwrap(), "http://b.test/y/")];
    let mut specs =
        resolve(&entries, &Defaults { device: Some("t".into()), ..Default::default() }, &UserConfig::default())
            .unwrap();
    for (i, s) in specs.iter_mut().enumerate() {
        s.state_dir = tmp.path().join(format!("state{i}"));
    }
    let sock = tmp.path().join("run/sync.sock");
    let addr = ControlAddr::Unix(sock.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(run(specs, addr.clone(), fake_runner(), async {
        let _ = stop_rx.await;
    }));

    let v = until(&addr, "/v1/status", |v| {
        v["folders"].as_array().is_some_and(|f| f.len() == 2 && f.iter().all(|f| f["state"] == "idle"))
    })
    .await;
    assert_eq!(v["folders"][0]["url"], "http://a.test/x/");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the socket is the user's only");
    }

    let paused = ask(&addr, Method::POST, "/v1/pause", &[("dir", format!("{}/", one.display()))]).await.unwrap();
    assert_eq!(paused["folders"], serde_json::json!([one.display().to_string()]));
    let v = until(&addr, "/v1/status", |v| state_of(v, &one) == "paused").await;
    assert_eq!(state_of(&v, &two), "idle", "only the folder named");
    ask(&addr, Method::POST, "/v1/resume", &[]).await.unwrap();
    until(&addr, "/v1/status", |v| state_of(v, &one) == "idle").await;

    ask(&addr, Method::POST, "/v1/rescan", &[("dir", two.display().to_string())]).await.unwrap();
    let v = until(&addr, "/v1/activity", |v| v["activity"][0]["what"] == "rescanned").await;
    assert_eq!(v["activity"][0]["dir"], two.display().to_string());
    assert_eq!(v["activity"].as_array().unwrap().len(), 3, "two uploads and one rescan, newest first");
    let v = ask(&addr, Method::GET, "/v1/activity", &[("limit", "1".into())]).await.unwrap();
    assert_eq!(v["activity"].as_array().unwrap().len(), 1);
    let v = ask(&addr, Method::GET, "/v1/conflicts", &[]).await.unwrap();
    assert_eq!(v["conflicts"].as_array().unwrap().len(), 2);
    assert_eq!(v["conflicts"][0]["copy"], "a (conflict).bin");

    let unknown = ask(&addr, Method::POST, "/v1/pause", &[("dir", "/nowhere".into())]).await.unwrap_err();
    assert!(matches!(&unknown, ClientError::Status { status: 404, code: Some(c), .. } if c == "unknown_folder"));
    let bad = ask(&addr, Method::GET, "/v1/activity", &[("limit", "lots".into())]).await.unwrap_err();
    assert!(matches!(&bad, ClientError::Status { status: 400, code: Some(c), .. } if c == "bad_query"));
    let wrong = ask(&addr, Method::DELETE, "/v1/status", &[]).await.unwrap_err();
    assert!(matches!(&wrong, ClientError::Status { status: 405, .. }), "{wrong:?}");

    // A second daemon on the same socket is refused while the first one answers.
    let again = control::bind(&addr).await.err().unwrap();
    assert!(again.to_string().contains("another sync daemon"), "{again}");

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), daemon).await.unwrap().unwrap().unwrap();
    assert!(!sock.exists(), "the socket is removed on a clean stop");
    let gone = ask(&addr, Method::GET, "/v1/status", &[]).await.unwrap_err();
    assert_eq!(gone.exit_code() as i32, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_engine_shows_on_the_board_and_all_failed_stops_the_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken");
    let mut specs =
        resolve(&[entry(broken.to_str().unwrap(), "http://a.test/x/")], &Defaults::default(), &UserConfig::default())
            .unwrap();
    specs[0].state_dir = tmp.path().join("state");
    let addr = ControlAddr::Unix(tmp.path().join("s.sock"));
    // Never told to stop: it must end by itself, with an error.
    let outcome =
        tokio::time::timeout(Duration::from_secs(10), run(specs, addr, fake_runner(), std::future::pending::<()>()))
            .await
            .unwrap();
    assert!(matches!(outcome, Err(ClientError::Local(m)) if m.contains("every folder failed")));
    // A stale socket file (a daemon killed with -9) does not stop the next one.
    let stale = tmp.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let bound = control::bind(&ControlAddr::Unix(stale.clone())).await.unwrap();
    assert_eq!(bound.address(), &ControlAddr::Unix(stale));
}
