//! What a new upload becomes: its target path and media type, from `Upload-Metadata` (tus, and
//! tus-js-client in the draft's dialect too) or from the request's own path and `Content-Type`
//! (the draft's creation on the target resource).

use crate::hub::HubError;
use crate::protocol::upload::Metadata;
use crate::upload::UploadError;

use super::{ApiError, Dialect};

/// The target and media type of a new upload.
pub(super) struct Described {
    pub target: Option<String>,
    pub content_type: Option<String>,
}

fn text(meta: &Metadata, key: &str) -> Option<String> {
    meta.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.as_ref()).and_then(|v| String::from_utf8(v.clone()).ok())
}

fn bad(why: impl Into<String>) -> ApiError {
    ApiError::Hub(HubError::Upload(UploadError::BadTarget(why.into())))
}

/// Reads the target: `at` (the request's own path) first, else metadata `path`, else
/// `folder` and `filename`; and the media type: metadata `filetype`, `contentType` or `type`,
/// else (on a draft request to the resource itself) `Content-Type`.
pub(super) fn describe(
    meta: &Metadata,
    at: Option<&str>,
    content_type: Option<&str>,
    dialect: Dialect,
) -> Result<Described, ApiError> {
    let target = match (at, text(meta, "path"), text(meta, "folder"), text(meta, "filename")) {
        (Some(at), ..) => Some(at.to_string()),
        (None, Some(path), ..) => Some(path),
        (None, None, Some(folder), Some(name)) => {
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                return Err(bad(format!("filename {name:?} must be one path segment")));
            }
            Some(format!("{}/{name}", folder.trim_end_matches('/')))
        }
        (None, None, Some(_), None) => return Err(bad("`folder` needs a `filename`")),
        _ => None,
    };
    if let Some(path) = &target {
        if !path.starts_with('/') || path.ends_with('/') || path.starts_with("/.plait/") || path.contains("//") {
            return Err(bad(format!("{path:?} is not a resource path (absolute, not a folder, not under /.plait/)")));
        }
        super::super::resource::check_path(path)?;
    }
    let named = ["filetype", "contentType", "type"].iter().find_map(|k| text(meta, k));
    let content_type = match (named, at, dialect) {
        (Some(t), ..) => Some(t),
        // The draft's creation on the resource: the request's own representation metadata
        // (appends carry `application/partial-upload`, which says nothing about the file).
        (None, Some(_), Dialect::Ietf(_)) => {
            content_type.filter(|t| !t.starts_with("application/partial-upload")).map(str::to_string)
        }
        _ => None,
    };
    let content_type = content_type.filter(|t| !t.trim().is_empty() && t.len() <= 255 && t.is_ascii());
    Ok(Described { target, content_type })
}
