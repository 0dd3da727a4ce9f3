//! HTTP/2 and TLS (issue 4, item 5): one HTTP/2 connection, cleartext (h2c, prior knowledge)
//! or HTTPS (rustls, ALPN h2), holds more subscriptions to one origin than HTTP/1.1's
//! six-connection browser limit allows, and every one of them receives each update without
//! stalling the others. HTTPS also serves HTTP/1.1 to clients that do not offer h2.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use plait::protocol::{Decoder, UpdateBody};
use rustls_pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

use crate::support::server::{Engine, TestServer};

/// Subscriptions held at once on the one connection.
const STREAMS: usize = 16;

/// Reads `body` until its decoder yields an update, within `limit`.
pub(crate) async fn next_update(body: &mut Incoming, decoder: &mut Decoder, limit: Duration) -> Option<UpdateBody> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(u) = decoder.next_update().unwrap() {
            return Some(u.body);
        }
        let frame = tokio::time::timeout_at(deadline, body.frame()).await.ok()??.ok()?;
        if let Ok(data) = frame.into_data() {
            decoder.push(&data);
        }
    }
}

/// An HTTP/2 connection over `io` (already TLS-wrapped or not), driven in the background.
pub(crate) async fn h2<B, I>(io: I) -> SendRequest<B>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await.unwrap();
    tokio::spawn(conn);
    send
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_h2c_connection_holds_many_live_subscriptions() {
    let s = TestServer::start(Engine::Memory).await;
    let subs = h2(TcpStream::connect(s.addr).await.unwrap()).await;
    let writer = h2(TcpStream::connect(s.addr).await.unwrap()).await;
    many_subscriptions(subs, writer, &format!("http://{}/h2/doc", s.addr)).await;
    s.stop().await;
}

/// A self-signed certificate for `localhost`, written as PEM files into `dir`.
pub(crate) fn self_signed(dir: &std::path::Path) -> (CertificateDer<'static>, std::path::PathBuf, std::path::PathBuf) {
    let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key_pair.serialize_pem()).unwrap();
    (cert.der().clone(), cert_path, key_path)
}

/// A TLS connection to `addr` trusting only `cert`, offering `alpn`; returns the stream.
pub(crate) async fn tls_connect(
    addr: std::net::SocketAddr,
    cert: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_negotiates_h2_and_http1_and_holds_many_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, cert_path, key_path) = self_signed(dir.path());
    let s = TestServer::start_with(Engine::Memory, |c| {
        c.tls_cert = Some(cert_path.clone());
        c.tls_key = Some(key_path.clone());
    })
    .await;

    // ALPN h2: many subscriptions on one connection.
    let tls = tls_connect(s.addr, &cert, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "the server prefers h2");
    let subs = h2(tls).await;
    let writer = h2(tls_connect(s.addr, &cert, &[b"h2"]).await).await;
    many_subscriptions(subs, writer, &format!("https://localhost:{}/tls/doc", s.addr.port())).await;

    // ALPN http/1.1 (and no ALPN at all): plain HTTP/1.1 inside TLS.
    for alpn in [&[&b"http/1.1"[..]][..], &[]] {
        let mut tls = tls_connect(s.addr, &cert, alpn).await;
        let expected = if alpn.is_empty() { None } else { Some(&b"http/1.1"[..]) };
        assert_eq!(tls.get_ref().1.alpn_protocol(), expected);
        tls.write_all(b"GET /tls/doc HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await.unwrap().ok();
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.ends_with("round 2. "), "{out}");
    }

    // Cleartext to a TLS port gets no HTTP answer; the server keeps serving.
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out)).await.unwrap().ok();
    assert!(!out.starts_with(b"HTTP/"), "a cleartext request must not be served on the TLS port");
    assert!(tls_connect(s.addr, &cert, &[b"h2"]).await.get_ref().1.alpn_protocol().is_some());
    s.stop().await;
}

/// Opens [`STREAMS`] subscriptions on `send`, writes three rounds through `writer`, and checks
/// every stream receives every round, then that a plain GET on `send` returns the text.
async fn many_subscriptions(mut send: SendRequest<Empty<Bytes>>, mut writer: SendRequest<Full<Bytes>>, uri: &str) {
    let mut subs = Vec::new();
    for _ in 0..STREAMS {
        let req = Request::get(uri).header("subscribe", "true").body(Empty::new()).unwrap();
        let res = tokio::time::timeout(Duration::from_secs(10), send.send_request(req)).await.unwrap().unwrap();
        assert_eq!(res.status().as_u16(), 209);
        assert_eq!(res.version(), hyper::Version::HTTP_2);
        let mut body = res.into_body();
        let mut decoder = Decoder::new();
        let first = next_update(&mut body, &mut decoder, Duration::from_secs(10)).await;
        assert_eq!(first, Some(UpdateBody::Snapshot(String::new())), "the initial (empty) snapshot");
        subs.push((body, decoder));
    }

    // Writes on a second connection reach every stream of the first.
    let mut text = String::new();
    for round in 0..3 {
        let piece = format!("round {round}. ");
        let req = Request::put(uri)
            .header("content-range", format!("text [{n}:{n}]", n = text.chars().count()))
            .body(Full::new(Bytes::from(piece.clone())))
            .unwrap();
        let res = writer.send_request(req).await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        text.push_str(&piece);
        for (i, (body, decoder)) in subs.iter_mut().enumerate() {
            let got = next_update(body, decoder, Duration::from_secs(10)).await;
            let delivered = matches!(&got, Some(UpdateBody::Patches(p)) if p.iter().any(|p| p.content == piece));
            assert!(delivered, "stream {i}, round {round}: got {got:?}");
        }
    }
    // And the connection is still good for a plain GET.
    let req = Request::get(uri).body(Empty::new()).unwrap();
    let res = send.send_request(req).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(String::from_utf8_lossy(&body), text);
}
