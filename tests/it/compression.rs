//! Compression (issue 4, item 6): finite responses are compressed when the client accepts it,
//! subscriptions never are, and `--no-compression` turns it off.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::support::client::{request, SubscriptionReader};
use crate::support::server::{Engine, TestServer};

/// A text that compresses well and is well above tower-http's 32-byte floor.
fn long_text() -> String {
    (0..400).map(|i| format!("line {i}: the quick brown fox jumps over the lazy dog\n")).collect()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_and_history_are_compressed_when_accepted() {
    let s = TestServer::start(Engine::Rocks).await;
    let text = long_text();
    let last = format!("\"a-{}\"", text.chars().count() - 1);
    let r = request(s.addr, "PUT", "/z", &[("Version", &last), ("Parents", "")], text.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());

    let plain = request(s.addr, "GET", "/z", &[], b"").await;
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.text(), text);

    let gz = request(s.addr, "GET", "/z", &[("Accept-Encoding", "gzip")], b"").await;
    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert!(gz.body.len() * 5 < text.len(), "gzip: {} of {} bytes", gz.body.len(), text.len());
    assert_eq!(gunzip(&gz.body), text.as_bytes());
    assert_eq!(gz.header("etag"), plain.header("etag"), "validators survive compression");

    let br = request(s.addr, "GET", "/z", &[("Accept-Encoding", "br")], b"").await;
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert!(br.body.len() * 5 < text.len(), "br: {} of {} bytes", br.body.len(), text.len());

    // A history range (GET with Parents) is a finite 209 and is compressed too.
    let h = [("Parents", ""), ("Merge-Type", "dt")];
    let plain = request(s.addr, "GET", "/z", &h, b"").await;
    let gz = request(s.addr, "GET", "/z", &[h[0], h[1], ("Accept-Encoding", "gzip")], b"").await;
    assert_eq!(gz.status, 209);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&gz.body), plain.body);
    s.stop().await;

    // Off switch.
    let s = TestServer::start_with(Engine::Memory, |c| c.no_compression = true).await;
    request(s.addr, "PUT", "/z", &[], text.as_bytes()).await;
    let r = request(s.addr, "GET", "/z", &[("Accept-Encoding", "gzip, br")], b"").await;
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.text(), text);
    s.stop().await;
}

/// Median time from a PUT's response to its update on the subscription, over `n` PUTs.
async fn delivery_ms(s: &TestServer, path: &str, sub_headers: &[(&str, &str)], n: usize) -> f64 {
    let mut sub = SubscriptionReader::open(s.addr, path, sub_headers).await;
    assert_eq!(sub.head.status, 209);
    assert_eq!(sub.head.header("content-encoding"), None, "a subscription must never be compressed");
    sub.next_within(Duration::from_secs(10)).await.expect("the initial snapshot");
    let mut times = Vec::new();
    for i in 0..n {
        let body = format!("{i} {}", long_text());
        let sent = Instant::now();
        let r = request(s.addr, "PUT", path, &[], body.as_bytes()).await;
        assert_eq!(r.status, 200);
        // A compressor would hold the update back: bounded wait, then fail.
        sub.next_within(Duration::from_secs(10)).await.unwrap_or_else(|| panic!("update {i} never arrived"));
        times.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times[n / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_never_compressed_or_held_back() {
    let s = TestServer::start(Engine::Memory).await;
    let accepting = delivery_ms(&s, "/live-a", &[("Accept-Encoding", "gzip, br")], 20).await;
    let plain = delivery_ms(&s, "/live-b", &[], 20).await;
    // Both arrive (asserted above); the medians are reported, not compared, since the
    // machine is shared and noisy.
    eprintln!("subscription delivery median: {accepting:.2} ms with Accept-Encoding, {plain:.2} ms without");
    s.stop().await;
}
