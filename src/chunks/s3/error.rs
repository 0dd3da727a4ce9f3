//! The S3 engine's errors: what went wrong, named the way an operator fixes it (unreachable,
//! credentials refused, no such bucket, ...), each message naming the endpoint and bucket.
//!
//! object_store reports HTTP statuses as its own variants (404 `NotFound`, 403
//! `PermissionDenied`, ...) and keeps S3's error document in the message; S3's error codes
//! (`NoSuchBucket`, `NoSuchUpload`, `InvalidPart`, ...) are a stable part of its API, so they
//! are read from there. Failures to connect are found by walking the error's sources down to
//! object_store's `HttpError`, whose kind our HTTP client set.

use object_store::client::{HttpError, HttpErrorKind};

use crate::chunks::ChunkError;

/// A failure of the S3 engine or of a bucket operation.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The configuration is unusable (refused before any request).
    #[error("{0}")]
    Config(String),
    /// No connection could be made, or the store stopped answering.
    #[error("cannot reach the S3 endpoint {endpoint} (bucket {bucket}): {why}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The bucket.
        bucket: String,
        /// What failed.
        why: String,
    },
    /// The store refused the credentials, or they lack a permission.
    #[error("the S3 endpoint {endpoint} refused access to bucket {bucket} ({code}): check the access key, secret and the bucket's policy")]
    Denied {
        /// The endpoint.
        endpoint: String,
        /// The bucket.
        bucket: String,
        /// S3's error code (`InvalidAccessKeyId`, `SignatureDoesNotMatch`, `AccessDenied`, ...).
        code: String,
    },
    /// The bucket does not exist.
    #[error("the S3 bucket {bucket} does not exist at {endpoint}: create it first")]
    NoSuchBucket {
        /// The endpoint.
        endpoint: String,
        /// The bucket.
        bucket: String,
    },
    /// No object under this key.
    #[error("no S3 object {key}")]
    NotFound {
        /// The key.
        key: String,
    },
    /// The multipart upload is unknown (never created, completed or aborted).
    #[error("no multipart upload {upload_id} for {key}")]
    NoSuchUpload {
        /// The object key.
        key: String,
        /// The upload id.
        upload_id: String,
    },
    /// A completion's parts were refused: a missing part, a wrong ETag, parts out of order or
    /// smaller than S3's 5 MiB minimum (all but the last).
    #[error("the parts given do not complete {key}: {why}")]
    InvalidParts {
        /// The object key.
        key: String,
        /// What S3 or our checks said.
        why: String,
    },
    /// The prefix belongs to another data dir (its `owner` object names another store).
    #[error(
        "the chunk store {location} belongs to another Plait data dir ({owner:?}; this one is {ours:?}): \
         its collector would delete chunks the other one's versions use. Give each data dir its own \
         prefix, or delete the objects under this prefix if nothing needs them any more"
    )]
    Foreign {
        /// The bucket and prefix.
        location: String,
        /// What its owner object says.
        owner: String,
        /// What this store would write.
        ours: String,
    },
    /// Any other failure (a 5xx, an unexpected answer).
    #[error("S3 request to {endpoint} (bucket {bucket}) failed: {why}")]
    Failed {
        /// The endpoint.
        endpoint: String,
        /// The bucket.
        bucket: String,
        /// What failed.
        why: String,
    },
}

impl S3Error {
    /// A stable name for logs and tests.
    pub fn code(&self) -> &'static str {
        match self {
            S3Error::Config(_) => "s3_config",
            S3Error::Unreachable { .. } => "s3_unreachable",
            S3Error::Denied { .. } => "s3_denied",
            S3Error::NoSuchBucket { .. } => "s3_no_such_bucket",
            S3Error::NotFound { .. } => "s3_not_found",
            S3Error::NoSuchUpload { .. } => "s3_no_such_upload",
            S3Error::InvalidParts { .. } => "s3_invalid_parts",
            S3Error::Foreign { .. } => "s3_foreign_prefix",
            S3Error::Failed { .. } => "s3_failed",
        }
    }
}

impl From<S3Error> for ChunkError {
    fn from(e: S3Error) -> Self {
        ChunkError::Engine(e.to_string())
    }
}

/// The text of an error and its sources, one line.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text.replace(['\n', '\r'], " ")
}

/// Whether a connection could not be made or timed out, somewhere down the chain.
fn is_unreachable(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(http) = err.downcast_ref::<HttpError>() {
            return matches!(
                http.kind(),
                HttpErrorKind::Connect | HttpErrorKind::Timeout | HttpErrorKind::Request | HttpErrorKind::Interrupted
            );
        }
        cur = err.source();
    }
    false
}

