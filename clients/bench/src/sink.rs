//! The fan-out reference (B4): `plait-bench sink` holds TCP connections and, per update,
//! does one blocking `write()` of the same bytes to every socket, from one thread, with
//! nothing else in the way. Its CPU per write is the floor for a server's CPU per delivery;
//! the benchmark feeds it the exact bytes (chunk framing included) the server sent.
//!
//! Protocol: the first accepted connection is the control connection; every later one is a
//! subscriber, greeted with a blank line (chunked-stream filler) so the benchmark knows it was
//! accepted and can bound the connections waiting in the accept queue. On the control connection the benchmark sends `N` (answered with the number of
//! subscribers accepted so far) or `W` + u32 length + bytes (written to every subscriber,
//! answered with the number of successful writes); answers are little-endian u32. The process
//! exits when the control connection closes. [`Control`] is the benchmark's side.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Binds the sink's listener (`main` prints its address, as for the other servers).
pub fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).with_context(|| format!("binding {addr}"))
}

/// Serves the control connection, then returns (the process then exits).
pub fn serve(listener: TcpListener) -> anyhow::Result<()> {
    let (mut control, _) = listener.accept().context("accepting the control connection")?;
    let subscribers: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let accepted = subscribers.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else {
                // Out of file descriptors and the like: the benchmark reports the shortfall.
                std::thread::sleep(std::time::Duration::from_millis(20));
                continue;
            };
            // As the real server does, so both send each update in one segment at once.
            let _ = stream.set_nodelay(true);
            if stream.write_all(b"\r\n").is_err() {
                continue;
            }
            match accepted.lock() {
                Ok(mut list) => list.push(stream),
                Err(_) => return,
            }
        }
    });
    loop {
        let mut op = [0u8; 1];
        if control.read_exact(&mut op).is_err() {
            return Ok(());
        }
        let answer = match op[0] {
            b'N' => lock(&subscribers)?.len(),
            b'W' => {
                let mut len = [0u8; 4];
                control.read_exact(&mut len)?;
                let mut bytes = vec![0u8; u32::from_le_bytes(len) as usize];
                control.read_exact(&mut bytes)?;
                let list = lock(&subscribers)?;
                list.iter()
                    .filter(|s| {
                        let mut socket: &TcpStream = s;
                        socket.write_all(&bytes).is_ok()
                    })
                    .count()
            }
            other => bail!("unknown sink command {other}"),
        };
        control.write_all(&(answer as u32).to_le_bytes())?;
    }
}

fn lock(list: &Mutex<Vec<TcpStream>>) -> anyhow::Result<std::sync::MutexGuard<'_, Vec<TcpStream>>> {
    list.lock().map_err(|_| anyhow!("the accept thread panicked"))
}

/// The benchmark's end of the control connection.
pub struct Control {
    stream: tokio::net::TcpStream,
}

impl Control {
    /// Connects as the control connection (before any subscriber connects).
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Control> {
        let stream = tokio::net::TcpStream::connect(addr).await.context("connecting to the sink")?;
        stream.set_nodelay(true)?;
        let mut control = Control { stream };
        // The answer proves the sink took this one as its control connection.
        control.subscribers().await?;
        Ok(control)
    }

    /// Subscribers the sink has accepted.
    pub async fn subscribers(&mut self) -> anyhow::Result<usize> {
        self.stream.write_all(b"N").await?;
        self.answer().await
    }

    /// Has the sink write `bytes` to every subscriber; returns how many writes succeeded.
    pub async fn write_all(&mut self, bytes: &[u8]) -> anyhow::Result<usize> {
        let mut msg = Vec::with_capacity(5 + bytes.len());
        msg.push(b'W');
        msg.extend_from_slice(&u32::try_from(bytes.len())?.to_le_bytes());
        msg.extend_from_slice(bytes);
        self.stream.write_all(&msg).await?;
        self.answer().await
    }

    async fn answer(&mut self) -> anyhow::Result<usize> {
        let mut n = [0u8; 4];
        self.stream.read_exact(&mut n).await.context("reading the sink's answer")?;
        Ok(u32::from_le_bytes(n) as usize)
    }
}
