//! Local paths and server paths: a file `a/b c.txt` of the folder is the resource
//! `<folder path>a/b%20c.txt`. Each segment is percent-encoded the same way on every device
//! (the server keeps paths raw, as sent), and server paths are decoded back to names.

use reqwest::Url;

/// Bytes left as they are in a segment (RFC 3986 unreserved, plus a few sub-delims that every
/// client leaves alone).
fn keep(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(b, b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'=' | b'@')
}

/// Percent-encodes one path segment.
pub fn encode_segment(seg: &str) -> String {
    let mut out = String::with_capacity(seg.len());
    for &b in seg.as_bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; None when the result is not UTF-8.
pub fn decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            if let Ok(v) = u8::from_str_radix(&raw[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The resource URL of `rel` under the folder URL.
pub fn resource_url(folder: &Url, rel: &str) -> Url {
    let mut u = folder.clone();
    let encoded: Vec<String> = rel.split('/').map(encode_segment).collect();
    u.set_path(&format!("{}{}", folder.path(), encoded.join("/")));
    u.set_query(None);
    u.set_fragment(None);
    u
}

/// The folder-relative name of a server path, if it is under the folder and every segment is
/// a usable file name (no empty, `.` or `..` segment, no `/` or NUL once decoded).
pub fn relative(folder: &Url, server_path: &str) -> Option<String> {
    let rest = server_path.strip_prefix(folder.path())?;
    let mut names = Vec::new();
    for seg in rest.split('/') {
        let name = decode(seg)?;
        if name.is_empty()
            || name == "."
            || name == ".."
            || name.contains('/')
            || name.contains('\0')
            || name.contains('\\')
        {
            return None;
        }
        names.push(name);
    }
    Some(names.join("/"))
}

/// The folder-relative, `/`-separated name of a local path under `root`.
pub fn local_relative(root: &std::path::Path, path: &std::path::Path) -> Option<String> {
    let rest = path.strip_prefix(root).ok()?;
    let mut names = Vec::new();
    for c in rest.components() {
        match c {
            std::path::Component::Normal(s) => names.push(s.to_str()?.to_owned()),
            _ => return None,
        }
    }
    if names.is_empty() {
        return None;
    }
    Some(names.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_server_paths() {
        let folder = Url::parse("http://h:1/notes/").unwrap();
        for rel in ["a.txt", "sub dir/b c.md", "é/ü%.bin", "x/(1) [2] #3?.txt"] {
            let u = resource_url(&folder, rel);
            assert!(u.path().starts_with("/notes/"), "{u}");
            assert_eq!(relative(&folder, u.path()).as_deref(), Some(rel), "{u}");
        }
        assert_eq!(resource_url(&folder, "a b").path(), "/notes/a%20b");
        assert_eq!(relative(&folder, "/other/a"), None);
        assert_eq!(relative(&folder, "/notes/a/../b"), None);
        assert_eq!(relative(&folder, "/notes/a%2Fb"), None);
        assert_eq!(relative(&folder, "/notes/%ff"), None);
        assert_eq!(decode("100%"), Some("100%".into()));
        let root = std::path::Path::new("/r");
        assert_eq!(local_relative(root, std::path::Path::new("/r/a/b")).as_deref(), Some("a/b"));
        assert_eq!(local_relative(root, root), None);
    }
}
