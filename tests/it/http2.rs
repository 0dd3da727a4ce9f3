//! HTTP/2 (issue 4, item 5, the cleartext half): one h2c connection (prior knowledge) holds
//! more subscriptions to one origin than HTTP/1.1's six-connection browser limit allows, and
//! every one of them receives each update without stalling the others.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use plait::protocol::{Decoder, UpdateBody};
use tokio::net::TcpStream;

use crate::support::server::{Engine, TestServer};

/// Subscriptions held at once on the one connection.
const STREAMS: usize = 16;

/// Reads `body` until its decoder yields an update, within `limit`.
async fn next_update(body: &mut Incoming, decoder: &mut Decoder, limit: Duration) -> Option<UpdateBody> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_h2c_connection_holds_many_live_subscriptions() {
    let s = TestServer::start(Engine::Memory).await;
    let tcp = TcpStream::connect(s.addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);

    let uri = format!("http://{}/h2/doc", s.addr);
    let mut subs = Vec::new();
    for _ in 0..STREAMS {
        let req = Request::get(&uri).header("subscribe", "true").body(Empty::new()).unwrap();
        let res = tokio::time::timeout(Duration::from_secs(10), send.send_request(req)).await.unwrap().unwrap();
        assert_eq!(res.status().as_u16(), 209);
        assert_eq!(res.version(), hyper::Version::HTTP_2);
        let mut body = res.into_body();
        let mut decoder = Decoder::new();
        let first = next_update(&mut body, &mut decoder, Duration::from_secs(10)).await;
        assert_eq!(first, Some(UpdateBody::Snapshot(String::new())), "the initial (empty) snapshot");
        subs.push((body, decoder));
    }

    // Writes on a second h2c connection reach every stream of the first.
    let tcp = TcpStream::connect(s.addr).await.unwrap();
    let (mut writer, conn) =
        hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut text = String::new();
    for round in 0..3 {
        let piece = format!("round {round}. ");
        let req = Request::put(&uri)
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
    let req = Request::get(&uri).body(Empty::new()).unwrap();
    let res = send.send_request(req).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(String::from_utf8_lossy(&body), text);
    s.stop().await;
}
