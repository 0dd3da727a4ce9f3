//! The `plait-bench` binary: runs the benchmark scenarios and prints the results table, or
//! serves one of the two reference servers the scenarios start as child processes of this
//! same executable (`noop`, `sink`). They live here rather than in the `plait` binary so the
//! server carries nothing of the load generator; `noop` is still the server library's own
//! HTTP stack (`plait::http::serve_noop`), which is what it measures.

use anyhow::Context;
use clap::{Parser, Subcommand};
use plait_bench::BenchArgs;
use tracing_subscriber::EnvFilter;

/// The load generator behind docs/BENCHMARKS.md: starts `plait serve` (the `plait` binary
/// next to this one, or `--plait`) and the references, and prints a Markdown table.
#[derive(Parser, Debug)]
#[command(name = "plait-bench", version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    /// A reference server instead of the benchmark (the benchmark starts them itself).
    #[command(subcommand)]
    reference: Option<Reference>,
    #[command(flatten)]
    bench: BenchArgs,
}

/// The reference servers.
#[derive(Subcommand, Debug)]
enum Reference {
    /// The no-op reference: the server's HTTP stack with a handler that does nothing.
    Noop(ListenArgs),
    /// The fan-out reference (B4): holds TCP connections and writes the same bytes to each.
    Sink(ListenArgs),
}

/// Where a reference server listens.
#[derive(clap::Args, Debug)]
struct ListenArgs {
    /// Address to listen on (the chosen one is printed, as `plait serve` does).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.reference {
        None => {
            tracing_subscriber::fmt()
                .with_env_filter(EnvFilter::try_new("info").context("log filter")?)
                .with_writer(std::io::stderr)
                .init();
            let rows = plait_bench::run(&cli.bench).await?;
            // The table goes to stdout, ready for docs/BENCHMARKS.md; progress went to stderr.
            print!("{}", plait_bench::report::table(&rows));
            Ok(())
        }
        Some(Reference::Noop(args)) => {
            let listener = tokio::net::TcpListener::bind(args.listen).await.context("binding")?;
            println!("plait-noop listening on http://{}", listener.local_addr()?);
            // The benchmark ends it with SIGKILL; Ctrl-C for a run by hand.
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            plait::http::serve_noop(listener, shutdown).await.context("serving")
        }
        Some(Reference::Sink(args)) => {
            let listener = plait_bench::sink::bind(args.listen)?;
            println!("plait-sink listening on http://{}", listener.local_addr()?);
            // Plain blocking threads: the reference is a bare write() loop, no runtime.
            tokio::task::spawn_blocking(move || plait_bench::sink::serve(listener)).await?
        }
    }
}
