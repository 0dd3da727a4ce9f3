//! The one-shot commands (`plait get`, `put`, ...): their arguments (clap) and what each does.
//! `run` is the entry point `main` calls; it returns the process exit code.

use clap::Subcommand;
use reqwest::{Method, Url};

use super::config::{config_path, UserConfig};
use super::error::{ClientError, ExitCode};
use super::remote::Remote;

/// The client commands, flattened into `plait`'s own subcommands beside `serve` and `sync`.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Print a resource's current content (text or file bytes) to stdout.
    Get {
        /// The resource's URL, e.g. http://127.0.0.1:8080/notes/a
        url: String,
    },
}

/// Runs one command and returns the process exit code; errors are printed to stderr.
pub async fn run(cmd: ClientCommand) -> i32 {
    match execute(cmd).await {
        Ok(()) => ExitCode::Ok as i32,
        Err(e) => {
            eprintln!("plait: {e}");
            e.exit_code() as i32
        }
    }
}

async fn execute(cmd: ClientCommand) -> Result<(), ClientError> {
    match cmd {
        ClientCommand::Get { url } => {
            let url = parse_url(&url)?;
            let config = UserConfig::load(&config_path()?)?;
            let remote = Remote::new(config.token_for(&url))?;
            let res = remote.send(remote.request(Method::GET, url)).await?;
            let body = res.bytes().await?;
            use std::io::Write;
            std::io::stdout().write_all(&body)?;
            Ok(())
        }
    }
}

/// Parses a resource URL given on the command line (http or https only).
pub fn parse_url(s: &str) -> Result<Url, ClientError> {
    let url = Url::parse(s).map_err(|e| ClientError::Usage(format!("{s:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ClientError::Usage(format!("{s:?}: only http:// and https:// URLs are supported")));
    }
    Ok(url)
}
