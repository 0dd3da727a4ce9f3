//! `plait get`, `put` and `patch`: read and write one resource with plain Braid-HTTP headers
//! only (`Version`, `Parents`, `Content-Range: text [a:b]`), so they work against any Braid
//! server (braid-text too), and against Plait's files (bytes in, bytes out).

use std::io::Read;
use std::path::PathBuf;

use base64::Engine as _;
use clap::Args;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, Response};
use serde_json::json;

use super::{parse_url, version_header, version_ids, Ctx, Global};
use crate::client::error::ClientError;
use crate::client::output::{human_size, write_stdout};

/// `plait get`.
#[derive(Args, Debug)]
pub struct GetArgs {
    /// The resource's URL.
    pub url: String,
    /// An old version instead of the current one (an id like alice-4, or a Version header value).
    #[arg(long)]
    pub version: Option<String>,
    /// Write the content to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub global: Global,
}

pub const GET_EXAMPLES: &str = "\
Examples:
  plait get http://127.0.0.1:8080/notes/tour
  plait get http://127.0.0.1:8080/notes/tour --version alice-4
  plait get http://127.0.0.1:8080/photos/cat.jpg -o cat.jpg
  plait get http://127.0.0.1:8080/notes/tour --json     # {\"version\": [...], \"text\": ...}";

/// `plait put`.
#[derive(Args, Debug)]
pub struct PutArgs {
    /// The resource's URL.
    pub url: String,
    /// The new content: a file, or - (the default) for stdin.
    #[arg(default_value = "-")]
    pub file: String,
    /// The media type (a non-text type makes a new resource a file).
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// Write on top of this version (default: the current one); conflicting writes to a file
    /// are kept side by side.
    #[arg(long, value_name = "VERSION")]
    pub parents: Option<String>,
    #[command(flatten)]
    pub global: Global,
}

pub const PUT_EXAMPLES: &str = "\
Examples:
  echo hello | plait put http://127.0.0.1:8080/notes/a
  plait put http://127.0.0.1:8080/notes/readme README.md
  plait put http://127.0.0.1:8080/photos/cat.jpg cat.jpg --content-type image/jpeg
  plait put http://127.0.0.1:8080/photos/cat.jpg cat2.jpg --parents 1796672702.250";

/// `plait patch`.
#[derive(Args, Debug)]
pub struct PatchArgs {
    /// The text's URL.
    pub url: String,
    /// The code points to replace, START:END (0:0 inserts at the start; START:END with no
    /// text deletes).
    #[arg(long, value_name = "START:END")]
    pub range: String,
    /// The replacement text, or - (the default) for stdin.
    #[arg(default_value = "-")]
    pub text: String,
    #[command(flatten)]
    pub global: Global,
}

pub const PATCH_EXAMPLES: &str = "\
Examples:
  plait patch http://127.0.0.1:8080/notes/tour --range 5:5 ' world'   # insert at 5
  plait patch http://127.0.0.1:8080/notes/tour --range 0:1 ''         # delete the first code point
  printf 'Hello' | plait patch http://127.0.0.1:8080/notes/tour --range 0:5";

