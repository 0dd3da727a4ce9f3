//! `plait history` (a resource's versions, newest first), `plait diff` (a text's change between
//! two versions, as a unified diff) and `plait restore` (an old version back as a new one):
//! Plait's `/.plait/history`, `/.plait/diff` and `/.plait/restore` endpoints.

use clap::Args;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Value};

use super::{parse_url, version_header, Ctx, Global};
use crate::client::error::ClientError;
use crate::client::output::{field, human_size, show_version, table, write_stdout};
use crate::client::remote::endpoint_url;
use crate::protocol::VersionSet;

/// `plait history`.
#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// The resource's URL.
    pub url: String,
    /// How many versions to show (newest first).
    #[arg(long, short = 'n', default_value_t = 50)]
    pub limit: usize,
    #[command(flatten)]
    pub global: Global,
}

pub const HISTORY_EXAMPLES: &str = "\
Examples:
  plait history http://127.0.0.1:8080/notes/tour
  plait history http://127.0.0.1:8080/photos/cat.jpg -n 10 --json   # {\"versions\": [...], ...}";

/// `plait diff`.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The text's URL.
    pub url: String,
    /// The older version (default: the empty document).
    #[arg(long, value_name = "VERSION")]
    pub from: Option<String>,
    /// The newer version (default: the current one).
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    #[command(flatten)]
    pub global: Global,
}

pub const DIFF_EXAMPLES: &str = "\
Examples:
  plait diff http://127.0.0.1:8080/notes/tour --from alice-4
  plait diff http://127.0.0.1:8080/notes/tour --from alice-4 --to bob-5 --json   # Braid patches";

/// `plait restore`.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The resource's URL.
    pub url: String,
    /// The version to bring back (from `plait history`).
    pub version: String,
    #[command(flatten)]
    pub global: Global,
}

pub const RESTORE_EXAMPLES: &str = "\
Examples:
  plait restore http://127.0.0.1:8080/notes/tour alice-4
  plait restore http://127.0.0.1:8080/photos/cat.jpg 1796672702.250";

/// The server's largest history page.
const PAGE: usize = 1000;

pub async fn history(ctx: &Ctx, a: HistoryArgs) -> Result<(), ClientError> {
    let url = parse_url(&a.url)?;
    if a.limit == 0 {
        return Err(ClientError::Usage("--limit must be at least 1".into()));
    }
    let remote = ctx.remote(&url)?;
    let mut page_url = endpoint_url(&url, "history");
    page_url.query_pairs_mut().append_pair("limit", &a.limit.min(PAGE).to_string());
    let mut first: Option<Value> = None;
    let mut versions: Vec<Value> = Vec::new();
    loop {
        let page: Value = remote.send(remote.request(Method::GET, page_url.clone())).await?.json().await?;
        if let Some(list) = page.get("versions").and_then(Value::as_array) {
            versions.extend(list.iter().take(a.limit - versions.len()).cloned());
        }
        let next = page.get("next_url").and_then(Value::as_str).map(str::to_owned);
        first.get_or_insert(page);
        match next {
            Some(n) if versions.len() < a.limit => {
                page_url = url.join(&n).map_err(|e| ClientError::Protocol(format!("bad next_url {n:?}: {e}")))?;
            }
            _ => break,
        }
    }
    let mut value = first.unwrap_or(Value::Null);
    let is_file = value.get("kind").and_then(Value::as_str) == Some("file");
    value["versions"] = json!(versions);
    ctx.out.result(&value, || {
        let rows: Vec<Vec<String>> = versions
            .iter()
            .map(|v| {
                let what = if is_file {
                    if v.get("deleted").and_then(Value::as_bool) == Some(true) {
                        "deleted".into()
                    } else {
                        let size = v.get("size").and_then(Value::as_u64).map(human_size).unwrap_or_default();
                        format!("{size} {}", field(v, "content_type"))
                    }
                } else {
                    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
                    format!("+{} -{}", n("inserted"), n("deleted"))
                };
                vec![
                    show_version(v.get("version").unwrap_or(&Value::Null)),
                    field(v, "received"),
                    author(v.get("author")),
                    what,
                ]
            })
            .collect();
        let mut s = table(&["VERSION", "WHEN", "AUTHOR", "CHANGE"], &rows);
        if value.get("next").is_some_and(|n| !n.is_null()) && versions.len() >= a.limit {
            s.push_str(&format!("(older versions: plait history {} -n {})\n", url, a.limit * 2));
        }
        s
    })
}

/// Who wrote a version, for people: the credential's label, else the writer's agent or peer.
fn author(a: Option<&Value>) -> String {
    let Some(a) = a else { return "-".into() };
    if let Some(s) = a.as_str() {
        return s.to_owned();
    }
    if let Some(label) = a.get("principal").and_then(|p| p.get("label")).and_then(Value::as_str) {
        return label.to_owned();
    }
    for k in ["peer", "agent"] {
        if let Some(s) = a.get(k).and_then(Value::as_str) {
            return s.to_owned();
        }
    }
    "-".into()
}

pub async fn diff(ctx: &Ctx, a: DiffArgs) -> Result<(), ClientError> {
    let url = parse_url(&a.url)?;
    let remote = ctx.remote(&url)?;
    let mut diff_url = endpoint_url(&url, "diff");
    {
        let mut q = diff_url.query_pairs_mut();
        if let Some(f) = &a.from {
            q.append_pair("from", &version_header(f)?);
        }
        if let Some(t) = &a.to {
            q.append_pair("to", &version_header(t)?);
        }
    }
    if diff_url.query() == Some("") {
        diff_url.set_query(None);
    }
    let accept = if ctx.out.json { "application/json" } else { "text/x-diff" };
    let res = remote.send(remote.request(Method::GET, diff_url).header(ACCEPT, accept)).await?;
    let ids = |name: &str| {
        res.headers()
            .get(name)
            .and_then(|v| VersionSet::parse_header(v.as_bytes()).ok())
            .map(|v| v.ids().to_vec())
            .unwrap_or_default()
    };
    let (from, to) = (ids("parents"), ids("version"));
    let is_json = res.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.contains("json"));
    let body = res.bytes().await?;
    if ctx.out.json {
        let patches: Value = if is_json {
            serde_json::from_slice(&body).map_err(|e| ClientError::Protocol(format!("diff: {e}")))?
        } else {
            json!(String::from_utf8_lossy(&body))
        };
        return ctx.out.json_line(&json!({"url": url.as_str(), "from": from, "to": to, "diff": patches}));
    }
    if !ctx.out.quiet {
        write_stdout(&body)?;
    }
    Ok(())
}

pub async fn restore(ctx: &Ctx, a: RestoreArgs) -> Result<(), ClientError> {
    let url = parse_url(&a.url)?;
    let remote = ctx.remote(&url)?;
    let ids = VersionSet::parse_header(version_header(&a.version)?.as_bytes())
        .map_err(|e| ClientError::Usage(e.to_string()))?;
    let body = json!({"version": ids.ids()});
    let req = remote
        .request(Method::POST, endpoint_url(&url, "restore"))
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_string());
    let answer: Value = remote.send(req).await?.json().await?;
    let mut value = json!({"url": url.as_str()});
    if let (Some(v), Some(obj)) = (value.as_object_mut(), answer.as_object()) {
        v.extend(obj.clone());
    }
    ctx.out.result(&value, || {
        format!(
            "{url}: restored {} as {}\n",
            show_version(value.get("restored").unwrap_or(&Value::Null)),
            show_version(value.get("version").unwrap_or(&Value::Null))
        )
    })
}
