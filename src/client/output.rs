//! What the commands print, in one place: one JSON object (or JSON lines for streams) on stdout
//! with `--json`, aligned tables and human sizes otherwise, nothing but errors with `--quiet`;
//! errors on stderr, as `plait: message` or `{"error": kind, "message": ...}`. Keeping this apart
//! from the commands keeps their output consistent and their code about the server.

use std::io::Write;

use serde_json::Value;

use super::error::ClientError;

/// How a command reports (the global `--json` and `--quiet` flags).
#[derive(Clone, Copy, Debug, Default)]
pub struct Output {
    /// Machine-readable output: one JSON object per result on stdout.
    pub json: bool,
    /// No human output at all (results only go to files or exit codes); JSON still prints.
    pub quiet: bool,
}

impl Output {
    /// Prints a command's result: `value` as one JSON line with `--json`, else the human text
    /// `human` builds (unless `--quiet`). The text is printed as is (it ends with a newline
    /// when it should).
    pub fn result(&self, value: &Value, human: impl FnOnce() -> String) -> Result<(), ClientError> {
        if self.json {
            self.json_line(value)
        } else if !self.quiet {
            let text = human();
            write_stdout(text.as_bytes())
        } else {
            Ok(())
        }
    }

    /// One JSON line on stdout (a stream's update, or a result).
    pub fn json_line(&self, value: &Value) -> Result<(), ClientError> {
        let mut line = serde_json::to_vec(value).map_err(|e| ClientError::Local(e.to_string()))?;
        line.push(b'\n');
        write_stdout(&line)
    }

    /// A line for people (not with `--json` or `--quiet`).
    pub fn human_line(&self, line: &str) -> Result<(), ClientError> {
        if self.json || self.quiet {
            return Ok(());
        }
        write_stdout(format!("{line}\n").as_bytes())
    }

    /// A note for people on stderr (not with `--json` or `--quiet`): what a command did
    /// beside its result ("resuming at 12 MiB").
    pub fn note(&self, line: &str) {
        if !self.json && !self.quiet {
            eprintln!("{line}");
        }
    }

    /// Prints a failure on stderr, in the chosen form.
    pub fn error(&self, e: &ClientError) {
        if self.json {
            let v =
                serde_json::json!({ "error": e.kind(), "message": e.to_string(), "exit_code": e.exit_code() as i32 });
            eprintln!("{v}");
        } else {
            eprintln!("plait: {e}");
        }
    }
}

/// Writes to stdout and flushes (a stream's lines must reach a pipe as they happen). A closed
/// pipe (`plait watch ... | head -1`) is a local error, so the command stops quietly.
pub fn write_stdout(bytes: &[u8]) -> Result<(), ClientError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}

/// A table with left-aligned columns separated by two spaces; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 < cols {
                s.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            } else {
                s.push_str(cell);
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// `1.5 KiB`, `12.0 MiB`: binary units, one decimal, bytes as is below 1 KiB.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A version (a JSON list of ids, as listings and history give it) for people: `a-4, b-2`.
pub fn show_version(v: &Value) -> String {
    match v {
        Value::Array(ids) => ids.iter().map(|i| i.as_str().unwrap_or("?").to_owned()).collect::<Vec<_>>().join(", "),
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A JSON string field, or `-`.
pub fn field(v: &Value, name: &str) -> String {
    match v.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

/// Milliseconds since the epoch as `2026-12-07 19:45:02` (UTC), for tables.
pub fn show_time_ms(ms: Option<u64>) -> String {
    match ms {
        Some(ms) => {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
            let s = httpdate::fmt_http_date(t);
            // "Mon, 07 Dec 2026 19:45:02 GMT" → keep it short but unambiguous.
            s.trim_end_matches(" GMT").get(5..).unwrap_or(&s).to_owned()
        }
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(12 << 20), "12.0 MiB");
        assert_eq!(human_size(3 << 30), "3.0 GiB");
    }

    #[test]
    fn tables_align_columns_and_leave_the_last_ragged() {
        let t = table(&["KIND", "NAME"], &[vec!["text".into(), "a".into()], vec!["folder".into(), "sub/".into()]]);
        assert_eq!(t, "KIND    NAME\ntext    a\nfolder  sub/\n");
    }

    #[test]
    fn versions_and_times_for_people() {
        assert_eq!(show_version(&serde_json::json!(["a-1", "b-2"])), "a-1, b-2");
        assert_eq!(show_time_ms(Some(0)), "01 Jan 1970 00:00:00");
    }
}
