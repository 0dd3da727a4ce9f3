//! Files that are not text sync whole versions through the delta exchange: the file is cut
//! with the server's chunking parameters, only the chunks the server lacks are sent, and the
//! version is committed by its chunk list with `Parents` = the last synced version (so a
//! concurrent write elsewhere becomes a sibling, never a silent overwrite) and a fixed
//! `Version` recorded before the commit (so a retry is the same version). A rename or a copy
//! sends no chunk: the server has them all. Downloads land atomically, never over a file
//! changed locally since the last sync.

use std::path::Path;

use super::fsio::{self, Landing};
use super::remote::Head;
use super::state::{PathKind, PathRecord, Stat};
use super::{Folder, Outcome};
use crate::chunks::ChunkId;
use crate::client::ClientError;

pub(super) fn same(a: &[String], b: &[String]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

/// A new file version id: seconds since 1970 with milliseconds and six random digits (a
/// decimal, like the ids the server and braidfs choose, so the winner order stays by time).
pub fn new_version_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}{:06}", now.as_secs(), now.subsec_millis(), rand::random_range(0..1_000_000u32))
}

pub(super) fn file_record(version: Vec<String>) -> PathRecord {
    PathRecord {
        kind: PathKind::File,
        stat: None,
        sha256: String::new(),
        version,
        agent: String::new(),
        next_seq: 0,
        queue: Vec::new(),
        intent: None,
        landing: None,
        conflict: None,
    }
}

impl Folder {
    /// Sends the local file as a new version on top of `rec.version`; returns the heads after
    /// it, or None when the file changed while it was being sent (try again once it settles).
    pub(super) async fn upload(
        &self,
        rel: &str,
        rec: &mut PathRecord,
        pre: Stat,
    ) -> Result<Option<Vec<String>>, ClientError> {
        let params = self.params()?;
        let abs = self.abs(rel);
        let cut = {
            let abs = abs.clone();
            tokio::task::spawn_blocking(move || fsio::cut(&abs, params))
                .await
                .map_err(|e| ClientError::Local(e.to_string()))??
        };
        self.counters.count_hashed();
        if fsio::stat(&abs) != Some(pre) {
            return Ok(None);
        }
        let mut ids: Vec<ChunkId> = cut.chunks.iter().map(|c| c.0).collect();
        ids.sort();
        ids.dedup();
        let missing: std::collections::BTreeSet<ChunkId> = self.server.missing(rel, &ids).await?.into_iter().collect();
        self.counters.count_missing_call(ids.len() as u64, missing.len() as u64);
        let total: u64 = cut.chunks.iter().filter(|c| missing.contains(&c.0)).map(|c| c.2).sum();
        let mut done = 0u64;
        let mut sent = std::collections::BTreeSet::new();
        for (id, offset, len) in &cut.chunks {
            if !missing.contains(id) || !sent.insert(*id) {
                continue;
            }
            let bytes = fsio::read_range(&abs, *offset, *len)?;
            if ChunkId::of(&bytes) != *id {
                self.transfer_done(rel);
                return Ok(None);
            }
            self.server.put_chunk(rel, *id, bytes).await?;
            self.counters.count_chunk(*len);
            done += len;
            self.transfer(rel, "up", done, total);
        }
        self.transfer_done(rel);
        let sha = hex::encode(cut.sha256);
        let version = match &rec.intent {
            Some((v, s)) if *s == sha => v.clone(),
            _ => new_version_id(),
        };
        rec.intent = Some((version.clone(), sha.clone()));
        self.db.put(rel, rec, None).await?;
        let content_type = crate::protocol::kind::file_content_type(None, &cut.head);
        let list: Vec<(ChunkId, u64)> = cut.chunks.iter().map(|c| (c.0, c.2)).collect();
        let heads = match self.server.commit(rel, &list, &cut.sha256, &version, Some(&rec.version), &content_type).await
        {
            Ok(h) => h,
            // A chunk went missing between `missing` and the commit (collected meanwhile):
            // ask again once the file is looked at again.
            Err(ClientError::Status { status: 409, code: Some(c), .. }) if c == "chunks_missing" => return Ok(None),
            Err(e) => return Err(e),
        };
        rec.version = heads.clone();
        rec.sha256 = sha;
        rec.stat = Some(pre);
        rec.intent = None;
        self.db.put(rel, rec, None).await?;
        self.activity("uploaded", rel, &format!("{} bytes, {} new in {} chunks", cut.size, total, sent.len()));
        Ok(Some(heads))
    }

