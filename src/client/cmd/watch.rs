//! `plait watch URL`: a live subscription (`GET` + `Subscribe`), one line per update, for ever.
//!
//! - A text: the updates as Braid sends them (a snapshot, then range patches), applied to a
//!   local copy so each line can say the new length (and, with `--text`, the whole text).
//! - A file: each new version's head (`Method-Override: HEAD`: a change feed, no bytes).
//! - A folder (a URL ending in `/`): the listing, then one line per change of the change log.
//!
//! When the connection drops (or stays silent past three heartbeats) it reconnects with
//! backoff and `Parents: <last version or cursor seen>`, so nothing is missed or repeated.
//! Only plain Braid headers are sent for text (`Subscribe`, `Parents`, `Heartbeats`).

use std::time::Duration;

use clap::Args;
use reqwest::{Method, Url};
use serde_json::{json, Value};

use super::{parse_url, Ctx, Global};
use crate::client::error::ClientError;
use crate::client::output::{show_version, Output};
use crate::client::remote::status_error;
use crate::client::transfer::{until_interrupted, Retry};
use crate::client::Remote;
use crate::protocol::{DecodedUpdate, Decoder, UpdateBody, VersionSet};

/// `plait watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// A resource's or a folder's URL.
    pub url: String,
    /// Print the whole text after each update (text resources).
    #[arg(long)]
    pub text: bool,
    /// Resume after this version (a folder: this cursor) instead of starting from now.
    #[arg(long, value_name = "VERSION")]
    pub parents: Option<String>,
    /// Reconnections in a row to try before giving up.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub retries: u32,
    #[command(flatten)]
    pub global: Global,
}

pub const EXAMPLES: &str = "\
Examples:
  plait watch http://127.0.0.1:8080/notes/tour            # text updates as they happen
  plait watch http://127.0.0.1:8080/notes/tour --text     # the whole text after each one
  plait watch http://127.0.0.1:8080/photos/cat.jpg        # each new version of a file
  plait watch http://127.0.0.1:8080/notes/ --json         # a folder's changes, as JSON lines";

/// The heartbeat interval asked of the server; a connection silent for three of them is dead.
const HEARTBEAT_SECS: u64 = 20;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Text,
    File,
    Folder,
}

/// What the watch has seen: where to resume from, and the text it keeps up to date.
struct Seen {
    kind: Kind,
    last: Option<String>,
    text: Vec<char>,
    print_text: bool,
}

pub async fn watch(ctx: &Ctx, a: WatchArgs) -> Result<(), ClientError> {
    let url = parse_url(&a.url)?;
    let remote = ctx.remote(&url)?;
    until_interrupted(watch_loop(ctx.out, &remote, &url, &a)).await
}

