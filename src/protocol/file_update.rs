//! The head of a file update inside a `209` subscription body: what braid-blob's server sends
//! for a blob, which braidfs and braid-http's `braid_fetch` read. Pure: values in, bytes out.
//!
//! An update is `HTTP 200 OK` (or `HTTP 404 Not Found` when the served version is a delete),
//! `Version`, `Parents`, `Merge-Type: aww`, `Version-Type: wallclockish` when the version id is
//! a decimal (braidfs compares such ids as decimals; braid-blob's client refuses an update with
//! no header but `Version`), `Content-Type`, `Content-Length`, `repr-digest`, a blank line, then
//! exactly `Content-Length` bytes of the file and `\r\n\r\n`. The bytes are not here: the caller
//! streams them chunk by chunk after this head, so an update never needs the whole file in
//! memory.

use super::framing::header;
use super::version::VersionSet;

/// The update after the body bytes (as after every update: `framing`).
pub const FILE_UPDATE_END: &[u8] = b"\r\n\r\n";

/// What a file update's head says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileUpdateHead {
    /// The version sent.
    pub version: VersionSet,
    /// Its parents.
    pub parents: VersionSet,
    /// The id is a decimal ("wallclockish").
    pub wallclockish: bool,
    /// None for a delete (a `404` update with an empty body).
    pub body: Option<FileBodyHead>,
}

/// The body's headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileBodyHead {
    /// Its `Content-Type`.
    pub content_type: String,
    /// Its length; `None` for a header-only update (a change feed): `Content-Length: 0`.
    pub len: Option<u64>,
    /// `sha-256=:…:`.
    pub repr_digest: String,
}

/// Appends the head of `update` (through the blank line) to `out`.
pub fn encode_file_update_head(update: &FileUpdateHead, out: &mut Vec<u8>) {
    let status: &[u8] = if update.body.is_some() { b"HTTP 200 OK\r\n" } else { b"HTTP 404 Not Found\r\n" };
    out.extend_from_slice(status);
    header(out, "Version", &update.version.to_header());
    header(out, "Parents", &update.parents.to_header());
    header(out, "Merge-Type", "aww");
    if update.wallclockish {
        header(out, "Version-Type", "wallclockish");
    }
    match &update.body {
        Some(body) => {
            header(out, "Content-Type", &body.content_type);
            header(out, "repr-digest", &body.repr_digest);
            header(out, "Content-Length", &body.len.unwrap_or(0).to_string());
        }
        None => header(out, "Content-Length", "0"),
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn v(id: &str) -> VersionSet {
        VersionSet::new([id.to_string()])
    }

    #[test]
    fn a_file_update_decodes_with_its_exact_bytes() {
        let bytes = [0u8, 159, 146, 150, 255, 10, 13];
        let head = FileUpdateHead {
            version: v("1768467700.125"),
            parents: v("1768467699.000"),
            wallclockish: true,
            body: Some(FileBodyHead {
                content_type: "image/png".into(),
                len: Some(bytes.len() as u64),
                repr_digest: "sha-256=:x:".into(),
            }),
        };
        let mut out = Vec::new();
        encode_file_update_head(&head, &mut out);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("HTTP 200 OK\r\nVersion: \"1768467700.125\"\r\nParents: \"1768467699.000\"\r\n"));
        assert!(text.contains("Merge-Type: aww\r\nVersion-Type: wallclockish\r\nContent-Type: image/png\r\n"));
        assert!(text.ends_with("repr-digest: sha-256=:x:\r\nContent-Length: 7\r\n\r\n"), "{text}");
    }

    #[test]
    fn a_delete_is_a_404_with_no_body() {
        let head = FileUpdateHead { version: v("abc"), parents: v("1.5"), wallclockish: false, body: None };
        let mut out = Vec::new();
        encode_file_update_head(&head, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP 404 Not Found\r\n"));
        assert!(text.ends_with("Merge-Type: aww\r\nContent-Length: 0\r\n\r\n"));
        assert!(!text.contains("Version-Type"));
    }
}
