//! `plait upload FILE URL`: a tus 1.0.0 upload to the server's `/.plait/uploads/`, resumable
//! across Ctrl-C, dropped networks and restarts of either side.
//!
//! The upload's URL is saved (`state`) as soon as the server creates it, keyed by the file's
//! path, size and modification time and the target, so the same command run again asks the
//! server where the upload stands (`HEAD` → `Upload-Offset`) and sends only the rest. The
//! server keeps every byte that reached it, even from a request cut in the middle
//! (docs/UPLOADS.md), so nothing is sent twice but what was in flight. A changed file is a
//! different key: it starts over rather than finishing an upload of other bytes.

use std::path::PathBuf;

use base64::Engine as _;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, Url};
use serde::{Deserialize, Serialize};

use super::state::StateFile;
use super::{file_body, open_at, Retry};
use crate::client::error::ClientError;
use crate::client::output::{human_size, Output};
use crate::client::progress::Progress;
use crate::client::remote::{root_endpoint_url, status_error};
use crate::client::Remote;

/// What to upload where.
pub struct UploadJob {
    pub file: PathBuf,
    pub target: Url,
    pub content_type: Option<String>,
    pub retry: Retry,
    /// Bytes per second at most (None: as fast as the network goes).
    pub rate: Option<u64>,
}

/// What happened.
pub struct Uploaded {
    /// The upload resource.
    pub upload_url: Url,
    pub size: u64,
    /// Where this run started: the server's offset when it was resumed, else 0.
    pub resumed_from: u64,
    /// The version the upload became (when the server said).
    pub version: serde_json::Value,
    /// Network failures retried on the way.
    pub retries: u32,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    upload: String,
}

enum Step {
    /// The upload is complete: the version the server made.
    Done(serde_json::Value),
    /// Some bytes went in; go on.
    Advanced,
    /// The server no longer knows the upload (expired, cancelled, finished): start a new one.
    Gone,
}

const TUS: &str = "1.0.0";

pub async fn upload(remote: &Remote, out: &Output, job: &UploadJob) -> Result<Uploaded, ClientError> {
    let meta = std::fs::metadata(&job.file).map_err(|e| ClientError::Usage(format!("{}: {e}", job.file.display())))?;
    if !meta.is_file() {
        return Err(ClientError::Usage(format!("{}: not a file", job.file.display())));
    }
    let size = meta.len();
    let canon = std::fs::canonicalize(&job.file)?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let key = [canon.to_string_lossy().into_owned(), size.to_string(), mtime.to_string(), job.target.to_string()];
    let state = StateFile::new("uploads", &key.iter().map(String::as_str).collect::<Vec<_>>())?;
    let mut upload_url = state.load::<Saved>().and_then(|s| Url::parse(&s.upload).ok());
    let name = job.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let progress = Progress::new(out, &name, Some(size), 0);
    let mut resumed_from = None;
    let (mut failures, mut retries, mut fresh_starts) = (0u32, 0u32, 0u32);
    loop {
        let step = match &upload_url {
            None => create(remote, job, size, &state).await.map(|(url, done)| {
                resumed_from.get_or_insert(0);
                upload_url = Some(url);
                done.map_or(Step::Advanced, Step::Done)
            }),
            Some(url) => send_rest(remote, job, url, size, &progress, &mut resumed_from, out).await,
        };
        match step {
            Ok(Step::Done(version)) => {
                progress.finish();
                state.remove();
                let upload_url = upload_url.ok_or_else(|| ClientError::Protocol("no upload URL".into()))?;
                let resumed_from = resumed_from.unwrap_or(0);
                return Ok(Uploaded { upload_url, size, resumed_from, version, retries });
            }
            Ok(Step::Advanced) => failures = 0,
            Ok(Step::Gone) => {
                state.remove();
                upload_url = None;
                fresh_starts += 1;
                if fresh_starts > 3 {
                    return Err(ClientError::Protocol("the server keeps forgetting the upload".into()));
                }
            }
            Err(e) if retryable(&e) && failures < job.retry.attempts => {
                failures += 1;
                retries += 1;
                let pause = job.retry.delay(failures);
                out.note(&format!("plait: {e}; retrying in {:.1} s", pause.as_secs_f64()));
                tokio::time::sleep(pause).await;
            }
            Err(e) => {
                progress.abandon();
                return Err(e);
            }
        }
    }
}

