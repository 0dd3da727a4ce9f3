//! The load generator's client of direct uploads (issue 17 part 5), scenarios U1 and U2: what
//! Uppy's `@uppy/aws-s3` does against Plait's Companion-compatible routes, on the benchmark's own
//! HTTP/1.1 connections. A grant for a folder (`POST /.plait/direct`), then per upload: create
//! (`POST <endpoint>/s3/multipart`), one signed URL per part (`GET …/multipart/<id>/<n>?key=`),
//! the part's bytes `PUT` straight to the store on that URL (its ETag kept), the parts S3 holds
//! after a cut (`GET …/multipart/<id>?key=`), and completion (`POST …/complete?key=`), which Plait
//! answers once the object is a version. The same presigned-part `PUT` serves the reference of
//! the S3 server alone ([`put_part`]).

use std::net::SocketAddr;

use anyhow::{anyhow, ensure, Context};
use serde_json::{json, Value};

use super::client::{Conn, Response};
use super::files::PIECE;

/// Every byte but the unreserved ones percent-encoded (S3 upload ids carry `/`, `+`, `=`).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn json_of(what: &str, res: &Response, status: u16) -> anyhow::Result<Value> {
    let text = String::from_utf8_lossy(&res.body);
    ensure!(res.status == status, "{what} answered {}: {text}", res.status);
    serde_json::from_slice(&res.body).with_context(|| format!("{what}: not JSON: {text}"))
}

async fn post_json(conn: &mut Conn, path: &str, body: &Value) -> anyhow::Result<Response> {
    conn.request("POST", path, &[("content-type", "application/json")], body.to_string().as_bytes()).await
}

/// One upload in progress: the grant's endpoint, Plait's key and S3's upload id.
pub struct Upload {
    endpoint: String,
    key: String,
    id: String,
}

/// A grant to upload into `folder`; returns its endpoint.
pub async fn grant(conn: &mut Conn, folder: &str) -> anyhow::Result<String> {
    let res = post_json(conn, "/.plait/direct", &json!({ "folder": folder })).await?;
    let answer = json_of("POST /.plait/direct", &res, 201)?;
    answer["endpoint"].as_str().map(str::to_string).ok_or_else(|| anyhow!("a grant without an endpoint: {answer}"))
}

impl Upload {
    /// Creates an upload of `filename` in the grant's folder.
    pub async fn create(conn: &mut Conn, endpoint: &str, filename: &str) -> anyhow::Result<Upload> {
        let ask = json!({ "filename": filename, "type": "application/octet-stream", "metadata": {} });
        let res = post_json(conn, &format!("{endpoint}/s3/multipart"), &ask).await?;
        let answer = json_of("direct upload creation", &res, 200)?;
        let field = |name: &str| {
            answer[name].as_str().map(str::to_string).ok_or_else(|| anyhow!("creation without {name}: {answer}"))
        };
        Ok(Upload { endpoint: endpoint.to_string(), key: field("key")?, id: field("uploadId")? })
    }

    /// `<endpoint>/s3/multipart/<id><tail>?key=<key>`.
    fn route(&self, tail: &str) -> String {
        format!("{}/s3/multipart/{}{tail}?key={}", self.endpoint, encode(&self.id), encode(&self.key))
    }

    /// The URL Plait signs for part `number`.
    pub async fn sign(&self, conn: &mut Conn, number: u32) -> anyhow::Result<String> {
        let res = conn.request("GET", &self.route(&format!("/{number}")), &[], b"").await?;
        let answer = json_of("signing a part", &res, 200)?;
        answer["url"].as_str().map(str::to_string).ok_or_else(|| anyhow!("a signature without a url: {answer}"))
    }

    /// The part numbers S3 holds (after a cut: what need not be sent again).
    pub async fn parts(&self, conn: &mut Conn) -> anyhow::Result<Vec<(u32, String)>> {
        let res = conn.request("GET", &self.route(""), &[], b"").await?;
        let answer = json_of("listing the parts", &res, 200)?;
        let list = answer.as_array().ok_or_else(|| anyhow!("parts: not a list: {answer}"))?;
        list.iter()
            .map(|p| match (p["PartNumber"].as_u64(), p["ETag"].as_str()) {
                (Some(n), Some(etag)) => Ok((n as u32, etag.to_string())),
                _ => Err(anyhow!("a part without PartNumber or ETag: {p}")),
            })
            .collect()
    }

    /// Completes the upload from its parts; returns the version's path once it is durable.
    pub async fn complete(&self, conn: &mut Conn, parts: &[(u32, String)]) -> anyhow::Result<String> {
        let list: Vec<Value> = parts.iter().map(|(n, etag)| json!({ "PartNumber": n, "ETag": etag })).collect();
        let res = post_json(conn, &self.route("/complete"), &json!({ "parts": list })).await?;
        let answer = json_of("completing a direct upload", &res, 200)?;
        answer["location"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("completion without a location: {answer}"))
    }
}

/// The address and path (with the signed query) of a presigned `http://` URL.
fn split_url(url: &str) -> anyhow::Result<(SocketAddr, &str)> {
    let rest = url.strip_prefix("http://").ok_or_else(|| anyhow!("a presigned URL not on http: {url}"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    Ok((host.parse().with_context(|| format!("the host of {url}"))?, path))
}

/// Sends `bytes` as a part to its presigned `url` on the store connection in `s3` (opened at
/// the first part, kept alive); returns the part's ETag.
pub async fn put_part(s3: &mut Option<Conn>, url: &str, bytes: &[u8]) -> anyhow::Result<String> {
    let (addr, path) = split_url(url)?;
    let conn = match s3 {
        Some(conn) => conn,
        None => s3.insert(Conn::connect(addr).await?),
    };
    conn.send_head("PUT", path, &[], bytes.len() as u64).await?;
    for piece in bytes.chunks(PIECE) {
        conn.write_body(piece).await?;
    }
    let res = conn.read_response(false).await?;
    ensure!(res.status == 200, "a part PUT answered {}: {}", res.status, String::from_utf8_lossy(&res.body));
    res.header("etag").map(str::to_string).ok_or_else(|| anyhow!("a part answered without an ETag"))
}

/// Writes `bytes`, the start of a part of `total` bytes, to its presigned `url` on a connection
/// of its own, then cuts it with a TCP reset (U2: S3 keeps nothing of a part it did not receive
/// whole); returns the bytes that connection put on the wire.
pub async fn cut_part(url: &str, total: u64, bytes: &[u8]) -> anyhow::Result<u64> {
    let (addr, path) = split_url(url)?;
    let mut conn = Conn::connect(addr).await?;
    conn.send_head("PUT", path, &[], total).await?;
    for piece in bytes.chunks(PIECE) {
        conn.write_body(piece).await?;
    }
    let wire = conn.sent + conn.received;
    conn.abort()?;
    Ok(wire)
}

/// A whole direct upload of `data` as `filename`, in parts of `part` bytes, on `plait` (the
/// connection to Plait) and a store connection of its own; returns the version's path.
pub async fn upload(
    plait: &mut Conn,
    endpoint: &str,
    filename: &str,
    data: &[u8],
    part: usize,
) -> anyhow::Result<String> {
    let upload = Upload::create(plait, endpoint, filename).await?;
    let mut s3 = None;
    let mut parts = Vec::new();
    for (i, bytes) in data.chunks(part).enumerate() {
        let number = i as u32 + 1;
        let url = upload.sign(plait, number).await?;
        parts.push((number, put_part(&mut s3, &url, bytes).await?));
    }
    upload.complete(plait, &parts).await
}
