//! The connection loop: accepts TCP connections and serves each with hyper (HTTP/1.1 and
//! HTTP/2, h2c included), with the limits that protect the server from slow or oversized
//! requests, and a graceful shutdown that ends subscriptions and waits briefly for
//! in-flight requests.
//!
//! Why not `axum::serve`: it exposes none of hyper's connection settings, and a server that
//! faces the network needs a header size limit and a header read timeout (slowloris).

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::stall::StallGuard;
use tokio_rustls::TlsAcceptor;

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
    let graceful = GracefulShutdown::new();
    // Every connection task, so the ones still open after the grace period can be ended
    // for real: each holds the router, and through it the store, which must close before
    // the process exits.
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
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
        let service = TowerToHyperService::new(WithPeer { router: router.clone(), peer });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let stall_timeout = limits.stall_timeout;
        let tls = limits.tls.clone();
        let handshake_timeout = limits.header_timeout;
        connections.spawn(async move {
            let Some(acceptor) = tls else {
                return serve_one(builder, watcher, stream, stall_timeout, service).await;
            };
            // A handshake that does not finish in time is a slowloris like any other.
            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls_stream)) => serve_one(builder, watcher, tls_stream, stall_timeout, service).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    drop(router);
    let _ = stop.send(true);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(open = connections.len(), "shutdown grace period over; closing remaining connections");
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Serves one connection (TCP or TLS) with hyper, behind the stall guard, until it ends or
/// graceful shutdown closes it.
async fn serve_one<S>(
    builder: Builder<TokioExecutor>,
    watcher: Watcher,
    stream: S,
    stall_timeout: Duration,
    service: TowerToHyperService<WithPeer>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(StallGuard::new(stream, stall_timeout));
    if let Err(e) = watcher.watch(builder.serve_connection_with_upgrades(io, service).into_owned()).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// The router of one connection, which tells every request the client's address (as axum's
/// `ConnectInfo`, read by the access guard's failed-authentication throttle).
#[derive(Clone)]
pub struct WithPeer {
    router: Router,
    peer: std::net::SocketAddr,
}

impl tower::Service<hyper::Request<hyper::body::Incoming>> for WithPeer {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = <Router as tower::Service<hyper::Request<hyper::body::Incoming>>>::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        tower::Service::<hyper::Request<hyper::body::Incoming>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        req.extensions_mut().insert(axum::extract::ConnectInfo(self.peer));
        self.router.call(req)
    }
}
