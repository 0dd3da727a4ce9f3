//! The `plait` client commands (docs/CLI.md), run as the real binary against a real server
//! (RocksDB in a temp dir; token mode for login, tokens, share links and refusals): every
//! command, its exit code and its `--json` shape. Each run gets its own config file and cache
//! dir (`$PLAIT_CONFIG`, `$PLAIT_CACHE_DIR`), so nothing touches the user's. The resumable
//! transfers and watch reconnection are in `client_cmds_resume.rs`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::auth::{token_server, ADMIN};
use crate::support::server::{plait_binary, Engine, TestServer};

/// The longest any one command may take here.
const LIMIT: Duration = Duration::from_secs(30);

/// A place for one test's client state: config file and cache dir.
pub struct Client {
    pub dir: tempfile::TempDir,
}

/// What a finished command left.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.stdout))
    }
    /// The `--json` error object on stderr.
    pub fn error(&self) -> Value {
        serde_json::from_str(self.stderr.trim()).unwrap_or_else(|e| panic!("not a JSON error ({e}): {:?}", self.stderr))
    }
}

impl Client {
    pub fn new() -> Client {
        Client { dir: tempfile::tempdir().unwrap() }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config").join("config.toml")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The command, with this client's config and cache and no token from the environment.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(plait_binary());
        c.args(args)
            .env("PLAIT_CONFIG", self.config())
            .env("PLAIT_CACHE_DIR", self.dir.path().join("cache"))
            .env_remove("PLAIT_TOKEN")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    /// Runs `plait args...` to the end (bounded), with `stdin` as its input.
    pub async fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Ran {
        let mut c = self.command(args);
        c.envs(env.iter().copied());
        if stdin.is_some() {
            c.stdin(Stdio::piped());
        }
        let mut child = c.spawn().unwrap();
        if let Some(bytes) = stdin {
            let mut w = child.stdin.take().unwrap();
            w.write_all(bytes).await.unwrap();
            drop(w);
        }
        let out = tokio::time::timeout(LIMIT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("plait {args:?} did not finish within {LIMIT:?}"))
            .unwrap();
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub async fn run(&self, args: &[&str]) -> Ran {
        self.run_with(args, &[], None).await
    }

    /// Runs and asserts the exit code.
    pub async fn ok(&self, args: &[&str]) -> Ran {
        let r = self.run(args).await;
        assert_eq!(r.code, 0, "plait {args:?}: {r:?}");
        r
    }
}

/// `plait` exits with `code` and, with `--json`, prints `{"error": kind, ...}` on stderr.
async fn fails(c: &Client, args: &[&str], code: i32, kind: &str) {
    let r = c.run(args).await;
    assert_eq!(r.code, code, "plait {args:?}: {r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    let e = r.error();
    assert_eq!(e["error"], kind, "{r:?}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{r:?}");
    assert_eq!(e["exit_code"], code);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_commands_write_read_and_travel_in_time() {
    let server = TestServer::start(Engine::Rocks).await;
    let c = Client::new();
    let u = server.url("/notes/tour");

    // put from stdin: the version the server named.
    let r = c.run_with(&["put", &u, "--json"], &[], Some(b"hello")).await;
    assert_eq!(r.code, 0, "{r:?}");
    let v1 = r.json()["version"][0].as_str().unwrap().to_owned();

    // patch: a Content-Range on top of the current version.
    let r = c.ok(&["patch", &u, "--range", "5:5", " world", "--json"]).await;
    assert_eq!(r.json()["range"], serde_json::json!([5, 5]));
    let v2 = r.json()["version"][0].as_str().unwrap().to_owned();
    assert_ne!(v1, v2);

    // --quiet: nothing on stdout, the exit code says it worked.
    let r = c.run_with(&["put", &server.url("/notes/quiet"), "-q"], &[], Some(b"shh")).await;
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""), "{r:?}");

    // get: plain, JSON, at the old version, into a file.
    assert_eq!(c.ok(&["get", &u]).await.stdout, "hello world");
    let j = c.ok(&["get", &u, "--json"]).await.json();
    assert_eq!(
        (j["kind"].as_str(), j["text"].as_str(), j["size"].as_u64()),
        (Some("text"), Some("hello world"), Some(11))
    );
    assert_eq!(j["version"], serde_json::json!([v2]));
    assert_eq!(c.ok(&["get", &u, "--version", &v1]).await.stdout, "hello");
    c.ok(&["get", &u, "-o", "tour.txt"]).await;
    assert_eq!(std::fs::read_to_string(c.path("tour.txt")).unwrap(), "hello world");

    // history: newest first, a table for people.
    let h = c.ok(&["history", &u, "--json"]).await.json();
    let versions: Vec<&str> =
        h["versions"].as_array().unwrap().iter().map(|v| v["version"][0].as_str().unwrap()).collect();
    assert_eq!(versions, [v2.as_str(), v1.as_str()]);
    let table = c.ok(&["history", &u]).await.stdout;
    assert!(table.starts_with("VERSION") && table.contains(&v1) && table.contains("+6 -0"), "{table}");
    assert_eq!(c.ok(&["history", &u, "-n", "1", "--json"]).await.json()["versions"].as_array().unwrap().len(), 1);

    // diff: a unified diff for people, the server's patches with --json.
    let d = c.ok(&["diff", &u, "--from", &v1]).await.stdout;
    assert!(d.contains("-hello") && d.contains("+hello world"), "{d}");
    let dj = c.ok(&["diff", &u, "--from", &v1, "--json"]).await.json();
    assert_eq!((dj["from"].clone(), dj["to"].clone()), (serde_json::json!([v1]), serde_json::json!([v2])));

    // restore: the old text as a new version.
    let r = c.ok(&["restore", &u, &v1, "--json"]).await.json();
    assert_eq!(r["restored"], serde_json::json!([v1]));
    assert_eq!(c.ok(&["get", &u]).await.stdout, "hello");

    // put a file, then ls (table and JSON), rm.
    std::fs::write(c.path("p.bin"), [0u8, 159, 146, 150, 255, 1, 2, 3]).unwrap();
    let r = c
        .ok(&["put", &server.url("/notes/p.bin"), "p.bin", "--content-type", "application/octet-stream", "--json"])
        .await;
    assert_eq!(r.json()["size"], 8);
    let ls = c.ok(&["ls", &server.url("/notes/"), "--json"]).await.json();
    assert_eq!(ls["folder"], "/notes/");
    assert!(ls["cursor"].as_str().is_some_and(|s| s.contains('-')), "{ls}");
    let names: Vec<(&str, &str)> = ls["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["type"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("p.bin", "file"), ("quiet", "text"), ("tour", "text")]);
    let table = c.ok(&["ls", &server.url("/notes")]).await.stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("KIND") && lines[1].starts_with("file  8 B"), "{table}");
    assert!(c.ok(&["ls", "-r", &server.url("/")]).await.stdout.contains("/notes/p.bin"));
    assert_eq!(c.ok(&["get", &server.url("/notes/p.bin"), "--json"]).await.json()["content_base64"], "AJ+Slv8BAgM=");

    let r = c.ok(&["rm", &server.url("/notes/p.bin"), "--json"]).await.json();
    assert_eq!(r["deleted"], true);
    // Gone: exit 3 with the server's code; a bad URL is a usage error (2); nobody there, 6.
    fails(&c, &["get", &server.url("/notes/p.bin"), "--json"], 3, "file_deleted").await;
    fails(&c, &["get", "notes/tour", "--json"], 2, "usage").await;
    fails(&c, &["put", &u, "no-such-file", "--json"], 2, "usage").await;
    fails(&c, &["patch", &u, "--range", "9:1", "x", "--json"], 2, "usage").await;
    fails(&c, &["get", "http://127.0.0.1:1/x", "--json"], 6, "network").await;
    // A file upload onto a text: refused because of the resource's state (5).
    fails(&c, &["upload", "p.bin", &u, "--json"], 5, "kind_mismatch").await;
    // Without --json: one line, plait: ...
    let r = c.run(&["get", &server.url("/notes/p.bin")]).await;
    assert!(r.code == 3 && r.stderr.starts_with("plait: 4"), "{r:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_tokens_and_share_links_against_a_token_server() {
    let server = token_server(Engine::Rocks, |_| {}).await;
    let c = Client::new();
    let root = server.url("/");

    // No credential: denied (4) with the server's code.
    fails(&c, &["get", &server.url("/notes/a"), "--json"], 4, "auth_required").await;

    // tokens create with the admin token on the command line; the secret is shown once.
    let made = c
        .ok(&[
            "tokens",
            "create",
            &root,
            "--label",
            "alice laptop",
            "--rights",
            "write",
            "--prefix",
            "/notes/",
            "--json",
            "--token",
            ADMIN,
        ])
        .await
        .json();
    let token = made["token"].as_str().unwrap().to_owned();
    let id = made["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with(&format!("plait_{id}_")), "{made}");
    assert_eq!((made["rights"].as_str(), made["prefixes"].clone()), (Some("write"), serde_json::json!(["/notes/"])));

    // login: a wrong token is refused and nothing is stored.
    let r = c.run_with(&["login", &server.url("/notes/"), "--json"], &[], Some(b"plait_0000000000000000_00\n")).await;
    assert_eq!(r.code, 4, "{r:?}");
    assert_eq!(r.error()["error"], "invalid_token");
    assert!(!c.config().exists());
    // The right one, from stdin: stored for the origin, readable by its owner only.
    let r = c.run_with(&["login", &server.url("/notes/"), "--json"], &[], Some(format!("{token}\n").as_bytes())).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["server"], format!("http://{}", server.addr));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(c.config()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "config file mode {mode:o}");
    }
    assert!(std::fs::read_to_string(c.config()).unwrap().contains(&token));

    // Later commands send the stored token.
    let r = c.run_with(&["put", &server.url("/notes/a")], &[], Some(b"for bob")).await;
    assert_eq!(r.code, 0, "{r:?}");
    // Outside its prefix: forbidden (4); tokens ls needs admin (4).
    let r = c.run_with(&["put", &server.url("/private"), "--json"], &[], Some(b"x")).await;
    assert_eq!((r.code, r.error()["error"].as_str()), (4, Some("forbidden")), "{r:?}");
    fails(&c, &["tokens", "ls", &root, "--json"], 4, "forbidden").await;
    // $PLAIT_TOKEN beats the config, --token beats both.
    let r = c.run_with(&["tokens", "ls", &root, "--json"], &[("PLAIT_TOKEN", ADMIN)], None).await;
    assert_eq!(r.code, 0, "{r:?}");
    let listed = r.json();
    assert!(listed["tokens"].as_array().unwrap().iter().any(|t| t["id"] == id.as_str()), "{listed}");
    let r = c
        .run_with(
            &["tokens", "ls", &root, "--json", "--token", "plait_0000000000000000_00"],
            &[("PLAIT_TOKEN", ADMIN)],
            None,
        )
        .await;
    assert_eq!(r.code, 4, "{r:?}");
    let table = c.ok(&["tokens", "ls", &root, "--token", ADMIN]).await.stdout;
    assert!(table.starts_with("ID") && table.contains("alice laptop") && table.contains("/notes/"), "{table}");

    // Share links: create (the URL works with no credential at all), list, revoke.
    let share = c.ok(&["share", "create", &server.url("/notes/a"), "--rights", "read", "--json"]).await.json();
    let link = share["url"].as_str().unwrap().to_owned();
    let anonymous = Client::new();
    assert_eq!(anonymous.ok(&["get", &link]).await.stdout, "for bob");
    let list = c.ok(&["share", "ls", &root, "--json"]).await.json();
    let sid = share["id"].as_str().unwrap();
    assert!(list["shares"].as_array().unwrap().iter().any(|s| s["id"] == sid), "{list}");
    assert!(c.ok(&["share", "ls", &server.url("/notes/a")]).await.stdout.contains(sid));
    let r = c.ok(&["share", "revoke", &root, sid, "--json"]).await.json();
    assert_eq!(r["revoked"], sid);
    let r = anonymous.run(&["get", &link, "--json"]).await;
    assert_eq!((r.code, r.error()["error"].as_str()), (4, Some("invalid_share_link")), "{r:?}");
    fails(&c, &["share", "revoke", &root, sid, "--json"], 3, "no_such_share").await;
    fails(&c, &["share", "revoke", &root, "../x", "--json"], 2, "usage").await;

    // Revoking the token: the stored one stops working.
    c.ok(&["tokens", "revoke", &root, &id, "--token", ADMIN]).await;
    fails(&c, &["get", &server.url("/notes/a"), "--json"], 4, "invalid_token").await;
    server.stop().await;
}

/// On a terminal, `plait login` asks for the token without echoing it: the process runs on a
/// pseudo-terminal (Python's `pty`, so nothing here fakes a terminal), the token is typed, and
/// the screen shows the prompt but never the token, which lands in the config file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_at_a_terminal_does_not_echo_the_token() {
    let server = token_server(Engine::Rocks, |_| {}).await;
    let c = Client::new();
    let script = r#"
import os, pty, select, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "login", sys.argv[2]])
seen, typed, deadline = b"", False, time.time() + 20
# Type only once the prompt is shown and the program has turned echo off (as a person would,
# after reading the prompt): the terminal echoes whatever arrives before that.
def echo_off():
    return not termios.tcgetattr(fd)[3] & termios.ECHO
