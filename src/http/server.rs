//! The connection loop: accepts TCP connections and serves each with hyper (HTTP/1.1 and
//! HTTP/2, h2c included), with the limits that protect the server from slow or oversized
//! requests, and a graceful shutdown that ends subscriptions and waits briefly for
//! in-flight requests.
//!
//! Why not `axum::serve`: it exposes none of hyper's connection settings, and a server that
//! faces the network needs a header size limit and a header read timeout (slowloris).
//!
//! An HTTP/1.1 subscription takes its connection over from hyper after the 209 head (see
//! `takeover`). Every task of the connection set says what comes next ([`Next`]): the
//! connection task hands back the socket with the subscription's writer, which this loop
//! runs as a task of its own (hyper's task and buffers are gone by then); when the stream
//! ends cleanly, the writer hands the socket back and the loop serves it with hyper again,
//! so the connection stays usable as it was before. One set holds them all, so shutdown
//! waits for every one (and aborts those left after the grace period): each holds the
//! router or a subscription, and through them the store, which must close before the
//! process exits.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use axum::Router;
use futures_util::future::Either;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};
use tokio_rustls::TlsAcceptor;

use super::fanout::{write_fanned, Fanouts};
use super::stall::StallGuard;
use super::stream::{write_chunked, Source};
use super::takeover::{self, Takeover};

/// Connection-level limits (and whether connections speak TLS).
#[derive(Clone)]
pub struct ConnLimits {
    /// Largest request head (request line and headers) accepted; larger → 431.
    pub max_header_bytes: usize,
    /// A client must send its whole request head within this time, or the connection is
    /// closed (answered 408 when possible).
    pub header_timeout: Duration,
    /// How long shutdown waits for in-flight requests before closing connections.
    pub shutdown_grace: Duration,
    /// A connection whose writes make no progress for this long (its client stopped
    /// reading) is closed, releasing its subscriptions.
    pub stall_timeout: Duration,
    /// Terminate TLS on every connection (HTTPS, ALPN h2/http1.1); None = cleartext (h2c).
    pub tls: Option<TlsAcceptor>,
}

/// hyper's smallest allowed read buffer.
const MIN_BUF: usize = 8192;

/// A connection's byte stream, TCP or TLS (or either, once a taken-over subscription hands it
/// back).
trait Socket: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The plain TCP stream, which a taken-over subscription writes through the fan-out (the
    /// round's bytes as they are); any other socket back as it was (TLS encrypts each chunk
    /// per connection).
    fn into_plain(self: Box<Self>) -> Result<TcpStream, Box<dyn Socket>>;
}

impl Socket for TcpStream {
    fn into_plain(self: Box<Self>) -> Result<TcpStream, Box<dyn Socket>> {
        Ok(*self)
    }
}

impl Socket for tokio_rustls::server::TlsStream<TcpStream> {
    fn into_plain(self: Box<Self>) -> Result<TcpStream, Box<dyn Socket>> {
        Err(self)
    }
}

impl Socket for Box<dyn Socket> {
    fn into_plain(self: Box<Self>) -> Result<TcpStream, Box<dyn Socket>> {
        (*self).into_plain()
    }
}

/// A subscription's writer on a taken-over connection: the socket back when the stream
/// ended cleanly and the connection can serve another request.
type Writer = Pin<Box<dyn Future<Output = Option<Box<dyn Socket>>> + Send>>;

/// What a finished task of the connection set leaves behind.
enum Next {
    /// Nothing: the connection is closed.
    Closed,
    /// A subscription took the connection over: run its writer as a task of its own.
    Write(Writer, SocketAddr),
    /// A taken-over subscription ended cleanly: serve the connection with hyper again.
    Serve(Box<dyn Socket>, SocketAddr),
}

/// What serving a connection with hyper needs.
#[derive(Clone)]
struct Hyper {
    builder: Builder<TokioExecutor>,
    router: Router,
    stall_timeout: Duration,
    /// The documents' fan-out writers (plain TCP subscriptions that keep up).
    fanouts: Arc<Fanouts>,
}