/// S3 error codes that say why access was refused.
const DENIALS: &[&str] = &[
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
];

/// The endpoint and bucket an error is about.
#[derive(Clone, Debug)]
pub struct Site {
    /// The endpoint URL.
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
}

impl Site {
    /// Classifies an object_store error from an operation on `key` (None: bucket-level).
    pub fn error(&self, e: object_store::Error, key: Option<&str>) -> S3Error {
        let text = chain(&e);
        let (endpoint, bucket) = (self.endpoint.clone(), self.bucket.clone());
        if text.contains("NoSuchBucket") {
            return S3Error::NoSuchBucket { endpoint, bucket };
        }
        // Some requests (listings) come back as `Generic` whatever their status: S3's code in
        // the text decides, then the variant.
        let denial = DENIALS.iter().find(|c| text.contains(**c)).map(|c| c.to_string());
        match e {
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
                S3Error::Denied { endpoint, bucket, code: denial.unwrap_or_else(|| "403 Forbidden".into()) }
            }
            _ if denial.is_some() || text.contains("403 Forbidden") => {
                S3Error::Denied { endpoint, bucket, code: denial.unwrap_or_else(|| "403 Forbidden".into()) }
            }
            object_store::Error::NotFound { .. } => match key {
                Some(key) => S3Error::NotFound { key: key.to_string() },
                // A listing answered 404: the bucket itself is missing.
                None => S3Error::NoSuchBucket { endpoint, bucket },
            },
            other if is_unreachable(&other) => S3Error::Unreachable { endpoint, bucket, why: text },
            _ => S3Error::Failed { endpoint, bucket, why: text },
        }
    }

    /// The error of an operation that ran past its deadline or was cut by shutdown.
    pub fn stopped(&self, stopped: super::driver::Stopped) -> S3Error {
        let why = match stopped {
            super::driver::Stopped::Deadline => {
                format!("no answer within {} s", super::driver::OP_DEADLINE.as_secs())
            }
            super::driver::Stopped::Shutdown => "the engine is shutting down".to_string(),
        };
        S3Error::Unreachable { endpoint: self.endpoint.clone(), bucket: self.bucket.clone(), why }
    }

    /// A failure of our own request (the presigned ones object_store does not make).
    pub fn failed(&self, why: impl Into<String>) -> S3Error {
        S3Error::Failed { endpoint: self.endpoint.clone(), bucket: self.bucket.clone(), why: why.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        Site { endpoint: "http://127.0.0.1:1".into(), bucket: "b".into() }
    }

    #[test]
    fn statuses_and_s3_codes_become_operator_messages() {
        let source = |text: &str| -> Box<dyn std::error::Error + Send + Sync> { text.to_string().into() };
        let e = object_store::Error::NotFound { path: "p/k".into(), source: source("404") };
        assert!(matches!(site().error(e, Some("p/k")), S3Error::NotFound { key } if key == "p/k"));
        let e = object_store::Error::NotFound { path: "p".into(), source: source("404") };
        assert!(matches!(site().error(e, None), S3Error::NoSuchBucket { .. }));
        let e = object_store::Error::Generic { store: "S3", source: source("<Code>NoSuchBucket</Code>") };
        let msg = site().error(e, Some("k")).to_string();
        assert!(msg.contains("bucket b does not exist at http://127.0.0.1:1"), "{msg}");
        let e = object_store::Error::PermissionDenied {
            path: "k".into(),
            source: source("<Code>SignatureDoesNotMatch</Code>"),
        };
        let msg = site().error(e, Some("k")).to_string();
        assert!(msg.contains("SignatureDoesNotMatch") && msg.contains("refused access to bucket b"), "{msg}");
        let e = object_store::Error::Generic {
            store: "S3",
            source: Box::new(HttpError::new(HttpErrorKind::Connect, std::io::Error::other("connection refused"))),
        };
        let msg = site().error(e, Some("k")).to_string();
        assert!(msg.starts_with("cannot reach the S3 endpoint http://127.0.0.1:1 (bucket b)"), "{msg}");
        assert!(msg.contains("connection refused"), "{msg}");
        let e = object_store::Error::Generic {
            store: "S3",
            source: source("list: 403 Forbidden: <Code>AccessDenied</Code>"),
        };
        assert!(matches!(site().error(e, None), S3Error::Denied { code, .. } if code == "AccessDenied"));
        let e = object_store::Error::Generic { store: "S3", source: source("503 Slow Down") };
        assert_eq!(site().error(e, Some("k")).code(), "s3_failed");
        assert!(!chain(&std::io::Error::other("a\nb")).contains('\n'));
    }
}
