//! A folder watcher for the resume tests (`folders_resume`, `crash_folders`): sessions of a
//! raw `209` watch (resumed with `Parents: "<cursor>"`, cut after a chosen number of changes)
//! and of `?since=` long polls, over hyper's HTTP/1.1 client so that a server dying under it is
//! an error value, not a panic. Every change it accepts is checked against the protocol as it
//! arrives (`Version` = the change's cursor, `Parents` = the log position just before it, at or
//! after the last cursor the watcher holds, seqs rising, never a reset); what it finds wrong goes
//! into `problems` (gaps are found by comparing with the acknowledged writes).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use plait::protocol::{Decoder, UpdateBody};
use serde_json::Value;

/// One change as the watcher received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub seq: u64,
    pub path: String,
    pub what: String,
    pub kind: String,
    pub version: Vec<String>,
}

/// The seq of a cursor (`<epoch>-<seq>`).
pub fn seq_of(cursor: &str) -> u64 {
    cursor.rsplit('-').next().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a cursor: {cursor:?}"))
}

fn epoch_of(cursor: &str) -> &str {
    cursor.split('-').next().unwrap_or_default()
}

/// Where a watcher is and what it has seen.
#[derive(Debug)]
pub struct Watcher {
    pub folder: String,
    pub cursor: String,
    pub seen: Vec<Seen>,
    pub problems: Vec<String>,
    /// Sessions of each kind run, and those cut by a connection failure.
    pub streams: u64,
    pub polls: u64,
    pub failed: u64,
}

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// It got what it wanted (or nothing new within its idle bound).
    Done,
    /// The connection failed (the server died, or was not there).
    Failed(String),
}

impl Watcher {
    /// A watcher of `folder` (recursive) from `cursor`.
    pub fn new(folder: &str, cursor: &str) -> Watcher {
        Watcher {
            folder: folder.to_string(),
            cursor: cursor.to_string(),
            seen: Vec::new(),
            problems: Vec::new(),
            streams: 0,
            polls: 0,
            failed: 0,
        }
    }

    pub fn seq(&self) -> u64 {
        seq_of(&self.cursor)
    }

    /// Accepts one change (its JSON body, with `cursor` first) whose update said `version`
    /// and `parents` (None for a long poll's change).
    fn accept(&mut self, body: &Value, version: Option<&str>, parents: Option<&str>) {
        let Some(cursor) = body["cursor"].as_str() else {
            self.problems.push(format!("a change without a cursor: {body}"));
            return;
        };
        if let Some(v) = version {
            if v != cursor {
                self.problems.push(format!("update Version {v:?} is not its change's cursor {cursor:?}"));
            }
        }
        if let Some(p) = parents {
            let just_before = format!("{}-{}", epoch_of(cursor), seq_of(cursor).saturating_sub(1));
            if p != just_before || seq_of(p) < self.seq() {
                self.problems.push(format!("update Parents {p:?} for {cursor:?} after cursor {:?}", self.cursor));
            }
        }
        if epoch_of(cursor) != epoch_of(&self.cursor) {
            self.problems.push(format!("cursor {cursor} from another epoch than {}", self.cursor));
        }
        if seq_of(cursor) <= self.seq() {
            self.problems.push(format!("cursor {cursor} is not after {} (a duplicate)", self.cursor));
        }
        let strings = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let version = body["version"].as_array().map(|a| a.iter().map(strings).collect()).unwrap_or_default();
        self.seen.push(Seen {
            seq: seq_of(cursor),
            path: strings(&body["path"]),
            what: strings(&body["what"]),
            kind: strings(&body["kind"]),
            version,
        });
        self.cursor = cursor.to_string();
    }