pub async fn get(ctx: &Ctx, a: GetArgs) -> Result<(), ClientError> {
    let url = parse_url(&a.url)?;
    let remote = ctx.remote(&url)?;
    let mut req = remote.request(Method::GET, url.clone());
    if let Some(v) = &a.version {
        req = req.header("version", version_header(v)?);
    }
    let mut res = remote.send(req).await?;
    let version = version_ids(&res, "version");
    let content_type = header(&res, "content-type");
    let is_file = header(&res, "merge-type").as_deref() == Some("aww");
    let kind = if is_file { "file" } else { "text" };
    if let Some(path) = &a.output {
        let size = write_body_to(&mut res, path).await?;
        return ctx.out.result(
            &json!({"url": url.as_str(), "kind": kind, "version": version, "content_type": content_type,
                    "size": size, "output": path.display().to_string()}),
            || format!("{} → {} ({})\n", url, path.display(), human_size(size)),
        );
    }
    if ctx.out.json {
        let body = res.bytes().await?;
        let mut v = json!({"url": url.as_str(), "kind": kind, "version": version,
                           "content_type": content_type, "size": body.len()});
        match std::str::from_utf8(&body) {
            Ok(text) if !is_file => v["text"] = json!(text),
            _ => v["content_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(&body)),
        }
        return ctx.out.json_line(&v);
    }
    if ctx.out.quiet {
        return Ok(());
    }
    while let Some(chunk) = res.chunk().await? {
        write_stdout(&chunk)?;
    }
    Ok(())
}

pub async fn put(ctx: &Ctx, a: PutArgs) -> Result<(), ClientError> {
    let url = parse_url(&a.url)?;
    let remote = ctx.remote(&url)?;
    let mut req = remote.request(Method::PUT, url.clone());
    if let Some(t) = &a.content_type {
        req = req.header(CONTENT_TYPE, t);
    }
    if let Some(p) = &a.parents {
        req = req.header("parents", version_header(p)?);
    }
    let size;
    if a.file == "-" {
        let body = read_stdin()?;
        size = body.len() as u64;
        req = req.body(body);
    } else {
        let path = PathBuf::from(&a.file);
        let file =
            tokio::fs::File::open(&path).await.map_err(|e| ClientError::Usage(format!("{}: {e}", path.display())))?;
        size = file.metadata().await?.len();
        let body = crate::client::transfer::file_body(file, size, None, None);
        req = req.header(CONTENT_LENGTH, size).body(body);
    }
    let res = remote.send(req).await?;
    let version = version_ids(&res, "version");
    let conflict = header(&res, "conflict");
    ctx.out.result(&json!({"url": url.as_str(), "version": version, "size": size, "conflict": conflict}), || {
        let mut s = format!("{} @ {}", url, crate::client::output::show_version(&version));
        if let Some(c) = &conflict {
            s.push_str(&format!(" (conflict: {c})"));
        }
        s + "\n"
    })
}

pub async fn patch(ctx: &Ctx, a: PatchArgs) -> Result<(), ClientError> {
    let url = parse_url(&a.url)?;
    let (start, end) = parse_range(&a.range)?;
    let text = if a.text == "-" {
        String::from_utf8(read_stdin()?).map_err(|_| ClientError::Usage("the patch text is not UTF-8".into()))?
    } else {
        a.text.clone()
    };
    let remote = ctx.remote(&url)?;
    // The patch's range counts code points of the current version: name it as the parent, so
    // an edit made meanwhile by someone else merges instead of shifting the range.
    let head = remote.send_raw(remote.request(Method::HEAD, url.clone())).await?;
    let parents = match head.status().as_u16() {
        404 => String::new(),
        s if s >= 400 => return Err(crate::client::remote::status_error(head).await),
        _ => head.headers().get("version").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned(),
    };
    let req = remote
        .request(Method::PUT, url.clone())
        .header("parents", parents)
        .header("content-range", format!("text [{start}:{end}]"))
        .body(text.into_bytes());
    let res = remote.send(req).await?;
    let version = version_ids(&res, "version");
    ctx.out.result(&json!({"url": url.as_str(), "version": version, "range": [start, end]}), || {
        format!("{} @ {}\n", url, crate::client::output::show_version(&version))
    })
}

/// `START:END` → the two positions (code points).
fn parse_range(s: &str) -> Result<(u64, u64), ClientError> {
    let bad = || ClientError::Usage(format!("--range {s:?}: expected START:END, e.g. 5:5"));
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    let (a, b) = (a.trim().parse::<u64>().map_err(|_| bad())?, b.trim().parse::<u64>().map_err(|_| bad())?);
    if a > b {
        return Err(ClientError::Usage(format!("--range {s:?}: START is after END")));
    }
    Ok((a, b))
}

fn read_stdin() -> Result<Vec<u8>, ClientError> {
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf).map_err(|e| ClientError::Local(format!("stdin: {e}")))?;
    Ok(buf)
}

/// A response header as text, if present.
pub(super) fn header(res: &Response, name: &str) -> Option<String> {
    res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Streams the body into `path` (through a temp file renamed at the end, so a failed read
/// never leaves a half file under the name); returns its size.
async fn write_body_to(res: &mut Response, path: &std::path::Path) -> Result<u64, ClientError> {
    use tokio::io::AsyncWriteExt;
    let tmp = crate::client::transfer::sibling(path, ".plait-tmp");
    let mut f =
        tokio::fs::File::create(&tmp).await.map_err(|e| ClientError::Local(format!("{}: {e}", tmp.display())))?;
    let mut size = 0u64;
    let copied: Result<(), ClientError> = async {
        while let Some(chunk) = res.chunk().await? {
            f.write_all(&chunk).await?;
            size += chunk.len() as u64;
        }
        f.flush().await?;
        Ok(())
    }
    .await;
    if let Err(e) = copied {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    tokio::fs::rename(&tmp, path).await.map_err(|e| ClientError::Local(format!("{}: {e}", path.display())))?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("5:5").unwrap(), (5, 5));
        assert_eq!(parse_range("0:12").unwrap(), (0, 12));
        assert!(parse_range("5").is_err());
        assert!(parse_range("6:5").is_err());
        assert!(parse_range("a:b").is_err());
    }
}
