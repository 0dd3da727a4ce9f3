//! `plait download URL -o FILE`: the resource's bytes into `FILE.part`, renamed to `FILE` once
//! complete. An interrupted download (Ctrl-C, a dropped network, a crash) resumes from the
//! `.part` file's length with `Range: bytes=N-` and `If-Range: <ETag>`: the server sends the
//! rest only if the resource is still the version the first bytes came from, else the whole new
//! version (200), and the download starts over cleanly instead of splicing two versions.
//!
//! The ETag the `.part` file was started from is kept in a state file (`state`) keyed by the
//! URL and the output path; a `.part` without it is never trusted.

use std::io::Write;
use std::path::{Path, PathBuf};

use reqwest::header::{CONTENT_LENGTH, ETAG, IF_RANGE, RANGE};
use reqwest::{Method, Response, StatusCode, Url};
use serde::{Deserialize, Serialize};

use super::state::StateFile;
use super::{sibling, Retry};
use crate::client::error::ClientError;
use crate::client::output::{human_size, Output};
use crate::client::progress::Progress;
use crate::client::remote::status_error;
use crate::client::Remote;

/// What to download where.
pub struct DownloadJob {
    pub url: Url,
    pub output: PathBuf,
    pub retry: Retry,
    /// Bytes per second at most (None: as fast as the network goes).
    pub rate: Option<u64>,
}

/// What happened.
pub struct Downloaded {
    pub size: u64,
    /// The `.part` length this run resumed from (0: from the start).
    pub resumed_from: u64,
    /// The `.part` file was dropped because the resource changed.
    pub restarted: bool,
    pub version: serde_json::Value,
    pub retries: u32,
}

#[derive(Serialize, Deserialize, Clone, PartialEq)]
struct Saved {
    etag: String,
    size: Option<u64>,
}

pub async fn download(remote: &Remote, out: &Output, job: &DownloadJob) -> Result<Downloaded, ClientError> {
    let part = sibling(&job.output, ".part");
    let abs = std::path::absolute(&job.output)?;
    let state = StateFile::new("downloads", &[job.url.as_str(), &abs.to_string_lossy()])?;
    let name = job.output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let progress = Progress::new(out, &name, None, 0);
    let (mut failures, mut retries) = (0u32, 0u32);
    let mut resumed_from = None;
    let mut restarted = false;
    loop {
        match attempt(remote, job, &part, &state, &progress, &mut resumed_from, &mut restarted, out).await {
            Ok((size, version)) => {
                progress.finish();
                std::fs::rename(&part, &job.output)
                    .map_err(|e| ClientError::Local(format!("{}: {e}", job.output.display())))?;
                state.remove();
                let resumed_from = resumed_from.unwrap_or(0);
                return Ok(Downloaded { size, resumed_from, restarted, version, retries });
            }
            Err(e) if e.is_transient() && failures < job.retry.attempts => {
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

/// One request: continue (or start) the `.part` file and read to the end.
#[allow(clippy::too_many_arguments)]
async fn attempt(
    remote: &Remote,
    job: &DownloadJob,
    part: &Path,
    state: &StateFile,
    progress: &Progress,
    resumed_from: &mut Option<u64>,
    restarted: &mut bool,
    out: &Output,
) -> Result<(u64, serde_json::Value), ClientError> {
    let saved: Option<Saved> = state.load();
    let have = match (&saved, std::fs::metadata(part)) {
        (Some(_), Ok(m)) => m.len(),
        _ => 0,
    };
    let mut req = remote.request(Method::GET, job.url.clone());
    if let (Some(s), true) = (&saved, have > 0) {
        req = req.header(RANGE, format!("bytes={have}-")).header(IF_RANGE, &s.etag);
    }
    let mut res = remote.send_raw(req).await?;
    let status = res.status();
    if status == StatusCode::RANGE_NOT_SATISFIABLE && have > 0 {
        // Nothing after `have`: complete if the resource is still the same version and size.
        let head = remote.send(remote.request(Method::HEAD, job.url.clone())).await?;
        let same =
            saved.as_ref().is_some_and(|s| header(&head, ETAG).as_deref() == Some(&s.etag) && s.size == Some(have));
        if same {
            resumed_from.get_or_insert(have);
            return Ok((have, crate::client::cmd::version_ids(&head, "version")));
        }
        state.remove();
        std::fs::remove_file(part)?;
        *restarted = true;
        return Box::pin(attempt(remote, job, part, state, progress, resumed_from, restarted, out)).await;
    }
    if status.as_u16() >= 400 {
        return Err(status_error(res).await);
    }
    let version = crate::client::cmd::version_ids(&res, "version");
    let (mut file, start) = if status == StatusCode::PARTIAL_CONTENT {
        let start = content_range_start(&res)
            .filter(|s| *s == have)
            .ok_or_else(|| ClientError::Protocol("a range the client did not ask for".into()))?;
        if resumed_from.is_none() && start > 0 {
            out.note(&format!("resuming at {}", human_size(start)));
        }
        let f = std::fs::OpenOptions::new().append(true).open(part)?;
        (f, start)
    } else {
        // The whole resource: a fresh start, or the resource changed since the `.part` began.
        if have > 0 {
            *restarted = true;
            out.note("the resource changed since the download began: starting over");
        }
        let etag = header(&res, ETAG);
        let total = res.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        match etag {
            Some(etag) => state.save(&Saved { etag, size: total })?,
            None => state.remove(),
        }
        let f = std::fs::File::create(part).map_err(|e| ClientError::Local(format!("{}: {e}", part.display())))?;
        (f, 0)
    };
    resumed_from.get_or_insert(start);
    let total = match status {
        StatusCode::PARTIAL_CONTENT => saved.as_ref().and_then(|s| s.size),
        _ => res.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()),
    };
    if let Some(t) = total {
        progress.set_length(t);
    }
    progress.set(start);
    let mut at = start;
    let started = std::time::Instant::now();
    while let Some(chunk) = res.chunk().await? {
        // Written synchronously: once the next await is reached these bytes are in the
        // `.part` file, so an interruption there resumes exactly after them.
        file.write_all(&chunk)?;
        at += chunk.len() as u64;
        progress.advance(chunk.len() as u64);
        if let Some(rate) = job.rate.filter(|r| *r > 0) {
            let due = std::time::Duration::from_secs_f64((at - start) as f64 / rate as f64);
            tokio::time::sleep_until(tokio::time::Instant::from_std(started + due)).await;
        }
    }
    file.sync_all()?;
    if let Some(t) = total {
        if at != t {
            return Err(ClientError::Network(format!("the body ended at {at} of {t} bytes")));
        }
    }
    Ok((at, version))
}

fn header(res: &Response, name: reqwest::header::HeaderName) -> Option<String> {
    res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The first byte of `Content-Range: bytes A-B/N`.
fn content_range_start(res: &Response) -> Option<u64> {
    let v = res.headers().get("content-range")?.to_str().ok()?;
    v.strip_prefix("bytes ")?.split('-').next()?.trim().parse().ok()
}
