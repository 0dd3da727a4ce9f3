//! The load generator's tus 1.0.0 client (scenarios U1–U3): creation, appends streamed from
//! the caller's bytes piece by piece, the offset, on the benchmark's own HTTP/1.1 connection
//! ([`Conn`]) so that what is timed is the server, not a client library.
//!
//! It sends what tus-js-client sends: `POST /.plait/uploads/` with `Upload-Length` and
//! `Upload-Metadata` (the target `path` and its `filetype`), then `PATCH`es with
//! `Content-Type: application/offset+octet-stream` and `Upload-Offset`, one for the whole body
//! (its default `chunkSize: Infinity`) or one per `chunkSize` bytes; after a cut, `HEAD` for the
//! offset the server kept. Against the no-op reference ([`Peer::Noop`]) the same requests are
//! sent and any 200 is accepted: it reads the bytes and answers nothing else.

use std::net::SocketAddr;

use anyhow::{anyhow, ensure};
use base64::Engine as _;

use super::client::{Conn, Response};
use super::files::PIECE;

/// The upload collection.
pub const UPLOADS: &str = "/.plait/uploads/";
const TUS: (&str, &str) = ("tus-resumable", "1.0.0");
const OCTETS: (&str, &str) = ("content-type", "application/offset+octet-stream");

/// Who answers the requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Plait: every answer is checked against tus.
    Plait,
    /// The no-op reference: any 200 will do.
    Noop,
}

/// `Upload-Metadata` naming the target resource and its media type.
fn metadata(path: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!("path {},filetype {}", b64(path), b64("application/octet-stream"))
}

fn failed(what: &str, res: &Response) -> anyhow::Error {
    anyhow!("{what} answered {}: {}", res.status, String::from_utf8_lossy(&res.body))
}

/// Creates an upload of `len` bytes that becomes a version of `target`; returns its URL path.
pub async fn create(conn: &mut Conn, peer: Peer, target: &str, len: u64) -> anyhow::Result<String> {
    let (len, meta) = (len.to_string(), metadata(target));
    let res = conn.request("POST", UPLOADS, &[TUS, ("upload-length", &len), ("upload-metadata", &meta)], b"").await?;
    match peer {
        Peer::Noop if res.status == 200 => Ok(format!("{UPLOADS}noop")),
        Peer::Plait if res.status == 201 => {
            res.header("location").map(str::to_string).ok_or_else(|| anyhow!("tus creation without a Location"))
        }
        _ => Err(failed("tus creation", &res)),
    }
}

/// Sends the head of a `PATCH` of `len` bytes at `offset`; the caller writes the body.
pub async fn send_patch_head(conn: &mut Conn, url: &str, offset: u64, len: u64) -> anyhow::Result<()> {
    let offset = offset.to_string();
    conn.send_head("PATCH", url, &[TUS, OCTETS, ("upload-offset", &offset)], len).await
}

/// One `PATCH` of `bytes` at `offset`, written in pieces; returns the new offset.
pub async fn append(conn: &mut Conn, peer: Peer, url: &str, offset: u64, bytes: &[u8]) -> anyhow::Result<u64> {
    append_with(conn, peer, url, offset, bytes.len() as u64, |at, piece| {
        let at = usize::try_from(at - offset).unwrap_or(usize::MAX);
        piece.copy_from_slice(&bytes[at..at + piece.len()]);
    })
    .await
}

/// One `PATCH` of `len` bytes at `offset`, each piece made by `fill(upload offset, piece)` just
/// before it is written (a large upload is never held whole); returns the new offset.
pub async fn append_with(
    conn: &mut Conn,
    peer: Peer,
    url: &str,
    offset: u64,
    len: u64,
    mut fill: impl FnMut(u64, &mut [u8]),
) -> anyhow::Result<u64> {
    send_patch_head(conn, url, offset, len).await?;
    let mut piece = vec![0u8; PIECE];
    let end = offset + len;
    let mut at = offset;
    while at < end {
        let n = usize::try_from(end - at).unwrap_or(PIECE).min(PIECE);
        fill(at, &mut piece[..n]);
        conn.write_body(&piece[..n]).await?;
        at += n as u64;
    }
    let res = conn.read_response(false).await?;
    match peer {
        Peer::Noop if res.status == 200 => Ok(end),
        Peer::Plait if res.status == 204 => {
            let now = res.header("upload-offset").and_then(|v| v.parse::<u64>().ok());
            ensure!(now == Some(end), "PATCH at {offset} of {len} bytes: Upload-Offset {now:?}");
            Ok(end)
        }
        _ => Err(failed("tus PATCH", &res)),
    }
}

/// `PATCH`es `data[from..]` in requests of at most `patch` bytes; returns the end offset.
pub async fn append_from(
    conn: &mut Conn,
    peer: Peer,
    url: &str,
    data: &[u8],
    from: u64,
    patch: usize,
) -> anyhow::Result<u64> {
    let mut offset = from;
    let start = usize::try_from(from)?;
    for piece in data[start..].chunks(patch.max(1)) {
        offset = append(conn, peer, url, offset, piece).await?;
    }
    Ok(offset)
}

/// A whole tus upload of `data` to `target`: creation, then `PATCH`es of at most `patch` bytes
/// (`usize::MAX`: one, as tus-js-client's default `chunkSize: Infinity` sends).
pub async fn upload(conn: &mut Conn, peer: Peer, target: &str, data: &[u8], patch: usize) -> anyhow::Result<()> {
    let url = create(conn, peer, target, data.len() as u64).await?;
    let end = append_from(conn, peer, &url, data, 0, patch).await?;
    ensure!(end == data.len() as u64, "the upload ended at {end} of {} bytes", data.len());
    Ok(())
}

/// Checks the version an upload became: `HEAD` of `target` answers its length and the
/// `Repr-Digest` of the bytes sent (whose SHA-256 is `sha256`).
pub async fn check_version(addr: SocketAddr, target: &str, len: u64, sha256: &[u8; 32]) -> anyhow::Result<()> {
    let mut conn = Conn::connect(addr).await?;
    let res = conn.request("HEAD", target, &[], b"").await?;
    ensure!(res.status == 200, "HEAD {target} after its upload answered {}", res.status);
    let got = (res.header("content-length"), res.header("repr-digest"));
    let want = plait::protocol::digest::repr_digest_sha256(sha256);
    let want_len = len.to_string();
    ensure!(got == (Some(want_len.as_str()), Some(want.as_str())), "{target}: {got:?}, not {len} bytes and {want}");
    Ok(())
}

/// Whether `target` has no version yet (any URL is a resource: one never written answers an
/// empty `Version`): nothing of a cut upload may have become one.
pub async fn no_version(addr: SocketAddr, target: &str) -> anyhow::Result<bool> {
    let mut conn = Conn::connect(addr).await?;
    let res = conn.request("HEAD", target, &[], b"").await?;
    Ok(res.status == 404 || (res.status == 200 && res.header("version") == Some("")))
}

/// A size for a label: "5 MiB", or "768 KiB" when it is not whole MiB.
pub fn size_label(bytes: usize) -> String {
    if bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

/// SHA-256 of `data` (for [`check_version`]).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}

/// `HEAD`: the offset the server holds.
pub async fn offset(conn: &mut Conn, url: &str) -> anyhow::Result<u64> {
    let res = conn.request("HEAD", url, &[TUS], b"").await?;
    ensure!(res.status == 200, "{}", failed("tus HEAD", &res));
    res.header("upload-offset").and_then(|v| v.parse().ok()).ok_or_else(|| anyhow!("tus HEAD without Upload-Offset"))
}
