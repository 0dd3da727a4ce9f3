//! Direct uploads to the object store (`--blob-store s3://…` with `--direct-uploads`): a
//! browser uploads a file's parts straight to the bucket with URLs signed here one at a time,
//! and the finished object is read back into chunks and committed as one version of its target,
//! through the document's shell like a `PUT` (subscribers and folder watchers see it like any
//! other write). The multipart upload is then deleted from the bucket.
//!
//! Why read it back: a version's bytes are content-defined chunks (deduplicated, sealed, shared
//! with other versions), not whole objects; reading the object in the bucket's own network is
//! what the browser's upload saved, and it is also where the content is verified (its length
//! against the parts S3 holds, its SHA-256 into the version's `Repr-Digest`).
//!
//! The ledger (`upload::direct`): every multipart upload is recorded with the grant that
//! started it, so each later call must name an upload of the same grant, and uploads nobody
//! completes are aborted when they expire (S3 keeps, and bills, incomplete uploads otherwise).

use std::time::Duration;

use futures_util::StreamExt;

use crate::chunks::s3::bucket::{UploadKey, MAX_PARTS};
use crate::chunks::s3::{Bucket, S3Error, StoredPart};
use crate::chunks::ChunkError;
use crate::document::FileWriteOutcome;
use crate::file::{FileChange, FileWrite};
use crate::protocol::kind::file_content_type;
use crate::store::Batch;
use crate::upload::direct::{self, DirectRecord, Grant};
use crate::upload::UploadError;

use super::files::SNIFF_BYTES;
use super::loading::blocking;
use super::uploads::commit_error;
use super::{Hub, HubError};

/// How long a grant works.
pub const GRANT_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A bucket failure as the hub reports it: an unknown upload is the client's `404`, parts S3
/// refuses its `400`, anything else the storage's fault.
fn s3(e: S3Error) -> HubError {
    match e {
        S3Error::NoSuchUpload { upload_id, .. } => HubError::Upload(UploadError::NotFound(upload_id)),
        S3Error::InvalidParts { why, .. } => HubError::Upload(UploadError::BadParts(why)),
        other => HubError::Chunks(ChunkError::Engine(other.to_string())),
    }
}

fn not_found(name: &str) -> HubError {
    HubError::Upload(UploadError::NotFound(name.chars().take(40).collect()))
}

impl Hub {
    fn bucket(&self) -> Result<&Bucket, HubError> {
        self.0.files.direct.as_ref().map(|d| &d.bucket).ok_or(HubError::Upload(UploadError::NoDirectUploads))
    }

    /// Whether direct uploads are on.
    pub fn direct_uploads(&self) -> bool {
        self.0.files.direct.is_some()
    }

    /// The origin browsers send parts to, when direct uploads are on (the folder page lets its
    /// script connect there).
    pub fn direct_origin(&self) -> Option<&str> {
        self.0.files.direct.as_ref().map(|d| d.origin.as_str())
    }

    /// A grant for `owner` to upload into `folder` (the caller checked its right to write
    /// there); returns its name and record.
    pub async fn create_grant(
        &self,
        owner: String,
        author: Option<String>,
        folder: String,
        now_ms: u64,
    ) -> Result<(String, Grant), HubError> {
        self.bucket()?;
        let name = direct::fresh_name();
        let grant = Grant { owner, author, folder, expires_ms: now_ms + GRANT_LIFETIME.as_millis() as u64 };
        let mut batch = Batch::new();
        batch.put(direct::grant_key(&name), grant.encode());
        self.0.durability.commit(batch).await.map_err(commit_error)?;
        Ok((name, grant))
    }

