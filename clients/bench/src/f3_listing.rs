//! F3, listing a folder of 100,000 resources (issue 16: "lists page by page in bounded
//! memory"). Setup, timed on its own: 100,000 small text PUTs into one folder from 64
//! connections. Then, as JSON, page by page (`?limit=` and `?after=` the previous page's
//! `next`): the whole folder with 1,000 entries a page and with 10,000, and the parent folder
//! with `?recursive=1`; every listing must return exactly the 100,000 names, in order.
//!
//! Memory: the server's RSS is sampled every 5 ms during the listings. Bounded memory means the
//! growth does not follow the folder's size, so the reference is the same server, restarted,
//! listing only the first 10,000 entries (the same pages); the 100,000-entry listing runs after a
//! restart too, so both start from the same state. Part of that growth is RocksDB's block cache
//! (32 MiB unless configured) filling, which a listing of the first tenth does not fill, so the
//! whole folder is then listed a second time: a bounded listing adds nothing over the first
//! pass's peak (at most 4 MiB here).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context};

use super::client::Conn;
use super::procs::{cpu_ns, rss_bytes};
use super::report::{Row, Target};
use super::Ctx;

/// Resources in the folder at full size.
const ENTRIES: usize = 100_000;
const SMOKE_ENTRIES: usize = 300;
/// Connections creating them.
const WRITERS: usize = 64;
const SMOKE_WRITERS: usize = 8;
/// What a second pass over the whole folder may add to the server's RSS, MiB.
const AGAIN_MIB: f64 = 4.0;
/// How often the server's RSS is read during a listing.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// The `i`th resource's name.
fn name(i: usize) -> String {
    format!("r{i:06}")
}

/// Creates `n` resources `folder` + [`name`] from `writers` connections; returns the wall time.
async fn create(addr: SocketAddr, folder: &str, n: usize, writers: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let folder = folder.to_string();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(addr).await?;
            for i in (w..n).step_by(writers) {
                let path = format!("{folder}{}", name(i));
                let r = conn.request("PUT", &path, &[], format!("entry {i}\n").as_bytes()).await?;
                ensure!(r.status == 200, "PUT {path} answered {}", r.status);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(started.elapsed())
}

/// The server's peak RSS, sampled until stopped.
pub(crate) struct Sampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Sampler {
    pub(crate) fn start(pid: u32) -> Sampler {
        let (peak, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Ok(rss) = rss_bytes(pid) {
                    p.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
        });
        Sampler { peak, stop, thread }
    }

    /// Stops; the peak RSS seen, in bytes (at least the RSS now).
    pub(crate) fn peak(self, pid: u32) -> anyhow::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().map_err(|_| anyhow!("the RSS sampler panicked"))?;
        Ok(self.peak.load(Ordering::Relaxed).max(rss_bytes(pid)?))
    }
}

/// What one paged listing saw.
struct Listed {
    elapsed: Duration,
    pages: usize,
    /// Each resource's path, in the order listed.
    paths: Vec<String>,
}