    /// Downloads `version` (the served one when None) of `rel` to a temp file beside `target`;
    /// the caller records its intent and commits the landing.
    pub(super) async fn fetch(
        &self,
        rel: &str,
        version: Option<&str>,
        target: &Path,
    ) -> Result<(Landing, String), ClientError> {
        let mut landing = Landing::create(target)?;
        let sha = self
            .server
            .download(rel, version, &mut landing, |done, total| self.transfer(rel, "down", done, total))
            .await;
        self.transfer_done(rel);
        let sha = sha?;
        self.counters.count_download();
        Ok((landing, sha))
    }

    /// Lands the served version at `rel`, if the local file is still as `expect`.
    async fn download_into_place(
        &self,
        rel: &str,
        rec: &mut PathRecord,
        head: &Head,
        expect: Option<Stat>,
    ) -> Result<Outcome, ClientError> {
        let abs = self.abs(rel);
        let (landing, sha) = self.fetch(rel, head.version.first().map(String::as_str), &abs).await?;
        if fsio::stat(&abs) != expect {
            return Ok(Outcome::Again);
        }
        rec.landing = Some((head.heads.clone(), sha.clone()));
        self.db.put(rel, rec, None).await?;
        if expect.is_some() {
            fsio::set_readonly(&abs, false);
        }
        if !landing.commit_if_unchanged(&abs, expect)? {
            // Changed locally while we were landing: keep it; the next look uploads it.
            rec.landing = None;
            self.db.put(rel, rec, None).await?;
            return Ok(Outcome::Again);
        }
        if !self.writable {
            fsio::set_readonly(&abs, true);
        }
        rec.version = head.heads.clone();
        rec.sha256 = sha;
        rec.stat = fsio::stat(&abs);
        rec.landing = None;
        self.db.put(rel, rec, None).await?;
        self.activity("downloaded", rel, &head.version.join(", "));
        Ok(Outcome::Done)
    }