    /// A `209` watch resumed from the cursor; cut after `max` changes, or after `idle` without
    /// one.
    pub async fn stream(&mut self, addr: SocketAddr, max: usize, idle: Duration) -> Ended {
        self.streams += 1;
        let target = format!("{}?recursive=1", self.folder);
        let parents = format!("\"{}\"", self.cursor);
        let res = match get(addr, &target, &[("Subscribe", "true"), ("Parents", &parents)]).await {
            Ok(res) => res,
            Err(e) => return self.fail(e),
        };
        if res.status().as_u16() != 209 {
            self.problems.push(format!("a resumed watch answered {}", res.status()));
            return Ended::Done;
        }
        let mut body = res.into_body();
        let mut decoder = Decoder::new();
        let mut got = 0;
        loop {
            while let Some(u) = match decoder.next_update() {
                Ok(u) => u,
                Err(e) => {
                    self.problems.push(format!("the watch stream does not decode: {e}"));
                    return Ended::Done;
                }
            } {
                let UpdateBody::Snapshot(text) = &u.body else {
                    self.problems.push("a folder update that is not a snapshot".into());
                    continue;
                };
                let Ok(json) = serde_json::from_str::<Value>(text) else {
                    self.problems.push(format!("an update body that is not JSON: {text:?}"));
                    continue;
                };
                if json.get("entries").is_some() {
                    self.problems.push(format!("a resumed watch from {} was reset: {text}", self.cursor));
                    return Ended::Done;
                }
                let one = |v: &Option<plait::protocol::VersionSet>| v.as_ref().and_then(|v| v.ids().first().cloned());
                let (version, parents) = (one(&u.version), one(&u.parents));
                if parents.is_none() {
                    self.problems.push(format!("an update without Parents: {text}"));
                }
                self.accept(&json, version.as_deref(), Some(parents.as_deref().unwrap_or("")));
                got += 1;
                if got >= max {
                    return Ended::Done;
                }
            }
            match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => return Ended::Done,
                Ok(None) => return self.fail("the watch stream ended".into()),
                Ok(Some(Err(e))) => return self.fail(e.to_string()),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        decoder.push(&data);
                    }
                }
            }
        }
    }

    /// One long poll from the cursor (`?since=`), waiting up to `wait`, at most `limit`
    /// changes.
    pub async fn poll(&mut self, addr: SocketAddr, wait: Duration, limit: usize) -> Ended {
        self.polls += 1;
        let target =
            format!("{}?recursive=1&since={}&wait={}&limit={limit}", self.folder, self.cursor, wait.as_secs_f64());
        let res = match get(addr, &target, &[]).await {
            Ok(res) => res,
            Err(e) => return self.fail(e),
        };
        let status = res.status().as_u16();
        let bytes = match tokio::time::timeout(wait + Duration::from_secs(10), res.into_body().collect()).await {
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(e)) => return self.fail(e.to_string()),
            Err(_) => return self.fail("a long poll did not answer in time".into()),
        };
        let v: Value = match serde_json::from_slice(&bytes) {
            Ok(v) if status == 200 => v,
            _ => {
                self.problems.push(format!("a long poll answered {status}: {}", String::from_utf8_lossy(&bytes)));
                return Ended::Done;
            }
        };
        if v["reset"] != false {
            self.problems.push(format!("a long poll from {} was reset: {v}", self.cursor));
            return Ended::Done;
        }
        for change in v["changes"].as_array().cloned().unwrap_or_default() {
            self.accept(&change, None, None);
        }
        let end = v["cursor"].as_str().unwrap_or_default().to_string();
        if seq_of(&end) < self.seq() {
            self.problems.push(format!("a long poll's cursor {end} is behind its last change {}", self.cursor));
        }
        // The answer's cursor may be past the last change shown (positions it looked at).
        self.cursor = end;
        Ended::Done
    }

    fn fail(&mut self, e: String) -> Ended {
        self.failed += 1;
        Ended::Failed(e)
    }
}

/// A GET on a fresh HTTP/1.1 connection (the connection closes when the response is dropped).
async fn get(
    addr: SocketAddr,
    target: &str,
    headers: &[(&str, &str)],
) -> Result<hyper::Response<hyper::body::Incoming>, String> {
    let connect = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr));
    let stream = connect.await.map_err(|_| "connect timed out".to_string())?.map_err(|e| e.to_string())?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = hyper::Request::get(target).header("host", "watch");
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let req = req.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
    match tokio::time::timeout(Duration::from_secs(10), send.send_request(req)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("no response head within 10 s".into()),
    }
}
