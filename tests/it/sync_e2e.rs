//! `plait sync` end to end, all real processes (issue 18's "Tested by"): one `plait serve` with
//! RocksDB in a temp dir (stopped and restarted on the same port), two `plait sync` daemons on
//! two temp dirs; scripted then seeded-random file operations on both sides, a period with the
//! server stopped, `kill -9` of a daemon during a transfer; at the end both folders equal the
//! server's folder (plus the conflict copies the daemons report) and no write is lost. Bytes on
//! the wire for a delta are asserted from the server's counters. Also: the daemon's command
//! line and control API, and one daemon syncing two folders on two servers from `--config`.
//!
//! Every wait is on the control API's status and the server's change log (`sync_e2e_kit`),
//! bounded; the seed of the random phase is printed (`PLAIT_SYNC_SEED` replays it).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::client::request;
use crate::support::killable::seed_from_env;
use crate::sync_e2e_kit::{noise, save, tail, until_synced, Daemon, Server};

const MIB: usize = 1 << 20;

/// Waits (bounded) until `check` holds on the daemon's first folder status.
async fn until_state(d: &Daemon, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = d.folder().await;
        if check(&st) {
            return st;
        }
        assert!(Instant::now() < deadline, "never {what}: {st}\n{}", tail(&d.log));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn text(t: &BTreeMap<String, Vec<u8>>, path: &str) -> String {
    String::from_utf8_lossy(t.get(path).unwrap_or_else(|| panic!("{path} is not on the server"))).into_owned()
}

/// One side's random operations on its own paths (`<side>/...`), and the model of what its
/// folder must hold afterwards (so every final local write must be on the server).
struct Side {
    name: &'static str,
    model: BTreeMap<String, Vec<u8>>,
    rng: u64,
}

impl Side {
    fn next(&mut self, n: u64) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % n
    }

    fn pick(&mut self) -> Option<String> {
        if self.model.is_empty() {
            return None;
        }
        let i = self.next(self.model.len() as u64) as usize;
        self.model.keys().nth(i).cloned()
    }

    /// One random operation in `dir`.
    fn step(&mut self, dir: &Path, i: usize) {
        let sub = ["", "sub/", "sub/deeper/"][self.next(3) as usize];
        let fresh = format!("{}/{sub}r{i}.", self.name);
        match self.next(8) {
            0 | 1 => {
                let body = format!("{} note {i}\nsecond line\n", self.name).into_bytes();
                let path = format!("{fresh}txt");
                save(dir, &path, &body);
                self.model.insert(path, body);
            }
            2 => {
                let len = 1 + self.next(200_000) as usize;
                let body = noise(self.rng, len);
                let path = format!("{fresh}bin");
                save(dir, &path, &body);
                self.model.insert(path, body);
            }
            3 => {
                if let Some(p) = self.pick() {
                    let body = self.model.get_mut(&p).unwrap();
                    body.extend_from_slice(format!("appended {i}\n").as_bytes());
                    let body = body.clone();
                    save(dir, &p, &body);
                }
            }
            4 => {
                if let Some(p) = self.pick() {
                    let body = self.model.get_mut(&p).unwrap();
                    body.truncate(body.len() / 2);
                    let body = body.clone();
                    save(dir, &p, &body);
                }
            }
            5 => {
                if let Some(p) = self.pick() {
                    let ext = p.rsplit('.').next().unwrap_or("bin").to_owned();
                    let to = format!("{fresh}{ext}");
                    std::fs::create_dir_all(dir.join(&to).parent().unwrap()).unwrap();
                    std::fs::rename(dir.join(&p), dir.join(&to)).unwrap();
                    let body = self.model.remove(&p).unwrap();
                    self.model.insert(to, body);
                }
            }
            6 => {
                if let Some(p) = self.pick() {
                    std::fs::remove_file(dir.join(&p)).unwrap();
                    self.model.remove(&p);
                }
            }
            _ => {
                if let Some(p) = self.pick() {
                    let body = format!("{} rewrote {i}\n", self.name).into_bytes();
                    if p.ends_with(".txt") {
                        save(dir, &p, &body);
                        self.model.insert(p, body);
                    }
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_and_one_server_converge_and_lose_no_write() {
    let tmp = tempfile::tempdir().unwrap();
    let (da, db) = (tmp.path().join("a"), tmp.path().join("b"));
    let mut server = Server::start(&tmp.path().join("data"), &tmp.path().join("server.log"));
    let url = format!("http://{}/f/", server.addr);
    let mut a = Daemon::start_folder(&da, &url, &tmp.path().join("sa"), "a", &tmp.path().join("a.log"));
    let mut b = Daemon::start_folder(&db, &url, &tmp.path().join("sb"), "b", &tmp.path().join("b.log"));
    macro_rules! synced {
        () => {
            until_synced(&server, "/f/", &[(&a, &da), (&b, &db)]).await
        };
    }
    synced!();

    // 1. Scripted creates on both sides: text, small and large binary, nested folders.
    save(&da, "notes.txt", b"line one\nline two\nline three\n");
    save(&da, "docs/deep/readme.md", b"# Read me\n\nSome words.\n");
    let photo = noise(1, 3000);
    save(&da, "img/photo.bin", &photo);
    let mut big = noise(2, 12 * MIB);
    save(&da, "big.bin", &big);
    save(&db, "todo.txt", b"b's list\n");
    let t = synced!();
    assert_eq!(text(&t, "notes.txt"), "line one\nline two\nline three\n");
    assert_eq!(t["big.bin"], big);
    assert_eq!(text(&t, "todo.txt"), "b's list\n");

    // 2. A 1 MiB change in the middle of the large file sends about one chunk.
    let (chunks0, bodies0) = server.received().await;
    big[6 * MIB..7 * MIB].copy_from_slice(&noise(3, MIB));
    save(&da, "big.bin", &big);
    let t = synced!();
    assert_eq!(t["big.bin"], big);
    let (chunks1, bodies1) = server.received().await;
    let sent = (chunks1 - chunks0) + (bodies1 - bodies0);
    eprintln!(
        "a 1 MiB change in a 12 MiB file sent {sent} bytes ({} chunk, {} body)",
        chunks1 - chunks0,
        bodies1 - bodies0
    );
    assert!(sent >= MIB as u64, "the changed MiB must be sent ({sent})");
    // The changed MiB lies in one to three chunks (1 MiB on average, 4 MiB at most), where a
    // whole-file upload would send 12 MiB.
    assert!(sent <= 6 * MIB as u64, "a 1 MiB change sent {sent} bytes of a 12 MiB file");

    // 3. A rename costs no upload; then append, truncate, delete, on both sides.
    let (c0, b0) = server.received().await;
    std::fs::rename(db.join("img/photo.bin"), db.join("img/renamed.bin")).unwrap();
    let t = synced!();
    assert_eq!(t["img/renamed.bin"], photo);
    assert!(!t.contains_key("img/photo.bin"));
    assert_eq!(server.received().await, (c0, b0), "a rename sends no bytes");
    let mut todo = std::fs::read(db.join("todo.txt")).unwrap();
    todo.extend_from_slice(b"more\n");
    save(&db, "todo.txt", &todo);
    std::fs::OpenOptions::new().write(true).open(da.join("docs/deep/readme.md")).unwrap().set_len(8).unwrap();
    std::fs::create_dir_all(da.join("empty/inner")).unwrap();
    save(&da, "empty/inner/leaf.txt", b"leaf\n");
    std::fs::remove_file(da.join("img/renamed.bin")).unwrap();
    let t = synced!();
    assert_eq!(text(&t, "todo.txt"), "b's list\nmore\n");
    assert_eq!(text(&t, "docs/deep/readme.md"), "# Read m");
    assert_eq!(text(&t, "empty/inner/leaf.txt"), "leaf\n");
    assert!(!t.contains_key("img/renamed.bin"), "the delete reached the server");

    // 4. The server stops; both sides edit the same text file (and more) offline; it comes
    //    back on the same port and the edits merge, with no conflict copy.
    server.stop();
    until_state(&a, "offline", |s| s["state"] == "offline").await;
    until_state(&b, "offline", |s| s["state"] == "offline").await;
    save(&da, "notes.txt", b"line ONE\nline two\nline three\n");
    save(&db, "notes.txt", b"line one\nline two\nline THREE\n");
    save(&db, "offline.txt", b"written while the server was down\n");
    std::fs::remove_file(da.join("todo.txt")).unwrap();
    for d in [&a, &b] {
        // `plait sync status` shows the offline work as pending (two paths on each side).
        until_state(d, "2 pending while offline", |s| s["state"] == "offline" && s["pending_up"] == 2).await;
    }
    server.restart();
    let t = synced!();
    assert_eq!(text(&t, "notes.txt"), "line ONE\nline two\nline THREE\n", "the two offline edits merge");
    assert_eq!(text(&t, "offline.txt"), "written while the server was down\n");
    assert!(!t.contains_key("todo.txt"));
    assert!(a.conflict_copies().await.is_empty() && b.conflict_copies().await.is_empty(), "text never conflicts");

    // 5. `kill -9` of a daemon while it sends a large file; restarted on the same state, it
    //    finishes the transfer and duplicates nothing.
    let video = noise(20, 16 * MIB);
    save(&db, "video.bin", &video);
    until_state(&b, "sending video.bin", |s| {
        s["transfers"].as_array().is_some_and(|t| !t.is_empty()) || s["pending_up"].as_u64().unwrap_or(0) > 0
    })
    .await;
    b.kill9_and_restart();
    let t = synced!();
    assert_eq!(t["video.bin"], video);
    let h = request(server.addr, "GET", "/.plait/history/f/video.bin", &[], b"").await.json();
    assert_eq!(h["versions"].as_array().unwrap().len(), 1, "one version after a kill -9: {h}");

    // 6. Seeded random operations on both sides, then the model of each side's own paths must
    //    be exactly what the server and both folders hold.
    let seed = seed_from_env("PLAIT_SYNC_SEED");
    eprintln!("sync_e2e random phase: PLAIT_SYNC_SEED={seed}");
    let mut sides = [
        Side { name: "ra", model: BTreeMap::new(), rng: seed | 1 },
        Side { name: "rb", model: BTreeMap::new(), rng: (seed ^ 0x5555_5555) | 1 },
    ];
    for i in 0..60 {
        let (side, dir) = if i % 2 == 0 { (&mut sides[0], &da) } else { (&mut sides[1], &db) };
        side.step(dir, i);
        if i == 30 {
            // A kill -9 in the middle of the random work loses none of it.
            a.kill9_and_restart();
        }
    }
    let t = synced!();
    for side in &sides {
        let prefix = format!("{}/", side.name);
        let on_server: BTreeMap<String, Vec<u8>> =
            t.iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(k, v)| (k.clone(), v.clone())).collect();
        assert!(
            on_server == side.model,
            "seed {seed}: {} lost or changed writes: {}",
            side.name,
            crate::sync_e2e_kit::diff(&side.model, &on_server)
        );
    }
    assert_eq!(a.stop().map(|s| s.success()), Some(true), "SIGTERM stops cleanly");
    assert_eq!(b.stop().map(|s| s.success()), Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_conflict_keeps_both_versions_in_both_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let (da, db) = (tmp.path().join("a"), tmp.path().join("b"));
    let server = Server::start(&tmp.path().join("data"), &tmp.path().join("server.log"));
    let url = format!("http://{}/f/", server.addr);
    let a = Daemon::start_folder(&da, &url, &tmp.path().join("sa"), "a", &tmp.path().join("a.log"));
    let b = Daemon::start_folder(&db, &url, &tmp.path().join("sb"), "b", &tmp.path().join("b.log"));
    macro_rules! synced {
        () => {
            until_synced(&server, "/f/", &[(&a, &da), (&b, &db)]).await
        };
    }
    synced!();
    // Both sides change the same binary file while paused (so neither sees the other's):
    //    the server keeps both, each folder gets the winner plus a conflicted copy.
    for d in [&a, &b] {
        let (_, code) = d.command(&["pause"]);
        assert_eq!(code, 0);
        until_state(d, "paused", |s| s["state"] == "paused").await;
    }
    let (mine, theirs) = (noise(10, 70_000), noise(11, 90_000));
    save(&da, "same.bin", &mine);
    save(&db, "same.bin", &theirs);
    for d in [&a, &b] {
        let (_, code) = d.command(&["resume"]);
        assert_eq!(code, 0);
    }
    let t = synced!();
    assert!(t["same.bin"] == mine || t["same.bin"] == theirs, "the winner is one of the two");
    for (d, dir) in [(&a, &da), (&b, &db)] {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let all = crate::sync_e2e_kit::local_tree(dir, &[]);
            let conflicts = d.get("/v1/conflicts").await;
            let kept = all.values().any(|v| *v == mine) && all.values().any(|v| *v == theirs);
            if kept && conflicts["conflicts"][0]["path"] == "same.bin" {
                break;
            }
            if Instant::now() > deadline {
                let names: Vec<&String> = all.keys().collect();
                let h = request(server.addr, "GET", "/.plait/history/f/same.bin", &[], b"").await.text();
                panic!(
                    "{}: both versions are not kept: {names:?}, {conflicts}\nserver history: {h}\nA:\n{}\nB:\n{}",
                    dir.display(),
                    tail(&a.log),
                    tail(&b.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // No write is lost: the server keeps both as heads.
    let h = request(server.addr, "GET", "/.plait/history/f/same.bin", &[], b"").await.json();
    assert_eq!(h["current"].as_array().map(Vec::len), Some(2), "{h}");
}

/// Writes a config file for one daemon with the given `(dir, url)` folders.
fn config(path: &Path, folders: &[(&Path, &str)], states: &Path) {
    let mut text = String::from("device = \"both\"\nrescan_secs = 30\n");
    for (i, (dir, url)) in folders.iter().enumerate() {
        text.push_str(&format!(
            "\n[[folder]]\ndir = {:?}\nurl = {url:?}\nstate_dir = {:?}\n",
            dir.display().to_string(),
            states.join(format!("s{i}")).display().to_string()
        ));
    }
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_and_control_api_of_a_daemon_with_two_servers() {
    let tmp = tempfile::tempdir().unwrap();
    let s1 = Server::start(&tmp.path().join("d1"), &tmp.path().join("s1.log"));
    let s2 = Server::start(&tmp.path().join("d2"), &tmp.path().join("s2.log"));
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let (u1, u2) = (format!("http://{}/x", s1.addr), format!("http://{}/y/", s2.addr));
    let file = tmp.path().join("sync.toml");
    config(&file, &[(&one, &u1), (&two, &u2)], tmp.path());
    let mut d = Daemon::start(vec!["--config".into(), file.display().to_string()], &tmp.path().join("d.log"));

    // `status --json` is the API's JSON: both folders, the URL's missing `/` added.
    let (out, code) = d.command(&["status", "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let folders = v["folders"].as_array().unwrap();
    assert_eq!(folders.len(), 2, "{v}");
    let of = |dir: &Path| folders.iter().find(|f| f["dir"] == dir.display().to_string()).unwrap().clone();
    assert_eq!(of(&one)["url"], format!("{u1}/"));
    assert_eq!(of(&two)["url"], u2);
    for f in folders {
        for key in ["state", "pending_up", "pending_down", "cursor", "transfers", "conflicts", "errors", "writable"] {
            assert!(f.get(key).is_some(), "status lacks {key}: {f}");
        }
    }
    let (human, code) = d.command(&["status"]);
    assert_eq!(code, 0);
    assert!(human.contains(&one.display().to_string()) && human.contains(&u2), "{human}");

    // Pause and resume one folder or all; an unknown folder is exit code 3 (not found).
    let (out, code) = d.command(&["pause", "--dir", &two.display().to_string(), "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["folders"], serde_json::json!([two.display().to_string()]));
    // The engine shows the pause (it checks at every turn), only on the folder named.
    let state = |v: &Value, dir: &Path| {
        let f = v["folders"].as_array().unwrap().iter().find(|f| f["dir"] == dir.display().to_string()).cloned();
        f.unwrap()["state"].as_str().unwrap().to_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = d.get("/v1/status").await;
        if state(&v, &two) == "paused" {
            assert_ne!(state(&v, &one), "paused", "only the folder named: {v}");
            break;
        }
        assert!(Instant::now() < deadline, "never paused: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (out, code) = d.command(&["resume"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().filter(|l| l.starts_with("resumed ")).count(), 2, "{out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while state(&d.get("/v1/status").await, &two) == "paused" {
        assert!(Instant::now() < deadline, "never resumed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, code) = d.command(&["pause", "--dir", "/not/synced"]);
    assert_eq!(code, 3);
    let (out, code) = d.command(&["rescan", "--json"]);
    assert_eq!((code, serde_json::from_str::<Value>(&out).unwrap()["folders"].as_array().unwrap().len()), (0, 2));
    for route in ["conflicts", "activity"] {
        let (out, code) = d.command(&[route, "--json"]);
        assert_eq!(code, 0);
        assert!(serde_json::from_str::<Value>(&out).unwrap()[route].is_array(), "{out}");
    }

    // The API's errors are JSON with stable codes; pages from the web are refused.
    for (method, route, headers, status, code) in [
        ("GET", "/v1/activity?limit=-1", &[][..], 400, "bad_query"),
        ("POST", "/v1/pause", &[("Origin", "http://evil.example")][..], 403, "forbidden_origin"),
        ("GET", "/v1/status", &[("Host", "rebound.example:80")][..], 403, "forbidden_origin"),
        ("GET", "/v1/nothing", &[][..], 404, "not_found"),
        ("PUT", "/v1/status", &[][..], 405, "method_not_allowed"),
    ] {
        let (got, v) = d.call(method, route, headers).await;
        assert_eq!((got, v["error"].as_str()), (status, Some(code)), "{method} {route}: {v}");
        assert!(v["message"].is_string());
    }

    // SIGTERM stops it cleanly; then nothing answers (exit code 6, network).
    let control = d.control;
    assert_eq!(d.stop().map(|s| s.success()), Some(true), "{}", tail(&d.log));
    let out = std::process::Command::new(crate::support::server::plait_binary())
        .args(["sync", "status", "--control", &format!("http://{control}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no sync daemon answers"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_daemon_syncs_two_folders_with_two_servers() {
    let tmp = tempfile::tempdir().unwrap();
    let s1 = Server::start(&tmp.path().join("d1"), &tmp.path().join("s1.log"));
    let s2 = Server::start(&tmp.path().join("d2"), &tmp.path().join("s2.log"));
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let file = tmp.path().join("sync.toml");
    config(&file, &[(&one, &format!("http://{}/x/", s1.addr)), (&two, &format!("http://{}/y/", s2.addr))], tmp.path());
    let d = Daemon::start(vec!["--config".into(), file.display().to_string()], &tmp.path().join("d.log"));
    save(&one, "a.txt", b"to the first server\n");
    save(&two, "b.bin", &noise(5, 100_000));
    // Each folder's status, waited on one at a time (the kit's helper takes a daemon's first
    // folder, so wait on the whole status here).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = d.get("/v1/status").await;
        let f = st["folders"].as_array().unwrap();
        let mut ok = f.len() == 2;
        for (f, (s, folder)) in f.iter().zip([(&s1, "/x/"), (&s2, "/y/")]) {
            ok &= crate::sync_e2e_kit::folder_synced(f, s, folder).await;
        }
        if ok && s1.tree("/x/").await.len() == 1 && s2.tree("/y/").await.len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "never synced: {st}\n{}", tail(&d.log));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s1.tree("/x/").await["a.txt"], b"to the first server\n");
    assert_eq!(s2.tree("/y/").await["b.bin"], noise(5, 100_000));
    // Written on the server, it lands in the right folder only.
    let w = request(s2.addr, "PUT", "/y/from-server.txt", &[("Content-Type", "text/plain")], b"hello\n").await;
    assert!(w.ok(), "{}", w.text());
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read(two.join("from-server.txt")).ok().as_deref() != Some(b"hello\n") {
        assert!(Instant::now() < deadline, "the server's write never landed\n{}", tail(&d.log));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!one.join("from-server.txt").exists());
}

#[test]
fn install_service_writes_a_user_unit_for_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("my sync.toml");
    config(&file, &[(&tmp.path().join("n"), "http://127.0.0.1:8080/notes/")], tmp.path());
    let run = |args: &[&str]| {
        std::process::Command::new(crate::support::server::plait_binary())
            .args(["sync", "install-service"])
            .args(args)
            .env("HOME", tmp.path())
            .env("XDG_CONFIG_HOME", tmp.path().join("cfg"))
            .output()
            .unwrap()
    };
    let printed = run(&["--config", file.to_str().unwrap(), "--print"]);
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    let unit = String::from_utf8(printed.stdout).unwrap();
    assert!(unit.contains(&format!("sync --config \"{}\"", file.display())), "{unit}");
    assert!(!tmp.path().join("cfg/systemd").exists(), "--print writes nothing");
    let wrote = run(&["--config", file.to_str().unwrap()]);
    assert!(wrote.status.success());
    let path = tmp.path().join("cfg/systemd/user/plait-sync.service");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), unit);
    assert!(String::from_utf8_lossy(&wrote.stdout).contains("systemctl --user enable --now plait-sync.service"));
    // A config that does not exist (or has no folder) is a usage error, not a failing service.
    let missing = run(&["--config", tmp.path().join("none.toml").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2));
}