while time.time() < deadline:
    if not typed and b"Token for" in seen and echo_off():
        os.write(fd, sys.argv[3].encode() + b"\n")
        typed = True
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            d = os.read(fd, 4096)
        except OSError:
            break
        if not d:
            break
        seen += d
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let mut cmd = tokio::process::Command::new("python3");
    cmd.args(["-c", script, plait_binary().to_str().unwrap(), &server.url("/"), ADMIN])
        .env("PLAIT_CONFIG", c.config())
        .env_remove("PLAIT_TOKEN")
        .kill_on_drop(true);
    let out = tokio::time::timeout(LIMIT, cmd.output()).await.expect("login on a terminal timed out").unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{screen}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(screen.contains("Token for"), "no prompt: {screen}");
    assert!(!screen.contains(ADMIN), "the token was echoed: {screen}");
    assert!(std::fs::read_to_string(c.config()).unwrap().contains(ADMIN));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_text_updates_and_folder_changes_as_json_lines() {
    let server = TestServer::start(Engine::Rocks).await;
    let c = Client::new();
    let u = server.url("/w/doc");
    c.run_with(&["put", &u], &[], Some(b"one")).await;

    let mut text = Lines::start(&c, &["watch", &u, "--json", "--text"]);
    let first = text.next().await;
    assert_eq!(first["text"], "one", "{first}");
    assert!(first["snapshot"].is_string());
    let mut folder = Lines::start(&c, &["watch", &server.url("/w/"), "--json"]);
    let listing = folder.next().await;
    assert_eq!(listing["listing"]["entries"][0]["name"], "doc", "{listing}");

    c.ok(&["patch", &u, "--range", "3:3", " two"]).await;
    let second = text.next().await;
    assert_eq!((second["text"].as_str(), second["length"].as_u64()), (Some("one two"), Some(7)), "{second}");
    assert_eq!(second["patches"][0]["range"], serde_json::json!([3, 3]));
    // Started from an old version: what happened since, applied to that version's text.
    let v1 = first["version"][0].as_str().unwrap().to_owned();
    let mut resumed = Lines::start(&c, &["watch", &u, "--json", "--text", "--parents", &v1]);
    let since = resumed.next().await;
    // (as patches, or as one snapshot of the head when the server finds that shorter)
    assert_eq!((since["text"].as_str(), &since["version"]), (Some("one two"), &second["version"]), "{since}");
    let change = folder.next().await;
    assert_eq!((change["path"].as_str(), change["what"].as_str()), (Some("/w/doc"), Some("version")), "{change}");

    // A file: each new version's head.
    std::fs::write(c.path("f.bin"), [0u8, 1, 2, 255]).unwrap();
    c.ok(&["put", &server.url("/w/f.bin"), "f.bin"]).await;
    let created = folder.next().await;
    assert_eq!((created["path"].as_str(), created["what"].as_str()), (Some("/w/f.bin"), Some("create")), "{created}");
    let mut file = Lines::start(&c, &["watch", &server.url("/w/f.bin"), "--json"]);
    let head = file.next().await;
    assert_eq!(head["deleted"], false, "{head}");
    c.ok(&["rm", &server.url("/w/f.bin")]).await;
    assert_eq!(file.next().await["deleted"], true);
    for mut l in [text, resumed, folder, file] {
        l.interrupt().await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_help_describe_every_command() {
    let c = Client::new();
    let bash = c.ok(&["completions", "bash"]).await.stdout;
    assert!(bash.contains("_plait()"), "not a bash completion script");
    for cmd in [
        "get", "put", "patch", "watch", "ls", "rm", "history", "diff", "restore", "share", "tokens", "upload",
        "download", "login", "serve", "sync",
    ] {
        assert!(bash.contains(cmd), "bash completions lack {cmd}");
    }
    assert!(c.ok(&["completions", "zsh"]).await.stdout.contains("#compdef plait"));
    assert!(c.ok(&["completions", "fish"]).await.stdout.contains("complete -c plait"));
    let r = c.run(&["completions", "nosh"]).await;
    assert_eq!(r.code, 2, "{r:?}");
    let help = c.ok(&["upload", "--help"]).await.stdout;
    assert!(help.contains("Examples:") && help.contains("--limit-rate") && help.contains("--json"), "{help}");
}

/// A long-running `plait` (watch) whose stdout is read line by line.
pub struct Lines {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Lines {
    pub fn start(c: &Client, args: &[&str]) -> Lines {
        Self::from(c.command(args))
    }

    pub fn from(mut cmd: tokio::process::Command) -> Lines {
        use tokio::io::AsyncBufReadExt;
        let mut child = cmd.stderr(Stdio::inherit()).spawn().unwrap();
        let out = child.stdout.take().unwrap();
        Lines { child, lines: tokio::io::BufReader::new(out).lines() }
    }

    /// The next line as JSON (bounded wait).
    pub async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(LIMIT, self.lines.next_line())
            .await
            .expect("no line from plait in time")
            .unwrap()
            .expect("plait ended its output");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    /// Ctrl-C: the process ends with 130.
    pub async fn interrupt(&mut self) {
        sigint(self.pid());
        let status = tokio::time::timeout(LIMIT, self.child.wait()).await.unwrap().unwrap();
        assert_eq!(status.code(), Some(130));
    }
}

/// Sends SIGINT (what Ctrl-C sends) to `pid`.
pub fn sigint(pid: u32) {
    let ok = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap().success();
    assert!(ok, "kill -INT {pid}");
}

/// The bytes of a file, for comparisons with a clear message.
pub fn same_file(a: &Path, b: &Path) {
    let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert!(x == y, "{} ({} bytes) differs from {} ({} bytes)", a.display(), x.len(), b.display(), y.len());
}