impl Hyper {
    /// Serves one connection (TCP or TLS) with hyper, behind the stall guard, until it ends
    /// or graceful shutdown closes it; then hands over the socket if a subscription took
    /// the connection over.
    fn serve<S: Socket>(&self, watcher: Watcher, stream: S, peer: SocketAddr) -> impl Future<Output = Next> + use<S> {
        let (io, takeover, claim) = takeover::wrap(StallGuard::new(stream, self.stall_timeout));
        let (stall_timeout, fanouts) = (self.stall_timeout, self.fanouts.clone());
        let service = TowerToHyperService::new(WithPeer { router: self.router.clone(), peer, takeover });
        let conn = self.builder.clone().serve_connection_with_upgrades(TokioIo::new(io), service).into_owned();
        async move {
            let ended = watcher.watch(conn).await;
            if let Err(e) = &ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            // hyper's connection, and with it the socket wrapper, is gone by now.
            let Some((io, source, reusable)) = claim.take(ended.is_ok()) else {
                return Next::Closed;
            };
            let writer: Writer = match (source, Box::new(io.into_inner()).into_plain()) {
                (Source::Live(feed), Ok(tcp)) => Box::pin(async move {
                    let tcp = write_fanned(tcp, *feed, reusable, stall_timeout, fanouts).await?;
                    Some(Box::new(tcp) as Box<dyn Socket>)
                }),
                (source, socket) => {
                    let socket = socket.map_or_else(|other| other, |tcp| Box::new(tcp) as Box<dyn Socket>);
                    let io = StallGuard::new(socket, stall_timeout);
                    Box::pin(async move { Some(write_chunked(io, source.into_chunks(), reusable).await?.into_inner()) })
                }
            };
            Next::Write(writer, peer)
        }
    }
}

/// Acts on what a finished task left: runs a writer, or serves a handed-back socket again
/// (`serving` is None during shutdown: the socket is then closed). Logs a task that panicked.
fn adopt(tasks: &mut JoinSet<Next>, done: Result<Next, JoinError>, serving: Option<(&Hyper, &GracefulShutdown)>) {
    match done {
        Ok(Next::Closed) => {}
        Ok(Next::Write(writer, peer)) => {
            tasks.spawn(async move {
                match writer.await {
                    Some(socket) => Next::Serve(socket, peer),
                    None => Next::Closed,
                }
            });
        }
        Ok(Next::Serve(socket, peer)) => match serving {
            Some((hyper, graceful)) => {
                tasks.spawn(hyper.serve(graceful.watcher(), socket, peer));
            }
            None => {
                tasks.spawn(async move {
                    let mut socket = socket;
                    let _ = socket.shutdown().await;
                    Next::Closed
                });
            }
        },
        Err(e) if e.is_panic() => tracing::error!(error = %e, "a connection task panicked"),
        Err(_) => {}
    }
}

/// Serves `router` on `listener` until `shutdown` completes. Then it stops accepting,
/// flips `stop` (which ends every subscription stream), and waits up to
/// `limits.shutdown_grace` for open connections to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    stop: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_BUF));
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(1024);
    let hyper = Hyper { builder, router, stall_timeout: limits.stall_timeout, fanouts: Arc::default() };
    let graceful = GracefulShutdown::new();
    let mut tasks: JoinSet<Next> = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                adopt(&mut tasks, done, Some((&hyper, &graceful)));
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: log, and keep accepting.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let Some(acceptor) = limits.tls.clone() else {
            tasks.spawn(hyper.serve(watcher, stream, peer));
            continue;
        };
        let handshake_timeout = limits.header_timeout;
        let hyper = hyper.clone();
        tasks.spawn(async move {
            // A handshake that does not finish in time is a slowloris like any other.
            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => hyper.serve(watcher, tls, peer).await,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    Next::Closed
                }
                Err(_) => {
                    tracing::debug!("TLS handshake timed out");
                    Next::Closed
                }
            }
        });
    }
    drop(listener);
    drop(hyper);
    let _ = stop.send(true);
    // hyper's connections end gracefully; taken-over subscriptions end through the hub and
    // write their last chunk. Both are in `tasks`.
    let drain = async {
        let joined = async {
            while let Some(done) = tasks.join_next().await {
                adopt(&mut tasks, done, None);
            }
        };
        tokio::join!(joined, graceful.shutdown());
    };
    if tokio::time::timeout(limits.shutdown_grace, drain).await.is_err() {
        tracing::warn!(open = tasks.len(), "shutdown grace period over; closing remaining connections");
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// The router of one connection, which tells every request the client's address (as axum's
/// `ConnectInfo`, read by the access guard's failed-authentication throttle) and gives it
/// the connection's [`Takeover`] handle.
#[derive(Clone)]
pub struct WithPeer {
    router: Router,
    peer: SocketAddr,
    takeover: Takeover,
}

type RouterFuture = <Router as tower::Service<hyper::Request<hyper::body::Incoming>>>::Future;

impl tower::Service<hyper::Request<hyper::body::Incoming>> for WithPeer {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Either<RouterFuture, std::future::Ready<Result<Self::Response, Self::Error>>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        tower::Service::<hyper::Request<hyper::body::Incoming>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        // A request pipelined behind a subscription that took the connection over: hyper
        // read it before letting go. It must not run (its answer could not reach the client).
        if self.takeover.refuse_pipelined() {
            let refused = axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
            return Either::Right(std::future::ready(Ok(refused)));
        }
        req.extensions_mut().insert(axum::extract::ConnectInfo(self.peer));
        req.extensions_mut().insert(self.takeover.clone());
        Either::Left(self.router.call(req))
    }
}
