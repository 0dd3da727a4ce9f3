//! A TCP proxy on 127.0.0.1:0 that drops the network under a client on cue: once a set number of
//! request bytes (client to server, all connections together) have gone through since the
//! start or the last cut, it forwards exactly up to that byte and then cuts every open
//! connection abruptly, in both directions (a zero-linger close: the client and the server
//! both get a reset, no FIN, nothing more delivered). It does that a set number of times, then
//! lets every later connection through. The upload tests put it between a real tus client and
//! the server (Plait or the reference `@tus/server`) to cut an upload at about 50%, and read
//! back per connection how many bytes it forwarded, so they can compute the bytes re-sent
//! after the resume. The upstream can be moved (`set_upstream`) so that a server restarted on
//! a new port after `kill -9` is reached at the same URL.
//!
//! Nothing here sleeps: the tests wait on the proxy's events (`wait_cuts`, `wait_forwarded`)
//! with deadlines.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// When the proxy cuts: after `after_bytes` request bytes, `times` times over (the count starts
/// again after each cut). `times: 0` is a plain proxy.
/// The proxy's send buffer towards the server, and its reads from the client.
const SEND_BUFFER: u32 = 64 << 10;

#[derive(Clone, Copy, Debug)]
pub struct CutPlan {
    pub after_bytes: u64,
    pub times: u32,
}

/// What one connection carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnStats {
    /// Request bytes taken from the client and passed on (a cut may interrupt the last write;
    /// the connection that reaches the planned byte passes exactly up to it).
    pub up: u64,
    /// Response bytes taken from the server and passed on.
    pub down: u64,
    /// Whether the proxy cut it.
    pub cut: bool,
}

#[derive(Default)]
struct Conn {
    up: AtomicU64,
    down: AtomicU64,
    cut: AtomicBool,
}

struct Budget {
    /// Request bytes left before the next cut; None once every cut is done.
    left: Option<u64>,
    cuts_left: u32,
    after: u64,
}

impl Budget {
    /// Takes up to `n` bytes; returns how many may pass and whether the link is cut right after.
    fn take(&mut self, n: u64) -> (u64, bool) {
        let Some(left) = self.left else { return (n, false) };
        if n < left {
            self.left = Some(left - n);
            return (n, false);
        }
        self.cuts_left -= 1;
        self.left = (self.cuts_left > 0).then_some(self.after);
        (left, true)
    }
}

struct Shared {
    upstream: Mutex<SocketAddr>,
    budget: Mutex<Budget>,
    conns: Mutex<Vec<Arc<Conn>>>,
    /// The number of cuts so far: every connection watches it and dies when it grows.
    cuts: watch::Sender<u32>,
    /// Request bytes taken from the clients so far, all connections together.
    forwarded: watch::Sender<u64>,
}

/// The proxy; it stops (and drops every connection) when dropped.
pub struct CutProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl CutProxy {
    /// Listens on 127.0.0.1:0 in front of `upstream`.
    pub async fn start(upstream: SocketAddr, plan: CutPlan) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            budget: Mutex::new(Budget {
                left: (plan.times > 0).then_some(plan.after_bytes),
                cuts_left: plan.times,
                after: plan.after_bytes,
            }),
            conns: Mutex::new(Vec::new()),
            cuts: watch::Sender::new(0),
            forwarded: watch::Sender::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        CutProxy { addr, shared, accept }
    }

    /// `http://<proxy>`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Points later connections at another server (a restarted one).
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.shared.upstream.lock().unwrap() = upstream;
    }

    /// Every connection so far, in the order they were accepted.
    pub fn connections(&self) -> Vec<ConnStats> {
        let conns = self.shared.conns.lock().unwrap();
        conns
            .iter()
            .map(|c| ConnStats {
                up: c.up.load(Ordering::SeqCst),
                down: c.down.load(Ordering::SeqCst),
                cut: c.cut.load(Ordering::SeqCst),
            })
            .collect()
    }

    /// Request bytes taken from the clients, all connections together (what they sent).
    pub fn forwarded_up(&self) -> u64 {
        *self.shared.forwarded.borrow()
    }

    /// How many times the proxy has cut.
    pub fn cuts(&self) -> u32 {
        *self.shared.cuts.borrow()
    }

    /// Waits (at most `limit`) until the proxy has cut `n` times; false on the limit.
    pub async fn wait_cuts(&self, n: u32, limit: Duration) -> bool {
        let mut rx = self.shared.cuts.subscribe();
        let reached = matches!(tokio::time::timeout(limit, rx.wait_for(|c| *c >= n)).await, Ok(Ok(_)));
        reached
    }

    /// Waits (at most `limit`) until `bytes` request bytes have been forwarded; false on the limit.
    pub async fn wait_forwarded(&self, bytes: u64, limit: Duration) -> bool {
        let mut rx = self.shared.forwarded.subscribe();
        let reached = matches!(tokio::time::timeout(limit, rx.wait_for(|f| *f >= bytes)).await, Ok(Ok(_)));
        reached
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Wakes every connection task, which then closes its sockets.
        self.shared.cuts.send_modify(|c| *c = u32::MAX);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else { continue };
        // A connection accepted now is cut only by a later cut.
        let cuts = shared.cuts.subscribe();
        if *cuts.borrow() == u32::MAX {
            return;
        }
        let conn = Arc::new(Conn::default());
        shared.conns.lock().unwrap().push(conn.clone());
        tokio::spawn(serve(client, shared.clone(), conn, cuts));
    }
}

