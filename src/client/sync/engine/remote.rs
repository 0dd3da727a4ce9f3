//! The server calls one folder's sync makes: the folder listing and the changes since a cursor
//! (long poll), a path's state (`HEAD`), text reads and Braid writes, file downloads, and the
//! delta exchange (`/.plait/chunks`, `missing`, `chunk`, `commit`). Each call maps the answer
//! to plain values; deciding what to do with them is `text.rs`, `binary.rs` and `mod.rs`.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::json;

use super::fsio::Landing;
use super::paths;
use super::state::{PathKind, QueuedWrite};
use crate::chunks::{ChunkId, ChunkParams};
use crate::client::remote::{endpoint_url, root_endpoint_url, status_error};
use crate::client::{ClientError, Remote};
use crate::protocol::{Patch, TextRange, VersionSet};

/// Requests other than the long poll and transfers give up after this long (then retried).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// One folder on one server.
#[derive(Clone)]
pub struct Server {
    pub remote: Remote,
    pub folder: Url,
}

/// One change from the folder's log (or one entry of a listing).
#[derive(Clone, Debug, Deserialize)]
pub struct Change {
    pub path: String,
    /// `delete`, `create`, `version`, … (None in a listing).
    #[serde(default)]
    pub what: Option<String>,
    /// The resource's heads after the change (`[]` once deleted).
    #[serde(default)]
    pub version: Vec<String>,
}

/// What a change says the server holds now: a reconcile waits (briefly) until `HEAD` shows
/// it, since the log can wake a watcher a moment before reads see the change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// These versions exist (as heads, or under newer ones).
    Versions(Vec<String>),
    /// The path was deleted.
    Gone,
}

impl Expect {
    pub fn of(c: &Change) -> Option<Expect> {
        match c.what.as_deref() {
            Some("delete") => Some(Expect::Gone),
            Some(_) if !c.version.is_empty() => Some(Expect::Versions(c.version.clone())),
            _ => None,
        }
    }

    /// Whether `head` shows it.
    pub fn seen_in(&self, head: &Head) -> bool {
        match self {
            Expect::Versions(v) => v.iter().all(|id| head.heads.contains(id)),
            Expect::Gone => head.kind.is_none() || head.deleted,
        }
    }
}

/// The answer of `GET folder/?since=…`.
#[derive(Debug, Deserialize)]
pub struct Changes {
    pub cursor: String,
    #[serde(default)]
    pub reset: bool,
    #[serde(default)]
    pub more: bool,
    #[serde(default)]
    pub changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Listing {
    cursor: Option<String>,
    next: Option<String>,
    entries: Vec<Change>,
}

/// What `HEAD` says about a path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Head {
    /// None: nothing there (never written, a text document erased).
    pub kind: Option<PathKind>,
    /// The served version (a text frontier, or a file's winner).
    pub version: Vec<String>,
    /// A file's heads (siblings when several); a text's frontier.
    pub heads: Vec<String>,
    /// SHA-256 (hex) of the served content, when the server said it.
    pub sha256: Option<String>,
    /// A file whose served version is a delete.
    pub deleted: bool,
}

