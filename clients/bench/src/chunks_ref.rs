//! The in-process reference of file ingest (issue 15 groundwork): what chunking, hashing,
//! sealing and the synced write of chunks cost with the server's own `plait::chunks` modules
//! and no HTTP. The ingest scenario compares the server's CPU per MiB of a PUT with this; the
//! figures are in docs/BENCHMARKS.md ("Issue 15 groundwork").
//!
//! Two 256 MiB buffers (8 MiB at smoke size), fed to the chunker in 64 KiB frames as an HTTP
//! body arrives: random bytes (photos, video, archives: nothing compresses) and generated
//! text (compresses about 2× with LZ4). Each stage is timed on this thread's CPU clock; the
//! synced writes of 1 MiB chunks into the RocksDB chunk engine are compared, in the same run,
//! with 1 MiB values written synced into the documents' RocksDB (`store::open_synced`) and
//! with plain file writes + `fdatasync`, the disk's floor.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use rand::{Rng, RngCore, SeedableRng};

use super::procs::{cpu_ns_with_exited, thread_cpu_ns};
use super::report::{Row, Target};
use super::Ctx;
use plait::chunks::{seal::Sealer, ChunkId, ChunkKey, ChunkParams, ChunkStore, Chunker, RocksChunkStore};
use plait::store::{open_synced, Batch};

const FRAME: usize = 64 << 10;
const MIB: f64 = 1024.0 * 1024.0;

/// CPU seconds of `f` on this thread, and its result.
fn cpu<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let start = thread_cpu_ns().unwrap_or(0);
    let out = f();
    (thread_cpu_ns().unwrap_or(0).saturating_sub(start) as f64 / 1e9, out)
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

/// Words drawn at random from a small vocabulary, with numbers: compresses like prose.
fn text(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the", "chunk", "store", "keeps", "every", "version", "of", "a", "file", "once", "and", "reads", "it", "back",
        "verified", "server", "client", "upload", "bytes", "photo", "document", "history", "merge", "sync",
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        out.extend_from_slice(WORDS[rng.random_range(0..WORDS.len())].as_bytes());
        out.push(if rng.random_range(0..12) == 0 { b'\n' } else { b' ' });
        if rng.random_range(0..20) == 0 {
            let _ = write!(out, "{} ", rng.random_range(0..100_000));
        }
    }
    out.truncate(len);
    out
}

/// The whole pipeline over one buffer: rows for each stage, in MiB/s of CPU.
fn pipeline(label: &str, data: &[u8], rows: &mut Vec<Row>) {
    let params = ChunkParams::default();
    let mib = data.len() as f64 / MIB;
    let rate = |secs: f64| if secs > 0.0 { mib / secs } else { f64::INFINITY };
    let scenario = format!("I15 ref ({label})");
    let (sha, _) = cpu(|| {
        use sha2::Digest;
        sha2::Sha256::digest(data)
    });
    let (chunking, chunks) = cpu(|| {
        let mut chunker = Chunker::new(params);
        let mut chunks = Vec::new();
        for frame in data.chunks(FRAME) {
            chunks.extend(chunker.push(frame));
        }
        let (tail, _) = chunker.finish();
        chunks.extend(tail);
        chunks
    });
    let (blake, _) = cpu(|| chunks.iter().filter(|c| ChunkId::of(&c.data) != c.id).count());
    let plain = Sealer::new(None, params.max());
    let key = ChunkKey::from_bytes(&[7u8; 32]);
    let encrypted = Sealer::new(Some(&key), params.max());
    let (lz4, stored) = cpu(|| chunks.iter().map(|c| plain.seal(&c.id, &c.data).map_or(0, |s| s.len())).sum::<usize>());
    let (lz4_aes, _) =
        cpu(|| chunks.iter().map(|c| encrypted.seal(&c.id, &c.data).map_or(0, |s| s.len())).sum::<usize>());
    let total = chunking + lz4;
    let total_aes = chunking + lz4_aes;
    rows.push(Row::info(
        &scenario,
        &format!("chunks (FastCDC 256 KiB/1 MiB/4 MiB) of {mib:.0} MiB"),
        chunks.len() as f64,
        "chunks",
    ));
    rows.push(Row::info(
        &scenario,
        "stored / plain bytes after LZ4 (kept only when ≥ 1/16 smaller)",
        stored as f64 / data.len() as f64,
        "×",
    ));
    let stage = |metric: &str, secs: f64| Row {
        scenario: scenario.clone(),
        metric: metric.into(),
        value: rate(secs),
        unit: "MiB/s",
        reference: Some(("SHA-256 alone over the buffer".into(), rate(sha))),
        target: Target::None,
    };
    rows.push(stage("BLAKE3 of every chunk alone", blake));
    rows.push(stage("streaming chunker: FastCDC cut + BLAKE3 + SHA-256, 64 KiB frames", chunking));
    rows.push(stage("LZ4 seal of every chunk alone", lz4));
    rows.push(stage("AES-256-GCM + LZ4 seal of every chunk alone", lz4_aes));
    rows.push(stage("chunking + BLAKE3 + SHA-256 + LZ4 (the ingest CPU, no write)", total));
    rows.push(stage("chunking + BLAKE3 + SHA-256 + LZ4 + AES-256-GCM", total_aes));
}

