//! Uploads through the real hub, group-commit thread and chunk vault (in memory, small chunks
//! so that a few hundred KiB make many): resuming across requests and across a restart gives
//! the bytes and digest of the whole; a checksum mismatch keeps nothing; a newer request stops
//! an older one; partial uploads concatenate; expiry drops everything an upload held.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use crate::chunks::{ChunkParams, MemoryChunkStore, Vault};
use crate::protocol::upload::ChecksumAlgorithm;
use crate::store::{Committer, MemoryStore, Store};
use crate::upload::UploadError;

use super::super::{FileStore, Hub, HubError, HubSettings};
use super::{Append, NewUpload};

fn files() -> FileStore {
    let params = ChunkParams::new(1024, 4096, 16384).unwrap();
    let vault = Vault::open(Arc::new(MemoryChunkStore::new()), None, params.max(), "memory").unwrap();
    FileStore { vault: Arc::new(vault), params, max_file_bytes: 1 << 30, direct: None }
}

fn hub(store: &Arc<dyn Store>, files: &FileStore) -> Hub {
    Hub::new(store.clone(), Committer::start(store.clone()).unwrap(), HubSettings::standard(), files.clone())
}

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut out);
    out
}

/// A body of `frames` as a stream of 1000-byte frames.
fn body(data: &[u8]) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
    let frames: Vec<Result<Bytes, std::io::Error>> = data.chunks(1000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    futures_util::stream::iter(frames)
}

fn new_upload(path: &str, length: Option<u64>) -> NewUpload {
    NewUpload { target: Some(path.into()), length, ..NewUpload::default() }
}

fn at(offset: u64) -> Append {
    Append { offset, now_ms: 1_000, ..Append::default() }
}

