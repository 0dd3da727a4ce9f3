//! The live editor: the page a browser gets when it navigates to a resource, and the scripts
//! served from `/.plait/client/`: the editor's client modules (from `clients/js/`), the folder
//! page's scripts (its uploader for direct uploads to the bucket, `direct.js`, among them) and
//! the tus-js-client it uploads with (from `src/http/assets/`: tus-js-client
//! 4.3.1's `dist/tus.min.js` from npm, unmodified under its licence comment). They are compiled
//! into the binary, so the server needs nothing on disk (and no npm) to serve them.

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::ApiError;

const PAGE: &str = include_str!("../../clients/js/editor.html");

/// The scripts, by file name.
const ASSETS: &[(&str, &str)] = &[
    ("editor.js", include_str!("../../clients/js/editor.js")),
    ("simpleton.js", include_str!("../../clients/js/simpleton.js")),
    ("framing.js", include_str!("../../clients/js/framing.js")),
    ("text.js", include_str!("../../clients/js/text.js")),
    ("folder.js", include_str!("assets/folder.js")),
    ("direct.js", include_str!("assets/direct.js")),
    ("tus.min.js", include_str!("assets/tus.min.js")),
];

/// Whether `/.plait/client/<file>` is one of the scripts served.
#[cfg(test)]
pub(super) fn is_served(path: &str) -> bool {
    path.strip_prefix("/.plait/client/").is_some_and(|f| ASSETS.iter().any(|(n, _)| *n == f))
}

/// Whether a request is a browser navigation: its `Accept` lists `text/html` first. API
/// clients (curl's `*/*`, `fetch`'s default, braid-http) never do.
pub fn wants_page(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get("accept").and_then(|v| v.to_str().ok()) else { return false };
    let first = accept.split(',').next().unwrap_or_default();
    first.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("text/html")
}

/// The editor page (the same for every document; it reads its path from the URL).
pub fn page() -> Response {
    (
        [
            ("content-type", "text/html; charset=utf-8"),
            ("cache-control", "no-cache"),
            // The page runs only our own module; nothing else may load or run.
            (
                "content-security-policy",
                "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'",
            ),
        ],
        PAGE,
    )
        .into_response()
}

/// `GET /.plait/client/{file}`: one of the scripts.
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _)| *name == file) {
        Some((_, body)) => {
            ([("content-type", "text/javascript; charset=utf-8"), ("cache-control", "no-cache")], *body).into_response()
        }
        None => ApiError::NotFound(format!("/.plait/client/{file}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("accept", v.parse().unwrap());
        h
    }

    #[test]
    fn only_navigations_get_the_page() {
        let chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";
        assert!(wants_page(&accept(chrome)));
        assert!(wants_page(&accept("Text/HTML; q=1")));
        assert!(!wants_page(&accept("*/*")));
        assert!(!wants_page(&accept("text/plain, text/html")));
        assert!(!wants_page(&HeaderMap::new()));
    }

    #[test]
    fn every_module_the_page_imports_is_served() {
        for (name, body) in ASSETS {
            for line in body.lines().filter(|l| l.starts_with("import ")) {
                let Some(from) = line.split('\'').nth(1) else { continue };
                let file = from.trim_start_matches("./");
                assert!(ASSETS.iter().any(|(n, _)| *n == file), "{name} imports {from}, which is not served");
            }
        }
        assert!(PAGE.contains("/.plait/client/editor.js"));
    }
}