async fn watch_loop(out: Output, remote: &Remote, url: &Url, a: &WatchArgs) -> Result<(), ClientError> {
    let retry = Retry { attempts: a.retries, first: Duration::from_millis(250), max: Duration::from_secs(10) };
    let mut failures = 0u32;
    let kind = loop {
        match kind_of(remote, url).await {
            Ok(k) => break k,
            Err(e) if e.is_transient() && failures < retry.attempts => {
                failures += 1;
                tokio::time::sleep(retry.delay(failures)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let last = a.parents.as_deref().map(super::version_header).transpose()?;
    let mut seen = Seen { kind, last, text: Vec::new(), print_text: a.text };
    loop {
        let result = stream_once(out, remote, url, &mut seen, &mut failures).await;
        let e = match result {
            Ok(()) => ClientError::Network("the server ended the subscription".into()),
            Err(e) if e.is_transient() => e,
            Err(e) => return Err(e),
        };
        if failures >= retry.attempts {
            return Err(e);
        }
        failures += 1;
        let pause = retry.delay(failures);
        out.note(&format!("plait: {e}; reconnecting in {:.1} s", pause.as_secs_f64()));
        tokio::time::sleep(pause).await;
    }
}

/// A folder by its URL; a file when the server says `Merge-Type: aww`; else text (a missing
/// resource is watched as text, as Braid servers create it on the first write).
async fn kind_of(remote: &Remote, url: &Url) -> Result<Kind, ClientError> {
    if url.path().ends_with('/') {
        return Ok(Kind::Folder);
    }
    let res = remote.send_raw(remote.request(Method::HEAD, url.clone())).await?;
    let status = res.status().as_u16();
    if status >= 400 && status != 404 && status != 410 {
        return Err(status_error(res).await);
    }
    let aww = res.headers().get("merge-type").and_then(|v| v.to_str().ok()) == Some("aww");
    Ok(if aww { Kind::File } else { Kind::Text })
}

/// One subscription, until it ends or fails.
async fn stream_once(
    out: Output,
    remote: &Remote,
    url: &Url,
    seen: &mut Seen,
    failures: &mut u32,
) -> Result<(), ClientError> {
    let mut req = remote
        .request(Method::GET, url.clone())
        .header("subscribe", "true")
        .header("heartbeats", format!("{HEARTBEAT_SECS}s"));
    if let Some(p) = &seen.last {
        req = req.header("parents", p.as_str());
    }
    if seen.kind == Kind::File {
        req = req.header("method-override", "HEAD");
    }
    let mut res = remote.send(req).await?;
    if res.status().as_u16() != 209 {
        return Err(ClientError::Protocol(format!(
            "{} answered {} to Subscribe, not 209: it does not stream updates",
            url,
            res.status()
        )));
    }
    *failures = 0;
    let mut decoder = Decoder::new();
    let idle = Duration::from_secs(HEARTBEAT_SECS * 3 + 5);
    loop {
        let chunk = match tokio::time::timeout(idle, res.chunk()).await {
            Ok(c) => c?,
            Err(_) => return Err(ClientError::Network("no heartbeat from the server".into())),
        };
        let Some(chunk) = chunk else { return Ok(()) };
        decoder.push(&chunk);
        while let Some(update) = decoder.next_update().map_err(|e| ClientError::Protocol(e.to_string()))? {
            report(out, seen, &update)?;
        }
    }
}

/// Applies and prints one update.
fn report(out: Output, seen: &mut Seen, u: &DecodedUpdate) -> Result<(), ClientError> {
    let version = u.version.as_ref().map(|v| json!(v.ids())).unwrap_or(json!([]));
    let parents = u.parents.as_ref().map(|v| json!(v.ids()));
    if let Some(v) = &u.version {
        seen.last = Some(v.to_header());
    }
    match seen.kind {
        Kind::Text => report_text(out, seen, u, version, parents),
        Kind::File => {
            let deleted = u.status == Some(404);
            let content_type = u.header("content-type").map(str::to_owned);
            let line = json!({"version": version, "parents": parents, "deleted": deleted, "content_type": content_type,
                              "repr_digest": u.header("repr-digest")});
            if out.json {
                return out.json_line(&line);
            }
            let what = if deleted { "deleted".to_owned() } else { content_type.unwrap_or_else(|| "-".into()) };
            out.human_line(&format!("{}  {what}", show_version(&version)))
        }
        Kind::Folder => {
            let UpdateBody::Snapshot(body) = &u.body else {
                return Err(ClientError::Protocol("a folder update that is not JSON".into()));
            };
            let v: Value =
                serde_json::from_str(body).map_err(|e| ClientError::Protocol(format!("folder update: {e}")))?;
            if let Some(entries) = v.get("entries").and_then(Value::as_array) {
                // The listing that opens a fresh watch (or follows a reset).
                if out.json {
                    return out.json_line(&json!({"listing": v}));
                }
                let reset = if v.get("reset").and_then(Value::as_bool) == Some(true) { " (reset)" } else { "" };
                return out.human_line(&format!(
                    "listing{reset}: {} entries, cursor {}",
                    entries.len(),
                    show_version(&version)
                ));
            }
            if out.json {
                return out.json_line(&v);
            }
            let f = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
            out.human_line(&format!(
                "{:<8}  {:<4}  {}  {}",
                f("what"),
                f("kind"),
                f("path"),
                show_version(v.get("version").unwrap_or(&Value::Null))
            ))
        }
    }
}

fn report_text(
    out: Output,
    seen: &mut Seen,
    u: &DecodedUpdate,
    version: Value,
    parents: Option<Value>,
) -> Result<(), ClientError> {
    let mut line = json!({"version": version, "parents": parents});
    let summary = match &u.body {
        UpdateBody::Snapshot(s) => {
            seen.text = s.chars().collect();
            line["snapshot"] = json!(s);
            format!("snapshot {:?}", short(s))
        }
        UpdateBody::Patches(patches) => {
            let len = seen.text.len() as u64;
            let mut ranges = Vec::new();
            for p in patches {
                let Some((a, b)) = p.range.resolve(len) else {
                    // Our copy and the server's disagree: start again from a snapshot.
                    seen.last = None;
                    return Err(ClientError::Network("a patch outside the text: resubscribing".into()));
                };
                ranges.push((a as usize, b as usize, p.content.as_str()));
            }
            // Patches of one update are in the parent's coordinates, in order.
            let old = std::mem::take(&mut seen.text);
            let mut at = 0usize;
            for &(a, b, content) in &ranges {
                if a < at || b > old.len() || a > b {
                    seen.text = old;
                    seen.last = None;
                    return Err(ClientError::Network("patches out of order: resubscribing".into()));
                }
                seen.text.extend_from_slice(&old[at..a]);
                seen.text.extend(content.chars());
                at = b;
            }
            seen.text.extend_from_slice(&old[at..]);
            line["patches"] =
                json!(ranges.iter().map(|(a, b, c)| json!({"range": [a, b], "content": c})).collect::<Vec<_>>());
            ranges.iter().map(|(a, b, c)| format!("[{a}:{b}] {:?}", short(c))).collect::<Vec<_>>().join(" ")
        }
    };
    line["length"] = json!(seen.text.len());
    let text: Option<String> = seen.print_text.then(|| seen.text.iter().collect());
    if out.json {
        if let Some(t) = &text {
            line["text"] = json!(t);
        }
        return out.json_line(&line);
    }
    let head = u.version.as_ref().map(VersionSet::to_header).unwrap_or_default();
    match text {
        Some(t) => out.human_line(&format!("{head}  {t}")),
        None => out.human_line(&format!("{head}  {summary}  ({} chars)", seen.text.len())),
    }
}

/// The first 40 characters, for a summary line.
fn short(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().nth(40).is_some() {
        out.push('…');
    }
    out
}