async fn content_of(hub: &Hub, path: &str) -> (Vec<u8>, [u8; 32]) {
    let file = hub.file(path).await.unwrap().expect("a file");
    let content = file.current().expect("content").clone();
    let mut out = Vec::new();
    for chunk in &content.chunks {
        out.extend_from_slice(&hub.read_chunk(&crate::chunks::ChunkId(chunk.id)).unwrap());
    }
    (out, content.sha256)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_in_three_requests_and_a_restart_becomes_one_version_with_the_whole_digest() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let files = files();
    let data = bytes(1, 300_000);
    let first = hub(&store, &files);
    let (id, _) = first.create_upload(new_upload("/up/a.bin", Some(data.len() as u64)), 1_000).await.unwrap();
    let a = first.append_upload(&id, at(0), body(&data[..100_001])).await.unwrap();
    assert_eq!(a.record.offset, 100_001);
    assert!(a.version.is_none());
    let b = first.append_upload(&id, at(100_001), body(&data[100_001..200_000])).await.unwrap();
    assert_eq!(b.record.offset, 200_000);
    // A wrong offset changes nothing and says where to resume.
    let wrong = first.append_upload(&id, at(5), body(b"x")).await.unwrap_err();
    assert!(matches!(wrong, HubError::Upload(UploadError::OffsetMismatch { sent: 5, held: 200_000 })), "{wrong:?}");
    drop(first);

    // A new hub on the same store and chunks: the running hash is gone, the bytes are not.
    let second = hub(&store, &files);
    assert_eq!(second.upload_offset(&id).await.unwrap().offset, 200_000);
    let c = second.append_upload(&id, at(200_000), body(&data[200_000..])).await.unwrap();
    assert!(c.version.is_some(), "the last byte completes the upload");
    assert_eq!(c.record.offset, data.len() as u64);
    let (got, sha) = content_of(&second, "/up/a.bin").await;
    assert!(got == data, "the version holds exactly the uploaded bytes");
    assert_eq!(sha, <[u8; 32]>::from(Sha256::digest(&data)));
    let done = second.append_upload(&id, at(data.len() as u64), body(b"")).await.unwrap_err();
    assert!(matches!(done, HubError::Upload(UploadError::Completed)));
    // Nothing of the upload is left referenced: only the version's chunks survive collection.
    second.collect_chunks().await.unwrap();
    let (again, _) = content_of(&second, "/up/a.bin").await;
    assert!(again == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checksum_mismatch_keeps_nothing_and_a_matching_one_is_kept() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let hub = hub(&store, &files());
    let data = bytes(2, 50_000);
    let (id, _) = hub.create_upload(new_upload("/c.bin", Some(50_000)), 1_000).await.unwrap();
    let wrong = Append { checksum: Some((ChecksumAlgorithm::Sha256, vec![0; 32])), ..at(0) };
    let e = hub.append_upload(&id, wrong, body(&data[..20_000])).await.unwrap_err();
    assert!(matches!(e, HubError::Upload(UploadError::ChecksumMismatch { .. })), "{e:?}");
    assert_eq!(hub.upload_offset(&id).await.unwrap().offset, 0);
    let sha1 = <sha1::Sha1 as sha1::Digest>::digest(&data[..20_000]).to_vec();
    let right = Append { checksum: Some((ChecksumAlgorithm::Sha1, sha1)), ..at(0) };
    assert_eq!(hub.append_upload(&id, right, body(&data[..20_000])).await.unwrap().record.offset, 20_000);
    let last = hub.append_upload(&id, at(20_000), body(&data[20_000..])).await.unwrap();
    assert!(last.version.is_some());
    assert!(content_of(&hub, "/c.bin").await.0 == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_request_stops_an_older_one_which_keeps_what_arrived() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let hub = hub(&store, &files());
    let data = bytes(3, 40_000);
    let (id, _) = hub.create_upload(new_upload("/s.bin", Some(40_000)), 1_000).await.unwrap();
    // A body that sends 25,000 bytes and then hangs, like a dead connection nobody noticed.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let stuck = tokio_stream::wrappers::ReceiverStream::new(rx);
    let older = {
        let hub = hub.clone();
        tokio::spawn(async move { hub.append_upload(&id, at(0), stuck).await })
    };
    for frame in data[..25_000].chunks(5_000) {
        tx.send(Ok(Bytes::copy_from_slice(frame))).await.unwrap();
    }
    // Wait until the older request holds the upload (its frames are being consumed).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while tx.capacity() < 4 {
        assert!(std::time::Instant::now() < deadline, "the older request never read its body");
        tokio::task::yield_now().await;
    }
    let offset = hub.upload_offset(&id).await.unwrap().offset;
    assert_eq!(offset, 25_000, "the older request kept every byte that arrived");
    let e = older.await.unwrap().unwrap_err();
    assert!(matches!(e, HubError::Upload(UploadError::Superseded(25_000))), "{e:?}");
    let done = hub.append_upload(&id, at(25_000), body(&data[25_000..])).await.unwrap();
    assert!(done.version.is_some());
    assert!(content_of(&hub, "/s.bin").await.0 == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_uploads_concatenate_into_one_version() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let hub = hub(&store, &files());
    let data = bytes(4, 90_000);
    let mut parts = Vec::new();
    for piece in data.chunks(30_000) {
        let new = NewUpload { partial: true, length: Some(piece.len() as u64), ..NewUpload::default() };
        let (id, _) = hub.create_upload(new, 1_000).await.unwrap();
        assert!(hub.append_upload(&id, at(0), body(piece)).await.unwrap().version.is_none());
        parts.push(id);
    }
    let (_, done) = hub.concat_uploads(new_upload("/cat.bin", None), &parts, 1_000).await.unwrap();
    assert_eq!(done.record.offset, 90_000);
    let (got, sha) = content_of(&hub, "/cat.bin").await;
    assert!(got == data);
    assert_eq!(sha, <[u8; 32]>::from(Sha256::digest(&data)));
    // The partial uploads are gone with the commit.
    let e = hub.upload(&parts[0]).await.unwrap_err();
    assert!(matches!(e, HubError::Upload(UploadError::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_drops_an_abandoned_upload_and_its_chunks_are_collected() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let files = files();
    let hub = hub(&store, &files);
    let (id, record) = hub.create_upload(new_upload("/x.bin", Some(100_000)), 1_000).await.unwrap();
    hub.append_upload(&id, at(0), body(&bytes(5, 60_000))).await.unwrap();
    hub.collect_chunks().await.unwrap();
    let held = files.vault.stats().unwrap().chunks;
    assert!(held > 3, "the upload's chunks survive collection while it lives ({held})");
    assert_eq!(hub.expire_uploads(record.expires_ms - 1).await.unwrap(), 0, "not yet expired");
    // The append extended the expiry from its own time (1_000 ms too, here).
    assert_eq!(hub.expire_uploads(u64::MAX).await.unwrap(), 1);
    assert!(matches!(hub.upload(&id).await.unwrap_err(), HubError::Upload(UploadError::NotFound(_))));
    hub.collect_chunks().await.unwrap();
    assert_eq!(files.vault.stats().unwrap().chunks, 0, "every chunk of the expired upload was collected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_refuse_oversize_and_too_many_uploads() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut settings = HubSettings::standard();
    settings.uploads.max_bytes = 10_000;
    settings.uploads.max_per_owner = 2;
    let hub = Hub::new(store.clone(), Committer::start(store.clone()).unwrap(), settings, files());
    let e = hub.create_upload(new_upload("/big", Some(10_001)), 1).await.unwrap_err();
    assert!(matches!(e, HubError::Upload(UploadError::TooLarge { limit: 10_000 })));
    let (deferred, _) = hub.create_upload(new_upload("/d", None), 1).await.unwrap();
    let e = hub.append_upload(&deferred, at(0), body(&bytes(6, 12_000))).await.unwrap_err();
    assert!(matches!(e, HubError::Upload(UploadError::TooLarge { limit: 10_000 })), "{e:?}");
    assert_eq!(hub.upload_offset(&deferred).await.unwrap().offset, 10_000, "what fitted was kept");
    hub.create_upload(new_upload("/e", None), 1).await.unwrap();
    let e = hub.create_upload(new_upload("/f", None), 1).await.unwrap_err();
    assert!(matches!(e, HubError::Upload(UploadError::TooMany { limit: 2 })));
    hub.cancel_upload(&deferred).await.unwrap();
    hub.create_upload(new_upload("/f", None), 1).await.unwrap();
}
