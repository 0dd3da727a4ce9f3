//! The remote feed: the server folder's changes, as they happen, from a cursor. The primary
//! path is the folder watch (`GET folder/?recursive=1` + `Subscribe`, resumed with `Parents:
//! "<cursor>"`, heartbeats): one Braid update per change, no round trip per change. When the
//! server (or a proxy in front of it) does not stream, or the stream keeps breaking while the
//! server answers, the long poll (`?since=&wait=`) takes over. Either way the task sends what
//! it sees on a channel and ends at the first failure; the engine's loop decides what next.

use std::time::Duration;

use reqwest::Method;
use tokio::sync::mpsc;

use super::remote::{Change, Changes, Server};
use crate::client::ClientError;
use crate::protocol::{Decoder, UpdateBody, VersionSet};

/// Heartbeats asked of the server; a stream silent for 3× this (plus 5 s) is dead.
const HEARTBEAT_SECS: u64 = 20;
/// How long a long poll waits at the server for a change.
const POLL_WAIT_SECS: u64 = 25;

/// What the feed reports.
#[derive(Debug)]
pub enum Watched {
    /// The server's log was at this cursor when the feed (re)started, or a poll came back
    /// empty there: having applied up to it is being caught up.
    CaughtUpTo(String),
    /// Changes, and the cursor after them (or a reset: list again).
    Changes(Changes),
}

/// How the feed gets changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Watch,
    Poll,
}

pub type Feed = mpsc::UnboundedReceiver<Result<Watched, ClientError>>;

/// Starts the feed from `cursor`; it stops at the first failure (sent as an `Err`) or after a
/// reset (the channel closes).
pub fn start(server: Server, cursor: String, mode: Mode) -> (tokio::task::JoinHandle<()>, Feed) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let out = match mode {
            Mode::Watch => watch(&server, &cursor, &tx).await,
            Mode::Poll => poll(&server, cursor, &tx).await,
        };
        if let Err(e) = out {
            let _ = tx.send(Err(e));
        }
    });
    (task, rx)
}

/// Whether a feed failure means "this server does not stream": use the long poll.
pub fn means_no_streaming(e: &ClientError) -> bool {
    match e {
        ClientError::Protocol(_) => true,
        ClientError::Status { status, .. } => !matches!(status, 401 | 403 | 408 | 425 | 429 | 500..=599),
        _ => false,
    }
}

type Tx = mpsc::UnboundedSender<Result<Watched, ClientError>>;

async fn poll(server: &Server, mut cursor: String, tx: &Tx) -> Result<(), ClientError> {
    let mut wait = 0;
    loop {
        let ch = server.poll(&cursor, wait).await?;
        let quiet = ch.changes.is_empty() && !ch.more && !ch.reset;
        cursor = ch.cursor.clone();
        let reset = ch.reset;
        if tx.send(Ok(Watched::Changes(ch))).is_err() || reset {
            return Ok(());
        }
        if quiet {
            if tx.send(Ok(Watched::CaughtUpTo(cursor.clone()))).is_err() {
                return Ok(());
            }
            wait = POLL_WAIT_SECS;
        } else {
            wait = 0;
        }
    }
}

async fn watch(server: &Server, cursor: &str, tx: &Tx) -> Result<(), ClientError> {
    let mut url = server.folder.clone();
    url.query_pairs_mut().append_pair("recursive", "1");
    let req = server
        .remote
        .request(Method::GET, url)
        .header("subscribe", "true")
        .header("heartbeats", HEARTBEAT_SECS.to_string())
        .header("parents", VersionSet::new([cursor.to_owned()]).to_header());
    let mut res = server.remote.send(req).await?;
    if res.status().as_u16() != 209 {
        return Err(ClientError::Protocol(format!("the folder watch answered {}, not 209", res.status())));
    }
    let current = res
        .headers()
        .get("current-version")
        .and_then(|v| VersionSet::parse_header(v.as_bytes()).ok())
        .and_then(|v| v.ids().first().cloned());
    if let Some(c) = current {
        if tx.send(Ok(Watched::CaughtUpTo(c))).is_err() {
            return Ok(());
        }
    }
    let mut decoder = Decoder::new();
    let idle = Duration::from_secs(HEARTBEAT_SECS * 3 + 5);
    loop {
        let chunk = match tokio::time::timeout(idle, res.chunk()).await {
            Ok(c) => c?,
            Err(_) => return Err(ClientError::Network("no heartbeat from the folder watch".into())),
        };
        let Some(chunk) = chunk else {
            return Err(ClientError::Network("the folder watch ended".into()));
        };
        decoder.push(&chunk);
        while let Some(u) = decoder.next_update().map_err(|e| ClientError::Protocol(e.to_string()))? {
            let Some(version) = u.version.as_ref().and_then(|v| v.ids().first().cloned()) else { continue };
            let UpdateBody::Snapshot(body) = &u.body else {
                return Err(ClientError::Protocol("a folder update that is not JSON".into()));
            };
            let v: serde_json::Value =
                serde_json::from_str(body).map_err(|e| ClientError::Protocol(format!("folder update: {e}")))?;
            let changes = if v.get("entries").is_some() {
                // A listing: the cursor could not be answered exactly (a reset).
                Changes { cursor: version, reset: true, more: false, changes: Vec::new() }
            } else {
                let c: Change =
                    serde_json::from_value(v).map_err(|e| ClientError::Protocol(format!("folder update: {e}")))?;
                Changes { cursor: version, reset: false, more: false, changes: vec![c] }
            };
            let reset = changes.reset;
            if tx.send(Ok(Watched::Changes(changes))).is_err() || reset {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_that_say_no_streaming_switch_to_the_long_poll() {
        let status = |s: u16| ClientError::Status { status: s, code: None, message: String::new() };
        assert!(means_no_streaming(&ClientError::Protocol("200, not 209".into())));
        assert!(means_no_streaming(&status(405)));
        assert!(means_no_streaming(&status(400)));
        for s in [401, 403, 429, 502, 503] {
            assert!(!means_no_streaming(&status(s)), "{s}");
        }
        assert!(!means_no_streaming(&ClientError::Network("reset".into())));
    }
}
