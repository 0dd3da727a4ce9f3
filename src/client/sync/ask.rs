//! The other side of the control API: `plait sync status|pause|resume|rescan|conflicts|activity`
//! ask a running daemon over its loopback port or Unix socket, and print the answer for people
//! (or as the API's JSON with `--json`).

use reqwest::{Method, Url};
use serde_json::Value;

use super::daemon::ControlAddr;
use crate::client::error::ClientError;
use crate::client::remote::status_error;

/// Sends `method route?query` to the daemon at `addr` and returns its JSON answer.
pub async fn ask(
    addr: &ControlAddr,
    method: Method,
    route: &str,
    query: &[(&str, String)],
) -> Result<Value, ClientError> {
    let builder = reqwest::Client::builder().no_proxy();
    let (builder, base) = match addr {
        ControlAddr::Tcp(a) => (builder, format!("http://{a}")),
        #[cfg(unix)]
        ControlAddr::Unix(p) => (builder.unix_socket(p.as_path()), "http://localhost".to_owned()),
        #[cfg(not(unix))]
        ControlAddr::Unix(_) => return Err(ClientError::Usage("Unix sockets need a Unix system".into())),
    };
    let http = builder.build().map_err(|e| ClientError::Local(format!("cannot set up HTTP: {e}")))?;
    let mut url = Url::parse(&format!("{base}{route}")).map_err(|e| ClientError::Usage(format!("{route:?}: {e}")))?;
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
    }
    let res = http.request(method, url).send().await.map_err(|e| {
        let why = match ClientError::from(e) {
            ClientError::Network(m) => m,
            other => other.to_string(),
        };
        ClientError::Network(format!(
            "no sync daemon answers at {} ({why}): start one with `plait sync DIR URL`, or give --control",
            addr.display()
        ))
    })?;
    if res.status().as_u16() >= 400 {
        return Err(status_error(res).await);
    }
    res.json().await.map_err(|e| ClientError::Protocol(format!("the daemon's answer: {e}")))
}

/// `status` for people: one block per folder.
pub fn print_status(v: &Value) {
    let folders = v["folders"].as_array().cloned().unwrap_or_default();
    if folders.is_empty() {
        println!("no folders");
    }
    for f in folders {
        println!("{}  ⇄  {}", text(&f["dir"]), text(&f["url"]));
        let mut line = format!(
            "  {} · {} to send · {} to fetch",
            text(&f["state"]),
            f["pending_up"].as_u64().unwrap_or(0),
            f["pending_down"].as_u64().unwrap_or(0)
        );
        if let Some(c) = f["cursor"].as_str() {
            line.push_str(&format!(" · cursor {c}"));
        }
        if f["writable"] == Value::Bool(false) {
            line.push_str(" · read-only");
        }
        println!("{line}");
        for t in f["transfers"].as_array().into_iter().flatten() {
            let arrow = if t["direction"] == "up" { "↑" } else { "↓" };
            let (done, total) = (t["done"].as_u64().unwrap_or(0), t["total"].as_u64().unwrap_or(0));
            let size = if total > 0 { format!("{} / {}", bytes(done), bytes(total)) } else { bytes(done) };
            println!("  {arrow} {}  {size}", text(&t["path"]));
        }
        for c in f["conflicts"].as_array().into_iter().flatten() {
            println!("  conflict: {} (the other side is in {})", text(&c["path"]), text(&c["copy"]));
        }
        if let Some(errors) = f["errors"].as_object() {
            for (path, message) in errors {
                println!("  error: {path}: {}", text(message));
            }
        }
        if let Some(e) = f["last_error"].as_str() {
            println!("  last error: {e}");
        }
    }
}

/// `conflicts` for people.
pub fn print_conflicts(v: &Value) {
    let list = v["conflicts"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no conflicts");
    }
    for c in list {
        println!(
            "{}/{}: the other version is in {} (delete or rename the copy to resolve)",
            text(&c["dir"]),
            text(&c["path"]),
            text(&c["copy"])
        );
    }
}

/// `activity` for people, oldest first like a log.
pub fn print_activity(v: &Value) {
    let mut list = v["activity"].as_array().cloned().unwrap_or_default();
    list.reverse();
    for a in list {
        let at = a["at_ms"].as_u64().unwrap_or(0);
        let when = httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(at));
        let detail = a["detail"].as_str().filter(|d| !d.is_empty()).map(|d| format!(" ({d})")).unwrap_or_default();
        println!("{when}  {}  {}/{}{detail}", text(&a["what"]), text(&a["dir"]), text(&a["path"]));
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// `1.5 MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = n as f64;
    let mut unit = 0;
    while x >= 1024.0 && unit + 1 < UNITS.len() {
        x /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{x:.1} {}", UNITS[unit])
    }
}