/// Connects to the server with a small send buffer, so the bytes counted as forwarded are
/// (nearly) the bytes the server's socket received, not bytes still queued in the proxy when a
/// cut discards them.
async fn connect(upstream: SocketAddr) -> io::Result<TcpStream> {
    let socket = if upstream.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_send_buffer_size(SEND_BUFFER)?;
    socket.connect(upstream).await
}

/// How a pump ended.
enum End {
    /// Its source said EOF; it passed the half-close on.
    Eof,
    /// A read or write failed (a peer reset or went away).
    Failed,
    /// The proxy cut the link.
    Cut,
}

async fn serve(client: TcpStream, shared: Arc<Shared>, conn: Arc<Conn>, cuts: watch::Receiver<u32>) {
    let upstream = *shared.upstream.lock().unwrap();
    let Ok(server) = connect(upstream).await else {
        // The server is down (killed, not restarted yet): the client sees its connection reset.
        let _ = client.set_zero_linger();
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_rd, client_wr) = client.into_split();
    let (server_rd, server_wr) = server.into_split();
    let mut up = tokio::spawn(pump(client_rd, server_wr, Some(shared.clone()), conn.clone(), cuts.clone()));
    let mut down = tokio::spawn(pump(server_rd, client_wr, None, conn.clone(), cuts));
    // Waits for both pumps, unless one fails: then the link is torn down.
    let (first, up_done) = tokio::select! {
        r = &mut up => (r, true),
        r = &mut down => (r, false),
    };
    let Ok((a_rd, a_wr, a_end)) = first else { return };
    let other = if up_done { &mut down } else { &mut up };
    if matches!(a_end, End::Failed) {
        other.abort();
        return;
    }
    let Ok((b_rd, b_wr, b_end)) = other.await else { return };
    if matches!(a_end, End::Cut) || matches!(b_end, End::Cut) {
        conn.cut.store(true, Ordering::SeqCst);
        // Reassembles each socket to close it with a reset (zero linger), not a FIN.
        let (client_rd, client_wr, server_rd, server_wr) =
            if up_done { (a_rd, b_wr, b_rd, a_wr) } else { (b_rd, a_wr, a_rd, b_wr) };
        for stream in [client_rd.reunite(client_wr), server_rd.reunite(server_wr)].into_iter().flatten() {
            let _ = stream.set_zero_linger();
        }
    }
}

/// Copies `from` to `to` until EOF, an error or a cut; returns the halves so a cut can reset
/// the sockets. `shared` is set on the request direction: its bytes count towards the cut.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    shared: Option<Arc<Shared>>,
    conn: Arc<Conn>,
    mut cuts: watch::Receiver<u32>,
) -> (OwnedReadHalf, OwnedWriteHalf, End) {
    let mut buf = vec![0u8; 64 << 10];
    let end = loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) => {
                    let _ = to.shutdown().await;
                    break End::Eof;
                }
                Ok(n) => n,
                Err(_) => break End::Failed,
            },
            _ = cuts.changed() => break End::Cut,
        };
        let (pass, cut_now) = match &shared {
            Some(s) => s.budget.lock().unwrap().take(n as u64),
            None => (n as u64, false),
        };
        // Counted when taken from the sender: what a client sent, even if a cut of another
        // connection interrupts the write below.
        match &shared {
            Some(s) => {
                conn.up.fetch_add(pass, Ordering::SeqCst);
                s.forwarded.send_modify(|f| *f += pass);
            }
            None => {
                conn.down.fetch_add(pass, Ordering::SeqCst);
            }
        }
        let wrote: io::Result<()> = tokio::select! {
            r = to.write_all(&buf[..pass as usize]) => r,
            _ = cuts.changed() => break End::Cut,
        };
        if wrote.is_err() {
            break End::Failed;
        }
        if cut_now {
            if let Some(s) = &shared {
                s.cuts.send_modify(|c| *c += 1);
            }
            break End::Cut;
        }
    };
    (from, to, end)
}