fn versions(h: &HeaderMap, name: &str) -> Vec<String> {
    h.get(name).and_then(|v| VersionSet::parse_header(v.as_bytes()).ok()).map(|s| s.ids().to_vec()).unwrap_or_default()
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn protocol(e: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol(e.to_string())
}

impl Server {
    fn url(&self, rel: &str) -> Url {
        paths::resource_url(&self.folder, rel)
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, ClientError> {
        let res = self.remote.send(req.timeout(CALL_TIMEOUT)).await?;
        res.json::<T>().await.map_err(protocol)
    }

    /// The server's chunking parameters.
    pub async fn chunk_params(&self) -> Result<ChunkParams, ClientError> {
        let v: serde_json::Value =
            self.json(self.remote.request(Method::GET, root_endpoint_url(&self.folder, "chunks"))).await?;
        let n = |k: &str| v["chunking"][k].as_u64().map(|n| n as usize);
        match (n("min"), n("avg"), n("max")) {
            (Some(a), Some(b), Some(c)) => ChunkParams::new(a, b, c).map_err(protocol),
            _ => Err(ClientError::Protocol("GET /.plait/chunks has no chunking parameters".into())),
        }
    }

    /// Whether this credential may write under the folder: asking which of no chunks are
    /// missing needs the write right and changes nothing.
    pub async fn writable(&self) -> Result<bool, ClientError> {
        let url = endpoint_url(&self.url(".plait-probe"), "missing");
        let req = self.remote.request(Method::POST, url).json(&json!({ "chunks": [] })).timeout(CALL_TIMEOUT);
        let res = self.remote.send_raw(req).await?;
        match res.status().as_u16() {
            401 | 403 => Ok(false),
            s if s < 400 => Ok(true),
            _ => Err(status_error(res).await),
        }
    }

    /// The whole folder (recursive), page by page: every path and the cursor to watch from.
    pub async fn list(&self) -> Result<(Vec<String>, String), ClientError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        let mut cursor = None;
        loop {
            let mut url = self.folder.clone();
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("recursive", "1").append_pair("limit", "10000");
                if let Some(a) = &after {
                    q.append_pair("after", a);
                }
            }
            let req = self.remote.request(Method::GET, url).header("accept", "application/json");
            let page: Listing = match self.remote.send(req.timeout(CALL_TIMEOUT)).await {
                Ok(res) => res.json().await.map_err(protocol)?,
                // A folder with nothing in it yet is not an error for a sync.
                Err(ClientError::Status { status: 404, .. }) => Listing { cursor: None, next: None, entries: vec![] },
                Err(e) => return Err(e),
            };
            if cursor.is_none() {
                cursor = page.cursor;
            }
            out.extend(page.entries.into_iter().map(|e| e.path).filter(|p| !p.ends_with('/')));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let cursor = match cursor {
            Some(c) => c,
            None => self.poll("", 0).await?.cursor,
        };
        Ok((out, cursor))
    }

    /// The changes after `cursor` under the folder (recursive), waiting up to `wait` seconds
    /// for one. An empty cursor asks for a reset (the current cursor, no changes).
    pub async fn poll(&self, cursor: &str, wait: u64) -> Result<Changes, ClientError> {
        let mut url = self.folder.clone();
        url.query_pairs_mut()
            .append_pair("since", if cursor.is_empty() { "0000000000000000-0" } else { cursor })
            .append_pair("recursive", "1")
            .append_pair("wait", &wait.to_string());
        let req = self.remote.request(Method::GET, url).timeout(Duration::from_secs(wait + 30));
        let res = self.remote.send(req).await?;
        res.json().await.map_err(protocol)
    }

    /// A path's kind and versions.
    pub async fn head(&self, rel: &str) -> Result<Head, ClientError> {
        let req = self.remote.request(Method::HEAD, self.url(rel)).timeout(CALL_TIMEOUT);
        let res = self.remote.send_raw(req).await?;
        let status = res.status().as_u16();
        let h = res.headers();
        let file = header_str(h, "merge-type").is_some_and(|m| m.eq_ignore_ascii_case("aww"));
        let sha256 =
            h.get("repr-digest").and_then(|v| crate::protocol::parse_repr_digest(v.as_bytes())).map(hex::encode);
        let version = versions(h, "version");
        let mut heads = versions(h, "current-version");
        if heads.is_empty() {
            heads = version.clone();
        }
        match status {
            200..=299 if file => Ok(Head { kind: Some(PathKind::File), version, heads, sha256, deleted: false }),
            200..=299 if version.is_empty() => Ok(Head::default()),
            200..=299 => Ok(Head { kind: Some(PathKind::Text), version, heads, sha256, deleted: false }),
            404 | 410 if file => Ok(Head { kind: Some(PathKind::File), version, heads, sha256: None, deleted: true }),
            404 | 410 => Ok(Head::default()),
            _ => Err(status_error(res).await),
        }
    }

    /// A text document's text and frontier.
    pub async fn get_text(&self, rel: &str) -> Result<(String, Vec<String>), ClientError> {
        let req = self.remote.request(Method::GET, self.url(rel)).timeout(CALL_TIMEOUT);
        let res = self.remote.send(req).await?;
        let version = versions(res.headers(), "version");
        let bytes = res.bytes().await?;
        let text = String::from_utf8(bytes.to_vec()).map_err(protocol)?;
        Ok((text, version))
    }

    /// Sends one queued text write (idempotent on its version).
    pub async fn put_text(&self, rel: &str, w: &QueuedWrite) -> Result<(), ClientError> {
        let parents = VersionSet::new(w.parents.iter().cloned()).to_header();
        let version = VersionSet::new([w.version.clone()]).to_header();
        let mut req = self
            .remote
            .request(Method::PUT, self.url(rel))
            .header("version", version)
            .header("parents", parents)
            .header("merge-type", "dt")
            .timeout(CALL_TIMEOUT);
        match w.patches.as_slice() {
            [(s, e, content)] => {
                req = req
                    .header("content-range", format!("text [{s}:{e}]"))
                    .header("content-type", "text/plain; charset=utf-8")
                    .body(content.clone());
            }
            many => {
                let patches: Vec<Patch> = many
                    .iter()
                    .map(|(s, e, c)| Patch { range: TextRange::absolute(*s, *e), content: c.clone() })
                    .collect();
                let mut body = Vec::new();
                crate::protocol::encode_patches_body(&patches, &mut body);
                req = req.header("patches", patches.len().to_string()).body(body);
            }
        }
        self.remote.send(req).await.map(|_| ())
    }

    /// `DELETE`: a text document erased, a file's tombstone. Already gone counts as done.
    pub async fn delete(&self, rel: &str) -> Result<(), ClientError> {
        let req = self.remote.request(Method::DELETE, self.url(rel)).timeout(CALL_TIMEOUT);
        match self.remote.send(req).await {
            Ok(_) | Err(ClientError::Status { status: 404 | 410, .. }) => Ok(()),
            Err(ClientError::Status { code: Some(c), .. }) if c == "file_deleted" => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Which of these chunks the server lacks (for this caller).
    pub async fn missing(&self, rel: &str, ids: &[ChunkId]) -> Result<Vec<ChunkId>, ClientError> {
        #[derive(Deserialize)]
        struct Missing {
            missing: Vec<String>,
        }
        let mut out = Vec::new();
        for part in ids.chunks(100_000) {
            let list: Vec<String> = part.iter().map(ChunkId::to_string).collect();
            let req = self
                .remote
                .request(Method::POST, endpoint_url(&self.url(rel), "missing"))
                .json(&json!({ "chunks": list }));
            let m: Missing = self.json(req).await?;
            for id in m.missing {
                out.push(ChunkId::from_hex(&id).ok_or_else(|| protocol(format!("bad chunk id {id:?}")))?);
            }
        }
        Ok(out)
    }

    /// Uploads one chunk.
    pub async fn put_chunk(&self, rel: &str, id: ChunkId, bytes: Vec<u8>) -> Result<(), ClientError> {
        let mut url = endpoint_url(&self.url(rel), "chunk");
        url.set_query(Some(&format!("id={id}")));
        let req = self.remote.request(Method::PUT, url).body(bytes).timeout(CALL_TIMEOUT);
        self.remote.send(req).await.map(|_| ())
    }

    /// Commits a version by its chunk list; returns the heads after it.
    pub async fn commit(
        &self,
        rel: &str,
        chunks: &[(ChunkId, u64)],
        sha256: &[u8; 32],
        version: &str,
        parents: Option<&[String]>,
        content_type: &str,
    ) -> Result<Vec<String>, ClientError> {
        let list: Vec<serde_json::Value> =
            chunks.iter().map(|(id, len)| json!({ "id": id.to_string(), "len": len })).collect();
        let mut req = self
            .remote
            .request(Method::POST, endpoint_url(&self.url(rel), "commit"))
            .header("repr-digest", crate::protocol::repr_digest_sha256(sha256))
            .header("version", VersionSet::new([version.to_owned()]).to_header())
            .header("content-type", content_type)
            .body(json!({ "chunks": list }).to_string())
            .timeout(CALL_TIMEOUT);
        if let Some(p) = parents {
            req = req.header("parents", VersionSet::new(p.iter().cloned()).to_header());
        }
        let res = self.remote.send(req).await?;
        Ok(versions(res.headers(), "current-version"))
    }

    /// Streams a file version (the served one when `version` is None) into `landing`, calling
    /// `progress` with the bytes so far; returns the SHA-256 (hex) of what was written.
    pub async fn download(
        &self,
        rel: &str,
        version: Option<&str>,
        landing: &mut Landing,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<String, ClientError> {
        use sha2::Digest;
        let mut req = self.remote.request(Method::GET, self.url(rel));
        if let Some(v) = version {
            req = req.header("version", VersionSet::new([v.to_owned()]).to_header());
        }
        let res = self.remote.send(req).await?;
        let total = res.content_length().unwrap_or(0);
        let mut sha = sha2::Sha256::new();
        let mut done = 0u64;
        let mut body = res.bytes_stream();
        while let Some(piece) = body.next().await {
            let piece = piece?;
            sha.update(&piece);
            landing.write(&piece)?;
            done += piece.len() as u64;
            progress(done, total);
        }
        landing.finish()?;
        Ok(hex::encode(sha.finalize()))
    }
}
