//! Text files sync as text documents: a local save becomes a Braid write of the diff against
//! the last synced text, with `Parents` = the last synced version, so the server's CRDT merges
//! it with concurrent edits from other machines and browsers; then the merged text is fetched
//! and written back, only if the file did not change meanwhile.
//!
//! Every write is recorded (with a fixed `Version`: this device's agent for the path and the
//! next sequence numbers) in the same batch that makes the new text the base, before it is
//! sent: re-sending it after a crash or a lost answer is an idempotent `200` on the server.

use std::time::Duration;

use super::fsio;
use super::remote::Head;
use super::state::{PathKind, PathRecord, QueuedWrite, Stat};
use super::{Folder, Outcome};
use crate::client::ClientError;

/// Above this many code points the character diff is skipped for one prefix/suffix patch.
const DIFF_MAX_CHARS: usize = 2_000_000;

/// The patches turning `old` into `new`: `(start, end, content)` in code points of `old`,
/// sorted and not overlapping (what a `Patches: N` write carries). Empty when equal.
pub fn diff(old: &str, new: &str) -> Vec<(u64, u64, String)> {
    if old == new {
        return Vec::new();
    }
    let a: Vec<char> = old.chars().collect();
    let b: Vec<char> = new.chars().collect();
    if a.len() + b.len() > DIFF_MAX_CHARS {
        return vec![prefix_suffix(&a, &b)];
    }
    let ops = similar::capture_diff_deadline(
        similar::Algorithm::Myers,
        &a,
        0..a.len(),
        &b,
        0..b.len(),
        Some(std::time::Instant::now() + Duration::from_millis(500)),
    );
    let mut out: Vec<(u64, u64, String)> = Vec::new();
    for op in ops {
        let (old_range, new_range) = match op {
            similar::DiffOp::Equal { .. } => continue,
            similar::DiffOp::Delete { old_index, old_len, .. } => (old_index..old_index + old_len, 0..0),
            similar::DiffOp::Insert { old_index, new_index, new_len } => {
                (old_index..old_index, new_index..new_index + new_len)
            }
            similar::DiffOp::Replace { old_index, old_len, new_index, new_len } => {
                (old_index..old_index + old_len, new_index..new_index + new_len)
            }
        };
        let content: String = b[new_range].iter().collect();
        let (s, e) = (old_range.start as u64, old_range.end as u64);
        match out.last_mut() {
            // A delete followed by an insert at its end is one replacement.
            Some(last) if last.1 == s => {
                last.1 = e;
                last.2.push_str(&content);
            }
            _ => out.push((s, e, content)),
        }
    }
    if out.len() > crate::protocol::MAX_PATCHES {
        return vec![prefix_suffix(&a, &b)];
    }
    out
}

/// One patch replacing what lies between the common prefix and suffix.
fn prefix_suffix(a: &[char], b: &[char]) -> (u64, u64, String) {
    let p = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let s = a[p..].iter().rev().zip(b[p..].iter().rev()).take_while(|(x, y)| x == y).count();
    ((p as u64), (a.len() - s) as u64, b[p..b.len() - s].iter().collect())
}

/// How many events (code points deleted plus inserted) the patches are.
pub fn event_count(patches: &[(u64, u64, String)]) -> u64 {
    patches.iter().map(|(s, e, c)| e - s + c.chars().count() as u64).sum()
}

/// A fresh agent for this device and one life of a document: `<device>.<random>`, under the
/// 50-byte limit, never starting with the server's reserved `~`.
pub fn new_agent(device: &str) -> String {
    let mut name: String =
        device.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.')).take(24).collect();
    if name.is_empty() {
        name.push('d');
    }
    let suffix: String =
        (0..10).map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rand::random_range(0..36)])).collect();
    format!("{name}.{suffix}")
}