/// Network trouble, a 5xx, or a 409 saying the offset moved (a wrong offset, or a newer request
/// of ours superseded an older one): asking for the offset again and continuing can work.
fn retryable(e: &ClientError) -> bool {
    e.is_transient()
        || matches!(e, ClientError::Status { status: 409, code: Some(c), .. }
                    if c == "upload_offset" || c == "upload_superseded")
}

/// `POST /.plait/uploads/`: a new upload for the target; its URL is saved before any byte is
/// sent. A zero-length upload is complete at creation (returned as the second value).
async fn create(
    remote: &Remote,
    job: &UploadJob,
    size: u64,
    state: &StateFile,
) -> Result<(Url, Option<serde_json::Value>), ClientError> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let mut metadata = format!("path {}", b64(job.target.path()));
    if let Some(t) = &job.content_type {
        metadata.push_str(&format!(",filetype {}", b64(t)));
    }
    let req = remote
        .request(Method::POST, root_endpoint_url(&job.target, "uploads/"))
        .header("tus-resumable", TUS)
        .header("upload-length", size)
        .header("upload-metadata", metadata)
        .header(CONTENT_LENGTH, 0);
    let res = remote.send(req).await?;
    let location = res
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ClientError::Protocol("the upload was created without a Location".into()))?;
    let url =
        job.target.join(location).map_err(|e| ClientError::Protocol(format!("bad Location {location:?}: {e}")))?;
    state.save(&Saved { upload: url.to_string() })?;
    let done = (size == 0).then(|| super::super::cmd::version_ids(&res, "version"));
    Ok((url, done))
}

/// Asks the server for the offset, then sends the rest in one `PATCH`.
async fn send_rest(
    remote: &Remote,
    job: &UploadJob,
    url: &Url,
    size: u64,
    progress: &Progress,
    resumed_from: &mut Option<u64>,
    out: &Output,
) -> Result<Step, ClientError> {
    let res = remote.send_raw(remote.request(Method::HEAD, url.clone()).header("tus-resumable", TUS)).await?;
    match res.status().as_u16() {
        404 | 410 => return Ok(Step::Gone),
        s if s >= 400 => return Err(status_error(res).await),
        _ => {}
    }
    let offset = number(&res, "upload-offset")?;
    if number(&res, "upload-length").ok() != Some(size) || offset > size {
        return Ok(Step::Gone);
    }
    if resumed_from.is_none() {
        *resumed_from = Some(offset);
        if offset > 0 {
            out.note(&format!("resuming at {} of {}", human_size(offset), human_size(size)));
        }
    }
    progress.set(offset);
    let file = open_at(&job.file, offset).await?;
    let req = remote
        .request(Method::PATCH, url.clone())
        .header("tus-resumable", TUS)
        .header("upload-offset", offset)
        .header(CONTENT_TYPE, "application/offset+octet-stream")
        .header(CONTENT_LENGTH, size - offset)
        .body(file_body(file, size - offset, Some(progress.clone()), job.rate));
    let res = remote.send(req).await?;
    let now = number(&res, "upload-offset")?;
    if now >= size {
        return Ok(Step::Done(super::super::cmd::version_ids(&res, "version")));
    }
    Ok(Step::Advanced)
}

fn number(res: &Response, name: &str) -> Result<u64, ClientError> {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| ClientError::Protocol(format!("no {name} in the server's answer")))
}
