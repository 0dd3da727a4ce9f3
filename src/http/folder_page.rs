//! A folder as a page for browsers: the listing (folders first, a link per entry that opens the
//! editor, the file or the sub-folder) and an upload area whose script (`folder.js`, with the
//! vendored tus-js-client, both served from `/.plait/client/`) uploads dropped or chosen files
//! through `/.plait/uploads/`, shows each one's progress, pauses, resumes, offers to continue
//! what a reloaded page left unfinished, and keeps the listing live (the README's "Uploading
//! from a browser"). With direct uploads on (`--direct-uploads`), the page says so
//! (`data-direct`) and its script (`direct.js`) sends the files' parts straight to the bucket
//! instead, on URLs the server signs; the page's CSP then lets it connect to the bucket's
//! origin too (docs/UPLOADS.md, "Straight to S3"). With access control on, a browser
//! navigation without a token gets the same page without the listing (status 401), where the
//! user pastes a token; the script then sends it as `Authorization` on every request it makes.
//!
//! The page is built here, on the server, for every request; the script refreshes the listing
//! by fetching the page again and swapping its `#listing`, so entries are rendered in one place.

use std::fmt::Write as _;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::changes::{Cursor, Entry, ResourceKind};

use super::folder::{kind_name, name};
use super::history::{escape as query_escape, rfc3339};

/// Only our own scripts run; they talk to this server alone, and with direct uploads on to the
/// bucket (its origin is added to `connect-src`).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'none'";

/// The page's CSP: [`CSP`], with the bucket's origin added to `connect-src` when the page uploads
/// straight to it. An origin that could not sit in the header as one source (it comes from the
/// server's own configuration, but still) leaves the policy as it is: the uploads then fail in
/// the browser, visibly, rather than the page's protection.
fn csp(direct: Option<&str>) -> HeaderValue {
    let extra = direct.filter(|o| !o.is_empty() && o.bytes().all(|b| b.is_ascii_graphic() && b != b';' && b != b','));
    match extra {
        Some(origin) => {
            HeaderValue::from_str(&CSP.replace("connect-src 'self'", &format!("connect-src 'self' {origin}")))
                .unwrap_or(HeaderValue::from_static(CSP))
        }
        None => HeaderValue::from_static(CSP),
    }
}

const STYLE: &str = "body{font:15px system-ui,sans-serif;margin:2em}\
     table{border-collapse:collapse}td,th{padding:.25em 1em;text-align:left}\
     td.n{text-align:right}tr:nth-child(even){background:#f4f4f4}.c{color:#b00}\
     #drop{border:2px dashed #aaa;border-radius:.5em;padding:1em;margin:1em 0;max-width:40em}\
     #drop.over{border-color:#2a6;background:#eefaf2}\
     #uploads{list-style:none;padding:0;max-width:40em}#uploads li{margin:.5em 0;padding:.5em;background:#f7f7f7}\
     #uploads progress{width:100%}#uploads .why{color:#b00}#signin-error{color:#b00}";

/// The page with the listing. `direct`: the bucket's origin when uploads go straight to it.
pub(super) fn listing(
    folder: &str,
    entries: &[Entry],
    next: Option<&str>,
    recursive: bool,
    cursor: Cursor,
    direct: Option<&str>,
) -> Response {
    let mut out = head(folder, &cursor.to_string(), "ok", direct.is_some());
    out.push_str("<div id=listing><table><thead><tr><th>Name</th><th>Kind</th><th>Size</th><th>Modified</th><th>By</th></tr></thead><tbody>");
    for e in entries {
        row(&mut out, folder, e);
    }
    out.push_str("</tbody></table>");
    if let Some(next) = next {
        let recursive = if recursive { "&amp;recursive=1" } else { "" };
        let _ = write!(
            out,
            "<p><a href=\"?after={}{recursive}\">next page &rarr;</a></p>",
            html_escape(&query_escape(next))
        );
    }
    out.push_str("</div>");
    page(StatusCode::OK, out, direct)
}

/// The page a browser navigation gets without a token when one is needed: no listing, a
/// place to paste a token. `refused` is the 401 the guard would have answered, whose status
/// and headers (`WWW-Authenticate`) it keeps.
pub(super) fn signin(folder: &str, refused: Response, direct: Option<&str>) -> Response {
    let mut out = head(folder, "", "required", direct.is_some());
    out.push_str("<div id=listing><p>This server needs a token to show this folder.</p></div>");
    let mut res = page(refused.status(), out, direct);
    for (name, value) in refused.headers() {
        if name != "content-type" && name != "content-length" {
            res.headers_mut().insert(name.clone(), value.clone());
        }
    }
    res
}