    /// The grant `name`, if it exists and has not expired.
    pub fn grant(&self, name: &str, now_ms: u64) -> Result<Grant, HubError> {
        self.bucket()?;
        if !direct::is_name(name) {
            return Err(HubError::Upload(UploadError::BadGrant));
        }
        let bytes = blocking(|| self.0.store.get(&direct::grant_key(name)))?;
        match bytes.as_deref().and_then(Grant::decode) {
            Some(grant) if grant.expires_ms > now_ms => Ok(grant),
            _ => Err(HubError::Upload(UploadError::BadGrant)),
        }
    }

    /// Starts a multipart upload of `target` (the caller built it from the grant's folder) for
    /// the grant `grant`; returns the upload's name (Uppy's `key`) and S3's upload id.
    pub async fn direct_create(
        &self,
        grant: &str,
        target: String,
        content_type: Option<String>,
        now_ms: u64,
    ) -> Result<(String, String), HubError> {
        let bucket = self.bucket()?;
        let name = direct::fresh_name();
        let key = object_key(bucket, &name)?;
        let upload_id = bucket.create_multipart(&key).await.map_err(s3)?;
        let expires_ms = now_ms + self.0.settings.uploads.expiry.as_millis() as u64;
        let record =
            DirectRecord { upload_id: upload_id.clone(), grant: grant.to_string(), target, content_type, expires_ms };
        let mut batch = Batch::new();
        batch.put(direct::direct_key(&name), record.encode());
        self.0.durability.commit(batch).await.map_err(commit_error)?;
        Ok((name, upload_id))
    }

    /// The ledger's record of upload `name`, checked against the grant and S3's upload id the
    /// client names.
    fn direct_record(&self, grant: &str, name: &str, upload_id: &str) -> Result<DirectRecord, HubError> {
        if !direct::is_name(name) {
            return Err(not_found(name));
        }
        let bytes = blocking(|| self.0.store.get(&direct::direct_key(name)))?;
        match bytes.as_deref().and_then(DirectRecord::decode) {
            Some(r) if r.grant == grant && r.upload_id == upload_id => Ok(r),
            _ => Err(not_found(name)),
        }
    }

    /// A URL that lets its holder `PUT` part `number` of the upload, valid for `lifetime`.
    pub async fn direct_sign(&self, grant: &str, name: &str, upload_id: &str, number: u32) -> Result<String, HubError> {
        let bucket = self.bucket()?;
        self.direct_record(grant, name, upload_id)?;
        if !(1..=MAX_PARTS).contains(&number) {
            return Err(HubError::Upload(UploadError::BadParts(format!("part number {number} is not 1 to 10000"))));
        }
        let key = object_key(bucket, name)?;
        let lifetime = self.0.settings.uploads.part_url_lifetime;
        bucket.sign_part(&key, upload_id, number, lifetime).await.map_err(s3)
    }

    /// The parts S3 holds for the upload (what a client resuming after a reload asks).
    pub async fn direct_parts(&self, grant: &str, name: &str, upload_id: &str) -> Result<Vec<StoredPart>, HubError> {
        let bucket = self.bucket()?;
        self.direct_record(grant, name, upload_id)?;
        bucket.list_parts(&object_key(bucket, name)?, upload_id).await.map_err(s3)
    }

    /// Aborts the upload and forgets it.
    pub async fn direct_abort(&self, grant: &str, name: &str, upload_id: &str) -> Result<(), HubError> {
        let bucket = self.bucket()?;
        self.direct_record(grant, name, upload_id)?;
        bucket.abort(&object_key(bucket, name)?, upload_id).await.map_err(s3)?;
        self.forget_direct(name).await
    }

    async fn forget_direct(&self, name: &str) -> Result<(), HubError> {
        let mut batch = Batch::new();
        batch.delete(direct::direct_key(name));
        self.0.durability.commit(batch).await.map_err(commit_error)
    }

