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

/// A file name as a path segment the way a browser writes it in a URL (WHATWG's path
/// percent-encode set, plus `%` and `\`, as the name is literal): a resource is named by its
/// raw request path, so `my photo.jpg` must become `my%20photo.jpg`, the path a link to it
/// (and curl) asks for, not a literal space no URL can reach.
fn url_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b <= 0x20 || b >= 0x7f || b"\"#%<>?`{}\\".contains(&b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// Whether a media type a client named may be kept as a version's `Content-Type`.
pub(in crate::http) fn usable_media_type(t: &str) -> bool {
    !t.trim().is_empty() && t.len() <= 255 && t.is_ascii()
}

/// The path of the file `name` (one path segment, percent-encoded as a URL would) in `folder`.
pub(in crate::http) fn path_in(folder: &str, name: &str) -> Result<String, ApiError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(bad(format!("filename {name:?} must be one path segment")));
    }
    Ok(format!("{}/{}", folder.trim_end_matches('/'), url_segment(name)))
}

/// Whether `path` may be an upload's target: absolute, not a folder, not under `/.plait/`,
/// no empty segment, within the path limits.
pub(in crate::http) fn check_target(path: &str) -> Result<(), ApiError> {
    if !path.starts_with('/') || path.ends_with('/') || path.starts_with("/.plait/") || path.contains("//") {
        return Err(bad(format!("{path:?} is not a resource path (absolute, not a folder, not under /.plait/)")));
    }
    super::super::resource::check_path(path)
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
        (None, None, Some(folder), Some(name)) => Some(path_in(&folder, &name)?),
        (None, None, Some(_), None) => return Err(bad("`folder` needs a `filename`")),
        _ => None,
    };
    if let Some(path) = &target {
        check_target(path)?;
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
    let content_type = content_type.filter(|t| usable_media_type(t));
    Ok(Described { target, content_type })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_become_the_segment_a_browser_asks_for() {
        assert_eq!(url_segment("my photo é.txt"), "my%20photo%20%C3%A9.txt");
        assert_eq!(url_segment("a#b?c%d\\e\"f"), "a%23b%3Fc%25d%5Ce%22f");
        assert_eq!(url_segment("plain-name_1.(x)+y,z'@!$&=;:~"), "plain-name_1.(x)+y,z'@!$&=;:~");
        let meta =
            vec![("folder".to_string(), Some(b"/up/".to_vec())), ("filename".to_string(), Some(b"a b".to_vec()))];
        let described = describe(&meta, None, None, Dialect::Tus).ok().and_then(|d| d.target);
        assert_eq!(described.as_deref(), Some("/up/a%20b"));
    }
}