fn page(status: StatusCode, mut out: String, direct: Option<&str>) -> Response {
    out.push_str(
        "</main><script src=\"/.plait/client/tus.min.js\"></script>\
         <script type=module src=\"/.plait/client/folder.js\"></script></body></html>\n",
    );
    let mut res = (status, out).into_response();
    let h = res.headers_mut();
    h.insert("content-type", HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    h.insert("content-security-policy", csp(direct));
    res
}

/// Everything before the listing: the title, the parent link, the token form and the upload
/// area. `data-folder` is the raw path (the uploads' `folder`), `data-cursor` the listing's
/// position (the script watches the folder from it), `data-direct` whether uploads go straight
/// to the bucket (`on`) or through `/.plait/uploads/` (`off`).
fn head(folder: &str, cursor: &str, auth: &str, direct: bool) -> String {
    let title = html_escape(&display(folder));
    let direct = if direct { "on" } else { "off" };
    let mut out = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\
         <main id=folder data-folder=\"{}\" data-cursor=\"{}\" data-auth=\"{auth}\" data-direct={direct}><h1>{title}</h1>",
        html_escape(folder),
        html_escape(cursor),
    );
    if folder != "/" {
        out.push_str("<p><a href=\"../\">&uarr; parent folder</a></p>");
    }
    // Signing in first, then uploading.
    let (signin, hidden) = if auth == "required" { ("", " hidden") } else { (" hidden", "") };
    let _ = write!(
        out,
        "<section id=signin{signin} aria-labelledby=signin-title><h2 id=signin-title>Sign in</h2>\
         <form id=signin-form><label for=token>Access token</label> \
         <input id=token type=password autocomplete=off required> <button type=submit>Use this token</button></form>\
         <p id=signin-error role=alert></p></section>\
         <section id=upload{hidden} aria-labelledby=upload-title><h2 id=upload-title>Upload</h2>\
         <div id=drop><label for=pick>Drop files anywhere on this page, or choose them:</label> \
         <input type=file id=pick multiple></div>\
         <ul id=uploads aria-live=polite></ul></section>"
    );
    out
}

fn row(out: &mut String, folder: &str, e: &Entry) {
    let href = html_escape(name(folder, e));
    let shown = html_escape(&display(name(folder, e)));
    match e {
        Entry::Folder(_) => {
            let _ = write!(
                out,
                "<tr><td><a href=\"{href}\">{shown}</a></td><td>folder</td><td></td><td></td><td></td></tr>"
            );
        }
        Entry::Resource(c) => {
            let size = match c.kind {
                ResourceKind::Text => format!("{} chars", c.size),
                ResourceKind::File => human_bytes(c.size),
            };
            let kind = match (&c.kind, &c.content_type) {
                (ResourceKind::File, Some(t)) => html_escape(t),
                (k, _) => kind_name(*k).to_string(),
            };
            let conflict = if c.conflict { " <span class=c>(conflict)</span>" } else { "" };
            let by = html_escape(c.author.as_deref().unwrap_or(""));
            let _ = write!(
                out,
                "<tr><td><a href=\"{href}\">{shown}</a>{conflict}</td><td>{kind}</td><td class=n>{size}</td><td>{}</td><td>{by}</td></tr>",
                rfc3339(c.time_ms)
            );
        }
    }
}

/// A raw path as people read it (percent-escapes decoded when they decode to text).
fn display(raw: &str) -> String {
    super::resource::percent_decode(raw.as_bytes())
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| raw.to_string())
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_sizes() {
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
        assert_eq!(human_bytes(11), "11 B");
        assert_eq!(html_escape("<a href=\"x\">"), "&lt;a href=&quot;x&quot;&gt;");
    }

    #[test]
    fn with_direct_uploads_the_page_may_connect_to_the_bucket_and_nowhere_else() {
        let direct = listing("/a/", &[], None, false, Cursor { epoch: 1, seq: 2 }, Some("http://127.0.0.1:8333"));
        let policy = direct.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(policy.contains("connect-src 'self' http://127.0.0.1:8333;"), "{policy}");
        assert_eq!(policy.replace(" http://127.0.0.1:8333", ""), CSP);
        // Something that is not one source cannot widen the policy.
        for odd in ["", "http://a; script-src *", "http://a b", "http://a,b"] {
            assert_eq!(csp(Some(odd)), CSP, "{odd:?}");
        }
        let refused = (StatusCode::UNAUTHORIZED, [("www-authenticate", "Bearer")]).into_response();
        let shell = signin("/a/", refused, Some("https://bucket.s3.eu-west-3.amazonaws.com"));
        let policy = shell.headers()["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("connect-src 'self' https://bucket.s3.eu-west-3.amazonaws.com;"), "{policy}");
    }

    #[test]
    fn the_page_loads_only_served_scripts_and_names_its_folder() {
        let res = listing("/a b/", &[], None, false, Cursor { epoch: 1, seq: 2 }, None);
        assert_eq!(res.headers()["content-security-policy"], CSP);
        let refused = (StatusCode::UNAUTHORIZED, [("www-authenticate", "Bearer realm=\"plait\"")]).into_response();
        let shell = signin("/a b/", refused, None);
        assert_eq!(shell.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(shell.headers()["www-authenticate"], "Bearer realm=\"plait\"");
        assert_eq!(shell.headers()["content-type"], "text/html; charset=utf-8");
        let text = head("/a\"b/", "0000000000000001-2", "ok", false);
        assert!(text.contains("data-folder=\"/a&quot;b/\" data-cursor=\"0000000000000001-2\""), "{text}");
        assert!(text.contains("data-direct=off"), "{text}");
        assert!(text.contains("<section id=signin hidden") && text.contains("<section id=upload aria"), "{text}");
        let shell = head("/a/", "", "required", true);
        assert!(shell.contains("data-direct=on"), "{shell}");
        assert!(shell.contains("<section id=signin aria") && shell.contains("<section id=upload hidden"), "{shell}");
        for script in ["/.plait/client/tus.min.js", "/.plait/client/folder.js", "/.plait/client/direct.js"] {
            assert!(super::super::editor::is_served(script), "{script} is not served");
        }
    }
}