fn same(a: &[String], b: &[String]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

fn fresh_record(device: &str) -> PathRecord {
    PathRecord {
        kind: PathKind::Text,
        stat: None,
        sha256: String::new(),
        version: Vec::new(),
        agent: new_agent(device),
        next_seq: 0,
        queue: Vec::new(),
        intent: None,
        landing: None,
        conflict: None,
    }
}

/// Reads a local text file; None when it is no longer text (binary bytes).
fn read_text(path: &std::path::Path) -> std::io::Result<Option<String>> {
    let bytes = std::fs::read(path)?;
    if bytes.contains(&0) {
        return Ok(None);
    }
    Ok(String::from_utf8(bytes).ok())
}

impl Folder {
    /// Records a write of `base → new` on top of `rec.version`, making `new` the base, in one
    /// batch (before it is sent).
    async fn queue_text(
        &self,
        rel: &str,
        rec: &mut PathRecord,
        base: &str,
        new: &str,
        stat: Option<Stat>,
    ) -> Result<(), ClientError> {
        let patches = diff(base, new);
        let n = event_count(&patches);
        if n > 0 {
            let version = format!("{}-{}", rec.agent, rec.next_seq + n - 1);
            rec.queue.push(QueuedWrite { version: version.clone(), parents: rec.version.clone(), patches });
            rec.next_seq += n;
            rec.version = vec![version];
        }
        rec.sha256 = fsio::sha256_hex(new.as_bytes());
        rec.stat = stat;
        rec.landing = None;
        self.db.put(rel, rec, Some(new)).await
    }

    /// Sends the queued writes in order, dropping each once acknowledged; returns the
    /// document's frontier after the last one (None when nothing was sent).
    async fn flush_text(&self, rel: &str, rec: &mut PathRecord) -> Result<Option<Vec<String>>, ClientError> {
        let mut frontier = None;
        while let Some(w) = rec.queue.first().cloned() {
            frontier = Some(self.server.put_text(rel, &w).await?);
            rec.queue.remove(0);
            self.db.put(rel, rec, None).await?;
            self.activity("uploaded", rel, &format!("text write {}", w.version));
        }
        Ok(frontier)
    }

    /// Sends what is queued, then the server's text and frontier: `sent` itself when the
    /// frontier after the writes is exactly the last one (nobody wrote concurrently), without
    /// asking again.
    async fn send_and_read(
        &self,
        rel: &str,
        rec: &mut PathRecord,
        sent: &str,
    ) -> Result<(String, Vec<String>), ClientError> {
        match self.flush_text(rel, rec).await? {
            Some(f) if same(&f, &rec.version) => Ok((sent.to_owned(), f)),
            _ => self.server.get_text(rel).await,
        }
    }

    /// Brings one text path to agreement (see the module doc).
    pub(super) async fn sync_text(&self, rel: &str, head: &Head) -> Result<Outcome, ClientError> {
        let abs = self.abs(rel);
        let mut rec = self.db.record(rel)?.filter(|r| r.kind == PathKind::Text);
        if let Some(r) = rec.as_mut() {
            if let Err(e) = self.flush_text(rel, r).await {
                if e.is_transient() {
                    return Err(e);
                }
                // Refused for good (the document was erased under it, or the write is bad):
                // forget the queue; the local file still holds the text and is sent again.
                self.db.remove(rel, None).await?;
                rec = None;
            }
        }
        let unchanged_there = rec.as_ref().is_some_and(|r| r.queue.is_empty() && same(&head.version, &r.version));
        let (mut srv_text, mut srv_ver) = if head.kind == Some(PathKind::Text) && unchanged_there {
            // The server is where the record is: its text is the record's.
            (self.db.text(rel)?, head.version.clone())
        } else if head.kind == Some(PathKind::Text) {
            self.server.get_text(rel).await?
        } else {
            (String::new(), Vec::new())
        };
        for _ in 0..4 {
            let local = fsio::stat(&abs);
            if let Some(st) = &local {
                if fsio::settling(st, rec.as_ref().and_then(|r| r.stat.as_ref()), fsio::SETTLE_TEXT) {
                    return Ok(Outcome::Unsettled);
                }
            }
            let base = match &rec {
                Some(_) => self.db.text(rel)?,
                None => String::new(),
            };
            let local_text = match (&local, &rec) {
                (None, _) => None,
                (Some(st), Some(r)) if r.stat.as_ref() == Some(st) => Some(base.clone()),
                (Some(_), _) => match read_text(&abs)? {
                    Some(t) => Some(t),
                    None => {
                        return Ok(Outcome::Failed("the file is no longer text; rename it to sync it as a file".into()))
                    }
                },
            };
            if let (Some(r), Some(lt)) = (rec.as_mut(), &local_text) {
                if let Some((v, sha)) = r.landing.clone() {
                    if fsio::sha256_hex(lt.as_bytes()) == sha {
                        // A crash came after the rename: the file is that version.
                        r.version = v;
                        self.queue_text(rel, r, lt, lt, local).await?;
                        continue;
                    }
                }
            }
            match (rec.as_mut(), local_text) {
                (None, None) => {
                    if srv_ver.is_empty() {
                        return Ok(Outcome::Done);
                    }
                }
                (None, Some(lt)) => {
                    let mut r = fresh_record(&self.spec.device);
                    if srv_ver.is_empty() || srv_text != lt {
                        if !self.writable {
                            if srv_ver.is_empty() {
                                return Ok(Outcome::Failed("read-only: not sent".into()));
                            }
                        } else {
                            // Sent on top of what the server has: the local file wins, the
                            // server's text stays in the history.
                            r.version = srv_ver.clone();
                            self.queue_text(rel, &mut r, &srv_text, &lt, local).await?;
                            (srv_text, srv_ver) = self.send_and_read(rel, &mut r, &lt).await?;
                            rec = Some(r);
                            continue;
                        }
                    } else {
                        r.version = srv_ver.clone();
                        self.queue_text(rel, &mut r, &lt, &lt, local).await?;
                        return Ok(Outcome::Done);
                    }
                    rec = Some(r);
                    continue;
                }
                (Some(r), None) => {
                    if srv_ver.is_empty() {
                        self.db.remove(rel, None).await?;
                        return Ok(Outcome::Done);
                    }
                    if same(&srv_ver, &r.version) && self.writable {
                        self.server.delete(rel).await?;
                        self.db.remove(rel, None).await?;
                        self.activity("deleted on server", rel, "");
                        return Ok(Outcome::Done);
                    }
                    // Changed on the server since: the change wins over the local delete.
                    r.stat = None;
                }
                (Some(r), Some(lt)) => {
                    if srv_ver.is_empty() && !r.version.is_empty() {
                        if lt == base {
                            std::fs::remove_file(&abs)?;
                            fsio::prune_empty_dirs(&self.root, abs.parent());
                            self.db.remove(rel, None).await?;
                            self.activity("deleted locally", rel, "deleted on the server");
                            return Ok(Outcome::Done);
                        }
                        // Edited here, erased there: the edit lives on as a new document.
                        *r = fresh_record(&self.spec.device);
                        self.queue_text(rel, r, "", &lt, local).await?;
                        (srv_text, srv_ver) = self.send_and_read(rel, r, &lt).await?;
                        continue;
                    }
                    if lt != base && self.writable {
                        self.queue_text(rel, r, &base, &lt, local).await?;
                        (srv_text, srv_ver) = self.send_and_read(rel, r, &lt).await?;
                        continue;
                    }
                    if same(&srv_ver, &r.version) {
                        if r.stat != local {
                            r.stat = local;
                            self.db.put(rel, r, None).await?;
                        }
                        return Ok(Outcome::Done);
                    }
                }
            }
            // The server has more: write it here, unless the file changed since it was read.
            if fsio::stat(&abs) != local {
                continue;
            }
            let mut r = rec.take().unwrap_or_else(|| fresh_record(&self.spec.device));
            let sha = fsio::sha256_hex(srv_text.as_bytes());
            r.landing = Some((srv_ver.clone(), sha.clone()));
            self.db.put(rel, &r, None).await?;
            if local.is_some() {
                fsio::set_readonly(&abs, false);
            }
            let mut landing = fsio::Landing::create(&abs)?;
            landing.write(srv_text.as_bytes())?;
            if !landing.commit_if_unchanged(&abs, local)? {
                // Saved locally while we were landing: keep the save, merge it next round.
                r.landing = None;
                self.db.put(rel, &r, None).await?;
                rec = Some(r);
                continue;
            }
            if !self.writable {
                fsio::set_readonly(&abs, true);
            }
            r.version = srv_ver.clone();
            r.sha256 = sha;
            r.stat = fsio::stat(&abs);
            r.landing = None;
            self.db.put(rel, &r, Some(&srv_text)).await?;
            self.activity("downloaded", rel, &format!("text {}", srv_ver.join(", ")));
            return Ok(Outcome::Done);
        }
        Ok(Outcome::Again)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(old: &str, patches: &[(u64, u64, String)]) -> String {
        let a: Vec<char> = old.chars().collect();
        let mut out = String::new();
        let mut at = 0usize;
        for (s, e, c) in patches {
            out.extend(&a[at..*s as usize]);
            out.push_str(c);
            at = *e as usize;
        }
        out.extend(&a[at..]);
        out
    }

    #[test]
    fn diffs_apply_back_and_count_events() {
        for (old, new) in [
            ("hello world", "hello brave new world"),
            ("a😀b", "a😀éb"),
            ("line one\nline two\nline three\n", "line 1\nline two\nline three, and more\n"),
            ("", "fresh"),
            ("gone", ""),
            ("same", "same"),
        ] {
            let p = diff(old, new);
            assert_eq!(apply(old, &p), new, "{old:?} → {new:?}: {p:?}");
            for w in p.windows(2) {
                assert!(w[0].1 < w[1].0 || (w[0].1 <= w[1].0 && w[0].0 < w[1].0), "{p:?}");
            }
        }
        assert_eq!(event_count(&diff("abc", "abXc")), 1);
        assert_eq!(event_count(&[(0, 5, "bye".to_string())]), 8);
        let a = new_agent("my laptop ~ é");
        assert!(a.starts_with("mylaptop.") && a.len() < 50, "{a}");
    }
}