/// Lists `folder` (with `query`, e.g. `recursive=1&`) `limit` entries a page, as JSON, for at
/// most `max_pages` pages.
async fn list(addr: SocketAddr, folder: &str, query: &str, limit: usize, max_pages: usize) -> anyhow::Result<Listed> {
    let mut conn = Conn::connect(addr).await?;
    let started = Instant::now();
    let (mut after, mut paths, mut pages) = (None::<String>, Vec::new(), 0);
    while pages < max_pages {
        let mut target = format!("{folder}?{query}limit={limit}");
        if let Some(after) = &after {
            target.push_str(&format!("&after={after}"));
        }
        let r = conn.request("GET", &target, &[("accept", "application/json")], b"").await?;
        ensure!(r.status == 200, "GET {target} answered {}", r.status);
        let page: serde_json::Value = serde_json::from_slice(&r.body).with_context(|| format!("GET {target}"))?;
        let entries = page["entries"].as_array().ok_or_else(|| anyhow!("GET {target}: no entries"))?;
        for e in entries {
            if e["type"] == "text" {
                paths.push(e["path"].as_str().unwrap_or_default().to_string());
            }
        }
        pages += 1;
        match page["next"].as_str() {
            // The names here need no escaping in a query.
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    Ok(Listed { elapsed: started.elapsed(), pages, paths })
}

/// The listing holds exactly resources 0..n of `folder`, in order.
fn check(what: &str, listed: &Listed, folder: &str, n: usize) -> anyhow::Result<()> {
    ensure!(listed.paths.len() == n, "{what}: {} resources listed, {n} expected", listed.paths.len());
    for (i, p) in listed.paths.iter().enumerate() {
        if *p != format!("{folder}{}", name(i)) {
            bail!("{what}: entry {i} is {p}, expected {folder}{}", name(i));
        }
    }
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// Runs F3.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let (n, writers) = if ctx.smoke { (SMOKE_ENTRIES, SMOKE_WRITERS) } else { (ENTRIES, WRITERS) };
    let (small, big) = if ctx.smoke { (10, 100) } else { (1000, 10_000) };
    let mut server = ctx.server(&[])?;
    let parent = ctx.doc("f3/");
    let folder = format!("{parent}big/");
    tracing::info!(n, "F3: creating the folder");
    let setup = create(server.addr(), &folder, n, writers).await?;

    // The reference: the first tenth of the folder, from a fresh start.
    server.restart()?;
    let pid = server.pid().ok_or_else(|| anyhow!("F3 needs the server's memory: pass --server-pid with --url"))?;
    let before = rss_bytes(pid)?;
    let sampler = Sampler::start(pid);
    let tenth = list(server.addr(), &folder, "", small, n / 10 / small).await?;
    let growth_tenth = sampler.peak(pid)?.saturating_sub(before);
    check("the first tenth", &tenth, &folder, n / 10)?;

    tracing::info!(n, "F3: listing");
    server.restart()?;
    let pid = server.pid().ok_or_else(|| anyhow!("no server pid"))?;
    let before = rss_bytes(pid)?;
    let sampler = Sampler::start(pid);
    let cpu0 = cpu_ns(pid)?;
    let paged_small = list(server.addr(), &folder, "", small, usize::MAX).await?;
    let cpu_small = cpu_ns(pid)?.saturating_sub(cpu0);
    let peak = sampler.peak(pid)?;
    let growth = peak.saturating_sub(before);
    check("limit small", &paged_small, &folder, n)?;
    // Again: RocksDB's block cache (32 MiB by default) is full now, so whatever grows on a
    // second pass would be kept per entry listed.
    let sampler = Sampler::start(pid);
    let again = list(server.addr(), &folder, "", small, usize::MAX).await?;
    let growth_again = sampler.peak(pid)?.saturating_sub(peak);
    check("limit small, again", &again, &folder, n)?;
    let cpu1 = cpu_ns(pid)?;
    let sampler = Sampler::start(pid);
    let paged_big = list(server.addr(), &folder, "", big, usize::MAX).await?;
    let cpu2 = cpu_ns(pid)?;
    let growth_big = sampler.peak(pid)?.saturating_sub(before);
    check("limit big", &paged_big, &folder, n)?;
    let recursive = list(server.addr(), &parent, "recursive=1&", big, usize::MAX).await?;
    check("recursive", &recursive, &folder, n)?;
    let per_entry = |ns: u64| ns as f64 / 1000.0 / n as f64;
    let (cpu_small, cpu_big) = (per_entry(cpu_small), per_entry(cpu2.saturating_sub(cpu1)));

    let scenario = format!("F3 ({n} entries)");
    let secs = |d: Duration| d.as_secs_f64();
    let rate = |l: &Listed| n as f64 / secs(l.elapsed).max(f64::MIN_POSITIVE);
    Ok(vec![
        Row::info(&scenario, &format!("setup: {n} text PUTs from {writers} connections (each synced), wall"), secs(setup), "s"),
        Row::info(&scenario, &format!("listing, {small} a page ({} pages, JSON), wall", paged_small.pages), secs(paged_small.elapsed), "s"),
        Row::info(&scenario, &format!("listing, {small} a page, entries per second"), rate(&paged_small), "entries/s"),
        Row {
            reference: Some((format!("{small} a page"), rate(&paged_small))),
            ..Row::info(&scenario, &format!("listing, {big} a page ({} pages), entries per second", paged_big.pages), rate(&paged_big), "entries/s")
        },
        Row::info(&scenario, &format!("server CPU per entry listed, {small} a page"), cpu_small, "µs"),
        Row {
            reference: Some((format!("{small} a page"), cpu_small)),
            ..Row::info(&scenario, &format!("server CPU per entry listed, {big} a page"), cpu_big, "µs")
        },
        Row {
            reference: Some((format!("the folder itself, {big} a page"), rate(&paged_big))),
            ..Row::info(&scenario, &format!("?recursive=1 of the parent, {big} a page, entries per second"), rate(&recursive), "entries/s")
        },
        Row {
            reference: Some((format!("listing only the first {} entries, after a restart too", n / 10), mib(growth_tenth))),
            target: Target::None,
            ..Row::info(&scenario, &format!("server RSS growth, peak during the whole listing ({small} a page; against RSS after a restart, {:.1} MiB)", mib(before)), mib(growth), "MiB")
        },
        Row {
            target: Target::AbsoluteAtMost(AGAIN_MIB),
            ..Row::info(&scenario, &format!("server RSS growth during a second whole listing, {small} a page, over the first's peak"), mib(growth_again), "MiB")
        },
        Row::info(&scenario, &format!("server RSS growth, peak during the listing {big} a page (same start)"), mib(growth_big), "MiB"),
    ])
}
