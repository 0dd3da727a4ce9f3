//! Binary conflicts: when the server keeps siblings, the folder gets the served winner at the
//! path and the other side as `name (conflicted copy <device> <date>).ext` beside it. The copy
//! is this device's, never sent as a file of its own while the conflict stands. Deleting the
//! copy resolves the conflict on the server (a commit of what the path holds, with every
//! sibling as `Parents`); renaming it resolves it too, and the new name syncs as a new file
//! (its chunks are on the server already, so nothing is uploaded).

use super::fsio;
use super::remote::Head;
use super::state::{ConflictRecord, PathRecord, Stat};
use super::{binary, Folder, Outcome};
use crate::client::ClientError;

/// `2026-12-08 004519` for a time in seconds since 1970 (UTC).
pub fn date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}{:02}{:02}", rem / 3600, rem / 60 % 60, rem % 60)
}

/// The conflicted copy's name for `rel`: the extension stays last, so the copy opens with the
/// same program. `n` > 1 adds a number when that name is taken.
pub fn copy_name(rel: &str, device: &str, secs: u64, n: u32) -> String {
    let (dir, name) = match rel.rfind('/') {
        Some(i) => (&rel[..=i], &rel[i + 1..]),
        None => ("", rel),
    };
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    let device: String = device.chars().filter(|c| !matches!(c, '/' | '\\' | '\0')).collect();
    let num = if n > 1 { format!(" {n}") } else { String::new() };
    format!("{dir}{stem} (conflicted copy {device} {}{num}){ext}", date(secs))
}

impl Folder {
    /// Shows the server's siblings: the winner at the path, one loser as the conflicted copy.
    pub(super) async fn make_conflict(
        &self,
        rel: &str,
        rec: &mut Option<PathRecord>,
        head: &Head,
        local: Option<Stat>,
        local_sha: Option<&str>,
    ) -> Result<Outcome, ClientError> {
        self.conflicts_changed.store(true, std::sync::atomic::Ordering::Relaxed);
        let Some(winner) = head.version.first() else { return Ok(Outcome::Done) };
        let Some(loser) = head.heads.iter().find(|h| *h != winner) else { return Ok(Outcome::Done) };
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        let mut n = 1;
        let copy = loop {
            let c = copy_name(rel, &self.spec.device, secs, n);
            if fsio::stat(&self.abs(&c)).is_none() && self.db.copy_of(&c)?.is_none() {
                break c;
            }
            n += 1;
        };
        let copy_abs = self.abs(&copy);
        self.db.put_copy(&copy, rel)?;
        let (landing, copy_sha) = match self.fetch(rel, Some(loser), &copy_abs).await {
            Ok(x) => x,
            // The loser is a delete: nothing to keep beside the winner.
            Err(ClientError::Status { status: 404 | 410, .. }) => {
                self.db.remove_copy(&copy)?;
                let mut r = rec.take().unwrap_or_else(|| binary::file_record(Vec::new()));
                r.version = head.heads.clone();
                self.db.put(rel, &r, None)?;
                return Ok(Outcome::Again);
            }
            Err(e) => {
                self.db.remove_copy(&copy)?;
                return Err(e);
            }
        };
        landing.commit(&copy_abs)?;
        let abs = self.abs(rel);
        let mut r = rec.take().unwrap_or_else(|| binary::file_record(Vec::new()));
        let sha = if local_sha.is_some() && local_sha == head.sha256.as_deref() {
            local_sha.unwrap_or_default().to_owned()
        } else {
            let (landing, sha) = self.fetch(rel, Some(winner), &abs).await?;
            if fsio::stat(&abs) != local {
                // Changed meanwhile: keep the copy, look again.
                r.conflict = Some(ConflictRecord { copy, versions: head.heads.clone(), copy_sha256: copy_sha });
                self.db.put(rel, &r, None)?;
                return Ok(Outcome::Again);
            }
            r.landing = Some((head.heads.clone(), sha.clone()));
            self.db.put(rel, &r, None)?;
            landing.commit(&abs)?;
            sha
        };
        r.version = head.heads.clone();
        r.sha256 = sha;
        r.stat = fsio::stat(&abs);
        r.landing = None;
        r.conflict = Some(ConflictRecord { copy: copy.clone(), versions: head.heads.clone(), copy_sha256: copy_sha });
        self.db.put(rel, &r, None)?;
        self.activity("conflict", rel, &format!("the other version is in {copy}"));
        Ok(Outcome::Done)
    }

    /// A path with a conflicted copy: resolves it when the copy is gone, lets it go when the
    /// server resolved it. Some(outcome) when nothing else is to be done for the path.
    pub(super) async fn check_conflict(
        &self,
        rel: &str,
        rec: &mut Option<PathRecord>,
        head: &Head,
        local: Option<Stat>,
        local_sha: Option<&str>,
    ) -> Result<Option<Outcome>, ClientError> {
        let Some(r) = rec.as_mut() else { return Ok(None) };
        let Some(c) = r.conflict.clone() else { return Ok(None) };
        self.conflicts_changed.store(true, std::sync::atomic::Ordering::Relaxed);
        let copy_abs = self.abs(&c.copy);
        let resolved_there = !binary::same(&head.heads, &c.versions);
        if fsio::stat(&copy_abs).is_some() {
            if !resolved_there {
                if local_sha.is_some() && local_sha != Some(r.sha256.as_str()) {
                    // The path was edited: sent on top of every sibling, which resolves it.
                    return Ok(None);
                }
                return Ok(Some(Outcome::Done));
            }
            // Resolved elsewhere: an untouched copy goes, an edited one becomes a file.
            if fsio::sha256_file(&copy_abs)? == c.copy_sha256 {
                std::fs::remove_file(&copy_abs)?;
            }
            r.conflict = None;
            self.db.put(rel, r, None)?;
            self.db.remove_copy(&c.copy)?;
            self.mark_dirty(&c.copy);
            self.activity("resolved", rel, "on another device");
            return Ok(None);
        }
        // The copy was deleted or renamed: resolve on the server with what the path holds.
        r.conflict = None;
        self.db.put(rel, r, None)?;
        self.db.remove_copy(&c.copy)?;
        if resolved_there || !self.writable {
            return Ok(None);
        }
        let Some(st) = local else { return Ok(None) };
        r.version = c.versions.clone();
        let out = match self.upload(rel, r, st).await? {
            None => Outcome::Unsettled,
            Some(_) => Outcome::Done,
        };
        self.activity("resolved", rel, "conflicted copy removed");
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_names_keep_the_extension_and_the_date() {
        assert_eq!(date(0), "1970-01-01 000000");
        assert_eq!(date(1_796_690_959), "2026-12-08 004919");
        assert_eq!(copy_name("a/photo.jpg", "laptop", 0, 1), "a/photo (conflicted copy laptop 1970-01-01 000000).jpg");
        assert_eq!(copy_name(".bashrc", "pc", 0, 2), ".bashrc (conflicted copy pc 1970-01-01 000000 2)");
        assert_eq!(copy_name("x.tar.gz", "a/b", 0, 1), "x.tar (conflicted copy ab 1970-01-01 000000).gz");
    }
}
