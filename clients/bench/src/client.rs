//! A small HTTP/1.1 client for the load generator: keep-alive requests and chunked
//! subscription streams over one TCP connection, with nothing between the benchmark and the
//! socket (no pooling, no retries), so what it measures is the server.

use std::net::SocketAddr;

use anyhow::{anyhow, bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A response head and, for finite responses, its body.
#[derive(Debug, Default)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (empty for a subscription head).
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    }
}

/// One keep-alive connection.
pub struct Conn {
    io: BufReader<TcpStream>,
    host: String,
    /// Bytes written to the socket so far (request heads and bodies).
    pub sent: u64,
    /// Bytes of responses read so far (heads, bodies and chunk framing).
    pub received: u64,
}

impl Conn {
    /// Connects (TCP_NODELAY on, as any interactive client would).
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn::from_stream(stream, addr))
    }

    /// A connection over a socket the caller set up (e.g. with a small receive buffer).
    pub fn from_stream(stream: TcpStream, addr: SocketAddr) -> Conn {
        Conn { io: BufReader::with_capacity(64 << 10, stream), host: addr.to_string(), sent: 0, received: 0 }
    }

    /// Writes one request.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<()> {
        let mut out = Vec::with_capacity(256 + body.len());
        out.extend_from_slice(format!("{method} {path} HTTP/1.1\r\nhost: {}\r\n", self.host).as_bytes());
        for (name, value) in headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if !body.is_empty() || matches!(method, "PUT" | "PATCH" | "POST") {
            out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        self.io.get_mut().write_all(&out).await.context("sending a request")?;
        self.sent += out.len() as u64;
        Ok(())
    }

    /// Writes a request head announcing a body of `len` bytes, which the caller then sends with
    /// [`Conn::write_body`] piece by piece (a large upload is never held whole).
    pub async fn send_head(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        len: u64,
    ) -> anyhow::Result<()> {
        let mut out = format!("{method} {path} HTTP/1.1\r\nhost: {}\r\n", self.host);
        for (name, value) in headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str(&format!("content-length: {len}\r\n\r\n"));
        self.sent += out.len() as u64;
        self.io.get_mut().write_all(out.as_bytes()).await.context("sending a request head")
    }

    /// Writes part of a request body announced by [`Conn::send_head`].
    pub async fn write_body(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.sent += bytes.len() as u64;
        self.io.get_mut().write_all(bytes).await.context("sending a request body")
    }

    /// Ends the connection abruptly, as a network failure or a closed tab does: a TCP reset
    /// (zero linger), so what the kernel still held unsent is lost and the server's read of the
    /// body fails instead of ending.
    pub fn abort(self) -> anyhow::Result<()> {
        self.io.get_ref().set_zero_linger().context("setting a zero linger")?;
        drop(self);
        Ok(())
    }

    /// Reads a body of `len` bytes (a `content-length` one) without keeping it: each piece, as
    /// the socket gives it, goes to `each` (which may check it) and is dropped.
    pub async fn read_body_with(
        &mut self,
        len: u64,
        mut each: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut left = len;
        while left > 0 {
            let buf = self.io.fill_buf().await.context("reading a body")?;
            if buf.is_empty() {
                bail!("the connection closed with {left} of {len} body bytes unread");
            }
            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            each(&buf[..n])?;
            self.io.consume(n);
            self.received += n as u64;
            left -= n as u64;
        }
        Ok(())
    }

    /// Sends a request and reads its whole response.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<Response> {
        self.send(method, path, headers, body).await?;
        self.read_response(method == "HEAD").await
    }

    /// Reads a status line and headers.
    pub async fn read_head(&mut self) -> anyhow::Result<Response> {
        let mut line = String::new();
        let n = self.io.read_line(&mut line).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        self.received += n as u64;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("bad status line {line:?}"))?;
        let mut res = Response { status, ..Response::default() };
        loop {
            line.clear();
            self.received += self.io.read_line(&mut line).await? as u64;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((n, v)) = trimmed.split_once(':') {
                res.headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        Ok(res)
    }

    /// Reads a whole finite response (`head_only` for HEAD: no body follows).
    pub async fn read_response(&mut self, head_only: bool) -> anyhow::Result<Response> {
        let mut res = self.read_head().await?;
        if head_only || res.status == 204 || res.status == 304 {
            return Ok(res);
        }
        if res.chunked() {
            while let Some(chunk) = self.read_chunk().await? {
                res.body.extend_from_slice(&chunk);
            }
        } else {
            let len: usize = res.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            res.body = vec![0; len];
            self.io.read_exact(&mut res.body).await.context("reading a body")?;
            self.received += len as u64;
        }
        Ok(res)
    }

    /// The next chunk of a chunked body; None at its end.
    pub async fn read_chunk(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        let mut line = String::new();
        let n = self.io.read_line(&mut line).await?;
        if n == 0 {
            return Ok(None);
        }
        self.received += n as u64;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| anyhow!("bad chunk size line {line:?}"))?;
        let mut data = vec![0; size + 2];
        self.io.read_exact(&mut data).await.context("reading a chunk")?;
        self.received += data.len() as u64;
        data.truncate(size);
        if size == 0 {
            return Ok(None);
        }
        Ok(Some(data))
    }
}
