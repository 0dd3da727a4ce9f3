//! Resumable transfers: `plait upload` (tus 1.0.0 at `/.plait/uploads/`) and `plait download`
//! (`Range` + `If-Range` into `FILE.part`). Both survive Ctrl-C and dropped networks: they keep
//! a small state file under the platform cache dir (`state`), retry network errors with
//! backoff, and continue from what the server (or the `.part` file) already has when run again.
//!
//! This file holds what both share: a file as a streamed request body (with progress and an
//! optional rate limit), the retry policy and Ctrl-C.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::error::ClientError;
use super::progress::Progress;

pub mod download;
pub mod state;
pub mod upload;

/// How much of a file is read per body frame.
const FRAME: usize = 256 << 10;

/// A request body streaming `len` bytes of `file` from its current position, advancing
/// `progress` as frames are handed to the connection, at most `rate` bytes per second.
pub fn file_body(file: tokio::fs::File, len: u64, progress: Option<Progress>, rate: Option<u64>) -> reqwest::Body {
    let started = Instant::now();
    let stream = futures_util::stream::unfold((file, len, 0u64), move |(mut file, left, sent)| {
        let progress = progress.clone();
        async move {
            if left == 0 {
                return None;
            }
            if let Some(rate) = rate.filter(|r| *r > 0) {
                // Pace by the total so far: a slow start is not made up with a burst.
                let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                tokio::time::sleep_until(tokio::time::Instant::from_std(started + due)).await;
            }
            let want = (left as usize).min(match rate {
                Some(r) if r > 0 => FRAME.min((r as usize / 10).max(1024)),
                _ => FRAME,
            });
            let mut buf = vec![0u8; want];
            match file.read(&mut buf).await {
                Ok(0) => Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file got shorter while it was sent",
                    )),
                    (file, 0, sent),
                )),
                Ok(n) => {
                    buf.truncate(n);
                    if let Some(p) = &progress {
                        p.advance(n as u64);
                    }
                    Some((Ok(Bytes::from(buf)), (file, left - n as u64, sent + n as u64)))
                }
                Err(e) => Some((Err(e), (file, 0, sent))),
            }
        }
    });
    reqwest::Body::wrap_stream(stream)
}

/// Opens `path` positioned at `offset`.
pub async fn open_at(path: &Path, offset: u64) -> Result<tokio::fs::File, ClientError> {
    let mut f =
        tokio::fs::File::open(path).await.map_err(|e| ClientError::Local(format!("{}: {e}", path.display())))?;
    f.seek(std::io::SeekFrom::Start(offset)).await?;
    Ok(f)
}

/// `dir/name` + `suffix` (`photo.jpg` → `photo.jpg.part`).
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// How a transfer retries: failures in a row allowed, and the pause before each retry
/// (doubling from `first` up to `max`).
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    pub attempts: u32,
    pub first: Duration,
    pub max: Duration,
}

impl Retry {
    pub fn new(attempts: u32) -> Retry {
        Retry { attempts, first: Duration::from_millis(250), max: Duration::from_secs(8) }
    }

    /// The pause before retry number `n` (1-based).
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 1u32 << n.saturating_sub(1).min(16);
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// Runs `work` until it finishes or Ctrl-C: then `Err(Interrupted)` once `work` is dropped (its
/// connection closes; what the server received and the state files stay for the next run).
pub async fn until_interrupted<T>(
    work: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => Err(ClientError::Interrupted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_ceiling() {
        let r = Retry::new(5);
        assert_eq!(r.delay(1), Duration::from_millis(250));
        assert_eq!(r.delay(2), Duration::from_millis(500));
        assert_eq!(r.delay(4), Duration::from_secs(2));
        assert_eq!(r.delay(10), Duration::from_secs(8));
        assert_eq!(r.delay(40), Duration::from_secs(8));
    }

    #[test]
    fn part_files_sit_beside_the_target() {
        assert_eq!(sibling(Path::new("/tmp/a/photo.jpg"), ".part"), PathBuf::from("/tmp/a/photo.jpg.part"));
    }
}