    /// Brings one file path to agreement (see the module doc).
    pub(super) async fn sync_file(&self, rel: &str, head: &Head) -> Result<Outcome, ClientError> {
        let abs = self.abs(rel);
        let mut rec = self.db.record(rel)?.filter(|r| r.kind == PathKind::File);
        let local = fsio::stat(&abs);
        if let Some(st) = &local {
            if fsio::settling(st, rec.as_ref().and_then(|r| r.stat.as_ref()), fsio::SETTLE) {
                return Ok(Outcome::Unsettled);
            }
        }
        let local_sha = match (&local, &rec) {
            (None, _) => None,
            (Some(st), Some(r)) if r.stat.as_ref() == Some(st) => Some(r.sha256.clone()),
            (Some(_), _) => {
                self.counters.count_hashed();
                let abs = abs.clone();
                Some(
                    tokio::task::spawn_blocking(move || fsio::sha256_file(&abs))
                        .await
                        .map_err(|e| ClientError::Local(e.to_string()))??,
                )
            }
        };
        if let Some(r) = rec.as_mut() {
            // A commit whose answer was lost, or a landing cut short by a crash.
            let mut adopted = false;
            if let Some((v, sha)) = r.intent.clone() {
                if head.heads.contains(&v) {
                    r.version = head.heads.clone();
                    r.sha256 = sha;
                    r.intent = None;
                    adopted = true;
                }
            }
            if let Some((v, sha)) = r.landing.clone() {
                if local_sha.as_ref() == Some(&sha) {
                    r.version = v;
                    r.sha256 = sha;
                    r.landing = None;
                    adopted = true;
                }
            }
            if adopted {
                if local_sha.as_ref() == Some(&r.sha256) {
                    r.stat = local;
                }
                self.db.put(rel, r, None).await?;
            }
        }
        if rec.as_ref().is_some_and(|r| r.conflict.is_some()) {
            if let Some(out) = self.check_conflict(rel, &mut rec, head, local, local_sha.as_deref()).await? {
                return Ok(out);
            }
        }
        let live = head.kind == Some(PathKind::File) && !head.deleted;
        let server_changed = rec.as_ref().is_none_or(|r| !same(&head.heads, &r.version));
        let local_changed = match (&rec, &local_sha) {
            (Some(r), Some(s)) => *s != r.sha256,
            (None, Some(_)) => true,
            _ => false,
        };
        if local_changed {
            let (Some(st), Some(sha)) = (local, local_sha) else { return Ok(Outcome::Done) };
            if live && head.sha256.as_ref() == Some(&sha) && head.heads.len() == 1 {
                let mut r = rec.unwrap_or_else(|| file_record(Vec::new()));
                r.version = head.heads.clone();
                r.sha256 = sha;
                r.stat = Some(st);
                self.db.put(rel, &r, None).await?;
                return Ok(Outcome::Done);
            }
            if !self.writable {
                if live && server_changed {
                    let mut r = rec.unwrap_or_else(|| file_record(Vec::new()));
                    return self.download_into_place(rel, &mut r, head, local).await;
                }
                return Ok(Outcome::Failed("read-only: local change not sent".into()));
            }
            // A first sync over a different server file is concurrent with it (siblings).
            let mut r = rec.unwrap_or_else(|| file_record(if live { Vec::new() } else { head.heads.clone() }));
            return match self.upload(rel, &mut r, st).await? {
                None => Ok(Outcome::Unsettled),
                Some(heads) if heads.len() > 1 => Ok(Outcome::Again),
                Some(_) => Ok(Outcome::Done),
            };
        }
        let Some(mut r) = rec else {
            // Nothing here, nothing recorded: take the server's file if there is one.
            if live && head.heads.len() == 1 {
                let mut r = file_record(Vec::new());
                return self.download_into_place(rel, &mut r, head, None).await;
            }
            if live {
                let mut r = Some(file_record(Vec::new()));
                return self.make_conflict(rel, &mut r, head, None, None).await;
            }
            return Ok(Outcome::Done);
        };
        if local.is_none() {
            // Deleted here.
            if !server_changed || !live {
                if live && self.writable {
                    self.server.delete(rel).await?;
                    self.activity("deleted on server", rel, "");
                }
                self.db.remove(rel, None).await?;
                return Ok(Outcome::Done);
            }
            // Changed there since: the change wins over the delete.
            r.stat = None;
        }
        if live && head.heads.len() > 1 && local.is_some() {
            // Siblings not shown yet (our own commit made them, or they came while we agreed).
            let mut rec = Some(r);
            return self.make_conflict(rel, &mut rec, head, local, local_sha.as_deref()).await;
        }
        if !server_changed {
            if r.stat != local {
                r.stat = local;
                self.db.put(rel, &r, None).await?;
            }
            return Ok(Outcome::Done);
        }
        if !live {
            if local.is_some() {
                std::fs::remove_file(&abs)?;
                fsio::prune_empty_dirs(&self.root, abs.parent());
                self.activity("deleted locally", rel, "deleted on the server");
            }
            self.db.remove(rel, None).await?;
            return Ok(Outcome::Done);
        }
        if head.heads.len() > 1 {
            let mut rec = Some(r);
            return self.make_conflict(rel, &mut rec, head, local, local_sha.as_deref()).await;
        }
        self.download_into_place(rel, &mut r, head, local).await
    }
}
