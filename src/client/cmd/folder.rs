//! `plait ls` (a folder's listing, every page) and `plait rm` (delete a resource).

use clap::Args;
use reqwest::header::ACCEPT;
use reqwest::Method;
use serde_json::{json, Value};

use super::{parse_url, version_ids, Ctx, Global};
use crate::client::error::ClientError;
use crate::client::output::{field, human_size, show_time_ms, show_version, table};

/// `plait ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// The folder's URL (a trailing / is added if missing).
    pub url: String,
    /// The whole subtree (resources only, in path order).
    #[arg(long, short = 'r')]
    pub recursive: bool,
    #[command(flatten)]
    pub global: Global,
}

pub const LS_EXAMPLES: &str = "\
Examples:
  plait ls http://127.0.0.1:8080/notes/
  plait ls -r http://127.0.0.1:8080/
  plait ls http://127.0.0.1:8080/notes/ --json   # {\"folder\", \"cursor\", \"entries\": [...]}";

/// `plait rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// The resource's URL.
    pub url: String,
    #[command(flatten)]
    pub global: Global,
}

pub const RM_EXAMPLES: &str = "\
Examples:
  plait rm http://127.0.0.1:8080/notes/old
  plait rm http://127.0.0.1:8080/photos/cat.jpg   # a file's delete is a version: restore brings it back";

/// The most pages `ls` follows (10 million entries at the server's 1,000 a page is plenty;
/// a server that never ends its `next` chain must not keep us for ever).
const MAX_PAGES: usize = 10_000;

pub async fn ls(ctx: &Ctx, a: LsArgs) -> Result<(), ClientError> {
    let mut url = parse_url(&a.url)?;
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    let remote = ctx.remote(&url)?;
    let (mut entries, mut cursor, mut after) = (Vec::new(), Value::Null, None::<String>);
    for _ in 0..MAX_PAGES {
        let mut page_url = url.clone();
        {
            let mut q = page_url.query_pairs_mut();
            if a.recursive {
                q.append_pair("recursive", "1");
            }
            if let Some(after) = &after {
                q.append_pair("after", after);
            }
        }
        if page_url.query() == Some("") {
            page_url.set_query(None);
        }
        let res = remote.send(remote.request(Method::GET, page_url).header(ACCEPT, "application/json")).await?;
        let page: Value = res.json().await?;
        if cursor.is_null() {
            cursor = page.get("cursor").cloned().unwrap_or(Value::Null);
        }
        if let Some(list) = page.get("entries").and_then(Value::as_array) {
            entries.extend(list.iter().cloned());
        }
        after = page.get("next").and_then(Value::as_str).map(str::to_owned);
        if after.is_none() {
            break;
        }
    }
    let folder = url.path().to_owned();
    let value = json!({"folder": folder, "cursor": cursor, "entries": entries});
    ctx.out.result(&value, || {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                let kind = field(e, "type");
                let size = match (kind.as_str(), e.get("size").and_then(Value::as_u64)) {
                    ("file", Some(n)) => human_size(n),
                    ("text", Some(n)) => format!("{n} ch"),
                    _ => "-".into(),
                };
                let name = if a.recursive { field(e, "path") } else { field(e, "name") };
                let conflict =
                    if e.get("conflict").and_then(Value::as_bool) == Some(true) { " (conflict)" } else { "" };
                vec![
                    kind,
                    size,
                    show_time_ms(e.get("modified_ms").and_then(Value::as_u64)),
                    format!("{name}{conflict}"),
                ]
            })
            .collect();
        table(&["KIND", "SIZE", "MODIFIED (UTC)", "NAME"], &rows)
    })
}

pub async fn rm(ctx: &Ctx, a: RmArgs) -> Result<(), ClientError> {
    let url = parse_url(&a.url)?;
    let remote = ctx.remote(&url)?;
    let res = remote.send(remote.request(Method::DELETE, url.clone())).await?;
    let version = version_ids(&res, "version");
    ctx.out.result(&json!({"url": url.as_str(), "deleted": true, "version": version}), || {
        if version.as_array().is_some_and(|v| !v.is_empty()) {
            format!("deleted {url} @ {}\n", show_version(&version))
        } else {
            format!("deleted {url}\n")
        }
    })
}
