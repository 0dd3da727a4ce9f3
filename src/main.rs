//! The `plait` binary: parse the command line, then serve, sync, or run one client command.

use anyhow::Context;
use clap::{CommandFactory, Parser};
use plait::config::{Cli, Command, LogFormat};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(cfg) => {
            init_logging(&cfg.log, cfg.log_format)?;
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
        Command::Sync(args) => {
            init_logging(args.log_filter(), LogFormat::Text)?;
            std::process::exit(plait::client::sync::run(args).await)
        }
        Command::Client(cmd) => std::process::exit(plait::client::cmd::run(cmd, Cli::command).await),
    }
}

/// Logs to stderr, filtered by `--log`, as text or one JSON object per line. JSON lines carry
/// the fields of every span the event is in (`spans`, outermost first; a request's id, method
/// and path), not the current span again beside them. Text is coloured only on a terminal, so
/// a log file or collector gets `request_id=...`, not escape codes.
fn init_logging(filter: &str, format: LogFormat) -> anyhow::Result<()> {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(filter).context("invalid --log filter")?)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().with_current_span(false).with_span_list(true).init(),
    }
    Ok(())
}

async fn shutdown_signal() {
    plait::client::sync::shutdown_signal().await;
    tracing::info!("shutting down");
}
