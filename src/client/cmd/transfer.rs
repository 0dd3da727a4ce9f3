//! `plait upload` and `plait download`: the command lines and their output; the resumable
//! transfers themselves are `client::transfer`. Ctrl-C stops either with exit code 130 after
//! its resume state is saved; the same command run again continues.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::{parse_url, Ctx, Global};
use crate::client::error::ClientError;
use crate::client::output::{human_size, show_version};
use crate::client::transfer::download::{self, DownloadJob};
use crate::client::transfer::upload::{self, UploadJob};
use crate::client::transfer::{until_interrupted, Retry};

/// `plait upload`.
#[derive(Args, Debug)]
pub struct UploadArgs {
    /// The local file.
    pub file: PathBuf,
    /// The target file's URL, or a folder's (ending in /: the file keeps its name).
    pub url: String,
    /// The media type of the new version (default: sniffed by the server from the bytes).
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// Network failures in a row to retry (with backoff) before giving up.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub retries: u32,
    /// Send at most this many bytes per second (suffixes K, M, G: 500K, 2M).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub limit_rate: Option<u64>,
    #[command(flatten)]
    pub global: Global,
}

pub const UPLOAD_EXAMPLES: &str = "\
Examples:
  plait upload video.mp4 http://127.0.0.1:8080/videos/          # → /videos/video.mp4
  plait upload backup.tar http://127.0.0.1:8080/backups/2026.tar --content-type application/x-tar
  # Interrupted (Ctrl-C, network gone)? Run the same command again: it continues where the
  # server's copy ends.";

/// `plait download`.
#[derive(Args, Debug)]
pub struct DownloadArgs {
    /// The resource's URL.
    pub url: String,
    /// Where to write it (default: the URL's last path segment, in the current directory).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Network failures in a row to retry (with backoff) before giving up.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub retries: u32,
    /// Receive at most this many bytes per second (suffixes K, M, G: 500K, 2M).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub limit_rate: Option<u64>,
    #[command(flatten)]
    pub global: Global,
}

pub const DOWNLOAD_EXAMPLES: &str = "\
Examples:
  plait download http://127.0.0.1:8080/videos/video.mp4            # → ./video.mp4
  plait download http://127.0.0.1:8080/videos/video.mp4 -o v.mp4   # v.mp4.part until complete
  # Interrupted? Run the same command again: it asks only for the missing bytes, or starts
  # over if the file changed on the server meanwhile.";

pub async fn upload(ctx: &Ctx, a: UploadArgs) -> Result<(), ClientError> {
    let mut target = parse_url(&a.url)?;
    if target.path().ends_with('/') {
        let name = a
            .file
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| ClientError::Usage(format!("{}: no file name to upload under", a.file.display())))?;
        target = target.join(&encode_segment(name)).map_err(|e| ClientError::Usage(e.to_string()))?;
    }
    let remote = ctx.remote(&target)?;
    let job = UploadJob {
        file: a.file.clone(),
        target: target.clone(),
        content_type: a.content_type,
        retry: Retry::new(a.retries),
        rate: a.limit_rate,
    };
    let done = until_interrupted(upload::upload(&remote, &ctx.out, &job)).await.inspect_err(|e| {
        if matches!(e, ClientError::Interrupted | ClientError::Network(_)) {
            ctx.out.note("plait: the upload can be resumed: run the same command again");
        }
    })?;
    ctx.out.result(
        &json!({"url": target.as_str(), "upload": done.upload_url.as_str(), "size": done.size,
                "resumed_from": done.resumed_from, "version": done.version, "retries": done.retries}),
        || format!("{target} ({}) @ {}\n", human_size(done.size), show_version(&done.version)),
    )
}

pub async fn download(ctx: &Ctx, a: DownloadArgs) -> Result<(), ClientError> {
    let url = parse_url(&a.url)?;
    let output = match a.output {
        Some(o) => o,
        None => {
            let last = url.path_segments().and_then(|mut s| s.next_back()).unwrap_or("");
            if last.is_empty() {
                return Err(ClientError::Usage("the URL has no file name: give one with -o FILE".into()));
            }
            PathBuf::from(last)
        }
    };
    let remote = ctx.remote(&url)?;
    let job =
        DownloadJob { url: url.clone(), output: output.clone(), retry: Retry::new(a.retries), rate: a.limit_rate };
    let done = until_interrupted(download::download(&remote, &ctx.out, &job)).await.inspect_err(|e| {
        if matches!(e, ClientError::Interrupted | ClientError::Network(_)) {
            ctx.out.note("plait: the download can be resumed: run the same command again");
        }
    })?;
    ctx.out.result(
        &json!({"url": url.as_str(), "output": output.display().to_string(), "size": done.size,
                "resumed_from": done.resumed_from, "restarted": done.restarted, "version": done.version,
                "retries": done.retries}),
        || format!("{} ({})\n", output.display(), human_size(done.size)),
    )
}

/// A file name as one URL path segment (spaces, `#`, `?`, `%` escaped).
fn encode_segment(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `500K`, `2M`, `1G`, `1000` → bytes per second.
fn parse_rate(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M') => (&s[..s.len() - 1], 1 << 20),
        Some('G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n: u64 = num.parse().map_err(|_| format!("{s:?}: expected a number of bytes per second, like 500K"))?;
    n.checked_mul(mult).filter(|r| *r > 0).ok_or_else(|| format!("{s:?}: out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_names() {
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert_eq!(parse_rate("500K"), Ok(500 << 10));
        assert_eq!(parse_rate("2m"), Ok(2 << 20));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
        assert_eq!(encode_segment("a b#1.txt"), "a%20b%231.txt");
    }
}