    /// Completes the upload from its parts, reads the object into chunks, commits it as a
    /// version of its target, and deletes the object; returns the target and the version.
    pub async fn direct_complete(
        &self,
        grant: &Grant,
        grant_name: &str,
        name: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        now_ms: u64,
    ) -> Result<(String, FileWriteOutcome), HubError> {
        let bucket = self.bucket()?;
        let record = self.direct_record(grant_name, name, upload_id)?;
        let key = object_key(bucket, name)?;
        if parts.is_empty() {
            return Err(HubError::Upload(UploadError::BadParts("a completion lists at least one part".into())));
        }
        bucket.complete(&key, upload_id, parts).await.map_err(s3)?;
        let outcome = self.ingest_object(bucket, &key, grant, &record, now_ms).await;
        // The object is in chunks now (or refused): either way it goes, and so does its record.
        if let Err(e) = bucket.delete(&key).await {
            tracing::warn!(object = key.as_str(), error = %e, "could not delete a completed direct upload's object");
        }
        self.forget_direct(name).await?;
        Ok((record.target, outcome?))
    }

    /// Streams the object into the chunk store and commits the version.
    async fn ingest_object(
        &self,
        bucket: &Bucket,
        key: &UploadKey,
        grant: &Grant,
        record: &DirectRecord,
        now_ms: u64,
    ) -> Result<FileWriteOutcome, HubError> {
        let (len, mut stream) = bucket.read(key).await.map_err(s3)?;
        if len > self.file_limit() {
            return Err(HubError::FileTooLarge { limit: self.file_limit() });
        }
        let mut ingest = self.ingest();
        let mut prefix = Vec::new();
        while let Some(frame) = stream.next().await {
            let frame = frame.map_err(s3)?;
            if prefix.len() < SNIFF_BYTES {
                prefix.extend_from_slice(&frame[..frame.len().min(SNIFF_BYTES - prefix.len())]);
            }
            ingest.push(frame).await?;
        }
        let ingested = ingest.finish(None).await?;
        if ingested.size != len {
            return Err(HubError::Chunks(ChunkError::Engine(format!(
                "the object {} read back {} bytes, the bucket said {len}",
                key.as_str(),
                ingested.size
            ))));
        }
        let content_type = file_content_type(record.content_type.as_deref(), &prefix);
        let write = FileWrite {
            version: None,
            parents: None,
            change: FileChange::Delete,
            author: grant.author.clone(),
            now_ms,
        };
        self.write_file(&record.target, write, Some((ingested, content_type)), None).await
    }

    /// Aborts every direct upload past its expiry and drops expired grants; returns how many
    /// uploads went.
    pub(super) async fn expire_direct(&self, now_ms: u64) -> Result<usize, HubError> {
        let Some(bucket) = self.0.files.direct.as_ref().map(|d| &d.bucket) else { return Ok(0) };
        let store = self.0.store.clone();
        let records = blocking(|| store.scan_prefix(&direct::directs_prefix()))?;
        let mut batch = Batch::new();
        let mut dropped = 0;
        for (k, v) in records {
            let (Some(name), Some(record)) = (direct::name_of_key(&k), DirectRecord::decode(&v)) else { continue };
            if record.expires_ms > now_ms {
                continue;
            }
            if let Ok(key) = object_key(bucket, name) {
                if let Err(e) = bucket.abort(&key, &record.upload_id).await {
                    tracing::warn!(upload = name, error = %e, "could not abort an expired direct upload");
                }
            }
            batch.delete(k.clone());
            dropped += 1;
        }
        let grants = blocking(|| store.scan_prefix(&direct::grants_prefix()))?;
        for (k, v) in grants {
            if Grant::decode(&v).is_none_or(|g| g.expires_ms <= now_ms) {
                batch.delete(k);
            }
        }
        if !batch.is_empty() {
            self.0.durability.commit(batch).await.map_err(commit_error)?;
        }
        Ok(dropped)
    }
}

/// The bucket key of upload `name`: `prefix/uploads/direct/<name>`.
fn object_key(bucket: &Bucket, name: &str) -> Result<UploadKey, HubError> {
    bucket.upload_key(&format!("direct/{name}")).map_err(s3)
}