/// Synced writes of `n` distinct 1 MiB chunks into the chunk engine, against the documents'
/// store and plain files, in the same run. Wall-clock MiB/s (the disk's rate, not CPU).
fn synced_writes(n: usize, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("temp dir")?;
    let chunks: Vec<Vec<u8>> = (0..n).map(|i| random(1 << 20, 1000 + i as u64)).collect();
    let ids: Vec<ChunkId> = chunks.iter().map(|c| ChunkId::of(c)).collect();
    let mib = n as f64;

    let engine = RocksChunkStore::open(&dir.path().join("chunks")).context("chunk engine")?;
    let started = Instant::now();
    for (id, chunk) in ids.iter().zip(&chunks) {
        engine.put(id, chunk, chunk.len() as u32).context("put")?;
    }
    let engine_rate = mib / started.elapsed().as_secs_f64();
    drop(engine);

    // Four uploads at once: RocksDB groups their synced writes.
    let engine = Arc::new(RocksChunkStore::open(&dir.path().join("chunks4")).context("chunk engine")?);
    let started = Instant::now();
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..4)
            .map(|part| {
                let (engine, ids, chunks) = (engine.clone(), &ids, &chunks);
                s.spawn(move || -> anyhow::Result<()> {
                    for i in (part..n).step_by(4) {
                        engine.put(&ids[i], &chunks[i], 1 << 20).context("put (4 threads)")?;
                    }
                    Ok(())
                })
            })
            .collect();
        writers.into_iter().try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("a writer panicked"))?)
    })?;
    let engine4_rate = mib / started.elapsed().as_secs_f64();
    anyhow::ensure!(engine.stats().map(|s| s.chunks).unwrap_or(0) == n as u64, "the 4-thread writes did not all land");
    drop(engine);

    let docs = open_synced(&dir.path().join("docs")).map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    for (id, chunk) in ids.iter().zip(&chunks) {
        let mut batch = Batch::new();
        batch.put(id.0.to_vec(), chunk.clone());
        docs.write(&batch).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let docs_rate = mib / started.elapsed().as_secs_f64();
    drop(docs);

    let files = dir.path().join("files");
    std::fs::create_dir(&files)?;
    let started = Instant::now();
    for (id, chunk) in ids.iter().zip(&chunks) {
        let mut f = std::fs::File::create(files.join(id.to_string()))?;
        f.write_all(chunk)?;
        f.sync_data()?;
    }
    let file_rate = mib / started.elapsed().as_secs_f64();

    let floor = "a file per chunk, write + fdatasync".to_string();
    let row = |metric: &str, value: f64, reference: (String, f64)| Row {
        scenario: "I15 ref (synced 1 MiB chunks)".into(),
        metric: metric.into(),
        value,
        unit: "MiB/s",
        reference: Some(reference),
        target: Target::None,
    };
    rows.push(row(&format!("RocksChunkStore::put, one writer, {n} chunks"), engine_rate, (floor.clone(), file_rate)));
    rows.push(row(&format!("RocksChunkStore::put, four writers, {n} chunks"), engine4_rate, (floor, file_rate)));
    rows.push(row(
        "RocksChunkStore::put, one writer, against the documents' RocksDB (1 MiB values inline, synced)",
        engine_rate,
        ("store::open_synced, one synced write per 1 MiB value".into(), docs_rate),
    ));
    Ok(())
}

/// The in-process reference of one file `PUT` (scenario `FILES`, its ingest target): `data`
/// fed in 64 KiB frames to the streaming chunker (FastCDC cut, BLAKE3 ids, SHA-256 of the
/// stream), each chunk sealed (LZ4 kept when it saves) and written synced into a fresh
/// `RocksChunkStore` in `dir`: the work a server cannot avoid, with no HTTP, no leases and no
/// version record. Returns (CPU seconds of this whole process, wall seconds): RocksDB's
/// flush threads count here as the server's own count for it; the caller keeps the rest of
/// this process idle meanwhile.
pub fn ingest(data: &[u8], dir: &std::path::Path) -> anyhow::Result<(f64, f64)> {
    let params = ChunkParams::default();
    let engine = RocksChunkStore::open(dir).context("chunk engine")?;
    let sealer = Sealer::new(None, params.max());
    let store = |chunks: Vec<plait::chunks::Chunk>| -> anyhow::Result<()> {
        for c in chunks {
            let sealed = sealer.seal(&c.id, &c.data).context("seal")?;
            engine.put(&c.id, &sealed, c.data.len() as u32).context("put")?;
        }
        Ok(())
    };
    // Read as the server's CPU is read (`files.rs`), so both sides count alike.
    let own = std::process::id();
    let cpu_before = cpu_ns_with_exited(own)?;
    let started = Instant::now();
    let mut chunker = Chunker::new(params);
    for frame in data.chunks(FRAME) {
        store(chunker.push(frame))?;
    }
    let (tail, summary) = chunker.finish();
    store(tail)?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_ns_with_exited(own)?.saturating_sub(cpu_before) as f64 / 1e9;
    anyhow::ensure!(summary.len == data.len() as u64, "the chunker saw {} of {} bytes", summary.len, data.len());
    Ok((cpu, wall))
}

/// Runs the reference measurements (on the blocking pool: all of it is CPU and disk).
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let (size, writes) = if ctx.smoke { (8 << 20, 8) } else { (256 << 20, 256) };
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Row>> {
        let mut rows = Vec::new();
        pipeline("random bytes", &random(size, 1), &mut rows);
        pipeline("generated text", &text(size, 2), &mut rows);
        synced_writes(writes, &mut rows)?;
        Ok(rows)
    })
    .await?
}
