//! The `plait` binary: parse the configuration, set up logging, serve.

use anyhow::Context;
use clap::Parser;
use plait::config::{Cli, Command};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(cfg) => {
            tracing_subscriber::fmt()
                .with_env_filter(EnvFilter::try_new(&cfg.log).context("invalid --log filter")?)
                .with_writer(std::io::stderr)
                .init();
            let app = plait::app::App::build(&cfg)?;
            let listener =
                tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("binding {}", cfg.listen))?;
            let addr = listener.local_addr()?;
            // Printed once the store is open and the port bound: tests and scripts read this
            // line to learn the port when --listen ends in :0.
            println!(
                "plait listening on {}://{addr} (store: {}, auth: {})",
                plait::app::scheme(&cfg),
                plait::app::store_description(&cfg),
                plait::app::auth_description(&cfg)
            );
            app.serve(listener, shutdown_signal()).await
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
