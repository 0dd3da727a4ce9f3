//! A raw HTTP/1.1 client: requests are bytes we write, responses are parsed by hand, so
//! tests see exactly what the server sent (status line, header order, framing).

use std::net::SocketAddr;
use std::time::Duration;

use plait::protocol::{DecodedUpdate, Decoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Upper bound for any single wait in a test.
pub const WAIT: Duration = Duration::from_secs(10);

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// Names lowercased, in order, repeats kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
    /// A 2xx status.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }
}

/// One keep-alive connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Conn {
        let stream = timeout(WAIT, TcpStream::connect(addr)).await.unwrap().unwrap();
        Conn { stream, buf: Vec::new() }
    }

    /// A connection over a socket set up by the caller (e.g. with a small receive buffer).
    pub fn from_stream(stream: TcpStream) -> Conn {
        Conn { stream, buf: Vec::new() }
    }

    /// Sends a request: `head` is the request line and headers without the final blank
    /// line; Host and Content-Length are added.
    pub async fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        if !body.is_empty() || matches!(method, "PUT" | "POST" | "PATCH") {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.send_raw(&bytes).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        timeout(WAIT, self.stream.write_all(bytes)).await.unwrap().unwrap();
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16384];
        let n = timeout(WAIT, self.stream.read(&mut chunk)).await.expect("timed out reading from server").unwrap();
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// Reads a status line and headers.
    pub async fn read_head(&mut self) -> Response {
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            assert!(self.fill().await, "connection closed before response headers");
        };
        let head = String::from_utf8(self.buf[..end].to_vec()).unwrap();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let mut parts = status_line.splitn(3, ' ');
        let _version = parts.next();
        let status = parts.next().unwrap().parse().unwrap();
        let reason = parts.next().unwrap_or("").to_string();
        let headers = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        Response { status, reason, headers, body: Vec::new() }
    }

    /// Reads one whole response (Content-Length or chunked; HEAD has no body).
    pub async fn read_response(&mut self, method: &str) -> Response {
        let mut res = self.read_head().await;
        if method == "HEAD" || res.status == 304 {
            return res;
        }
        if res.header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            loop {
                let chunk = self.read_chunk().await;
                match chunk {
                    Some(c) => res.body.extend_from_slice(&c),
                    None => break,
                }
            }
        } else {
            let len: usize = res.header("content-length").map_or(0, |l| l.parse().unwrap());
            while self.buf.len() < len {
                assert!(self.fill().await, "connection closed mid-body");
            }
            res.body = self.buf.drain(..len).collect();
        }
        res
    }

    /// One HTTP/1.1 chunk's payload, or None at the last chunk.
    pub async fn read_chunk(&mut self) -> Option<Vec<u8>> {
        let line_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                break i;
            }
            if !self.fill().await {
                return None;
            }
        };
        let size_str = String::from_utf8(self.buf[..line_end].to_vec()).unwrap();
        let size = usize::from_str_radix(size_str.split(';').next().unwrap().trim(), 16).unwrap();
        self.buf.drain(..line_end + 2);
        while self.buf.len() < size + 2 {
            if !self.fill().await {
                return None; // closed mid-chunk: the caller sees the stream end
            }
        }
        let data: Vec<u8> = self.buf.drain(..size).collect();
        self.buf.drain(..2);
        if size == 0 {
            None
        } else {
            Some(data)
        }
    }

    /// Sends one request and reads its response.
    pub async fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        self.send(method, path, headers, body).await;
        self.read_response(method).await
    }
}

/// One request on a fresh connection.
pub async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    Conn::open(addr).await.request(method, path, headers, body).await
}

/// A subscription: the 209 head, then updates decoded from the chunked body.
pub struct SubscriptionReader {
    pub conn: Conn,
    pub head: Response,
    pub decoder: Decoder,
    /// Every body byte received, de-chunked, for golden comparisons.
    pub raw: Vec<u8>,
}

impl SubscriptionReader {
    pub async fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> SubscriptionReader {
        Self::open_on(Conn::open(addr).await, path, headers).await
    }

    /// Subscribes over an existing connection.
    pub async fn open_on(mut conn: Conn, path: &str, headers: &[(&str, &str)]) -> SubscriptionReader {
        let mut all = headers.to_vec();
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("subscribe")) {
            all.insert(0, ("Subscribe", "true"));
        }
        conn.send("GET", path, &all, b"").await;
        let head = conn.read_head().await;
        SubscriptionReader { conn, head, decoder: Decoder::new(), raw: Vec::new() }
    }

    /// The next update, waiting at most `WAIT`.
    pub async fn next(&mut self) -> DecodedUpdate {
        self.next_within(WAIT).await.expect("no update arrived in time")
    }

    /// The next update, or None if none arrives within `limit`.
    pub async fn next_within(&mut self, limit: Duration) -> Option<DecodedUpdate> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(u) = self.decoder.next_update().unwrap() {
                return Some(u);
            }
            let chunk = tokio::time::timeout_at(deadline, self.conn.read_chunk()).await.ok()?;
            let chunk = chunk?;
            self.raw.extend_from_slice(&chunk);
            self.decoder.push(&chunk);
        }
    }

    /// Reads raw body bytes until at least `n` have arrived in total.
    pub async fn raw_at_least(&mut self, n: usize) -> &[u8] {
        while self.raw.len() < n {
            let chunk = self.conn.read_chunk().await.expect("stream ended");
            self.raw.extend_from_slice(&chunk);
            self.decoder.push(&chunk);
        }
        &self.raw
    }
}
