//! The one-shot commands (`plait get`, `put`, ...): their arguments (clap) and what each does,
//! one file per command or small group. `run` is the entry point `main` calls; it returns the
//! process exit code (`ClientError::exit_code`), and prints errors in the chosen form.
//!
//! Every command takes the global flags (`Global`): `--json`, `--quiet` and `--token`. The
//! token used for a URL is `--token`, else `$PLAIT_TOKEN`, else the one `plait login` stored
//! for the URL's origin.

use clap::{Args, Subcommand};
use reqwest::Url;

use super::config::{config_path, UserConfig};
use super::error::{ClientError, ExitCode};
use super::output::Output;
use super::remote::Remote;

mod access;
mod folder;
mod history;
mod login;
mod text;
mod transfer;
mod watch;

/// The flags every command takes.
#[derive(Args, Debug, Clone, Default)]
pub struct Global {
    /// Print results as JSON (one object, or one object per line for streams) and errors as
    /// {"error": kind, "message": ...} on stderr.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but errors (results still go to files and the exit code).
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// The token to send (beats $PLAIT_TOKEN and the config file).
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,
}

/// The client commands, flattened into `plait`'s own subcommands beside `serve` and `sync`.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Print a resource's content (text, or a file's bytes), now or at a version.
    #[command(after_help = text::GET_EXAMPLES)]
    Get(text::GetArgs),
    /// Replace a resource's content with a file or stdin (text, or a file's bytes).
    #[command(after_help = text::PUT_EXAMPLES)]
    Put(text::PutArgs),
    /// Replace a range of a text's code points (a Braid `Content-Range` patch).
    #[command(after_help = text::PATCH_EXAMPLES)]
    Patch(text::PatchArgs),
    /// Follow a resource or a folder live: one line per update; reconnects after a drop.
    #[command(after_help = watch::EXAMPLES)]
    Watch(watch::WatchArgs),
    /// List a folder (a URL ending in /).
    #[command(after_help = folder::LS_EXAMPLES)]
    Ls(folder::LsArgs),
    /// Delete a resource (its history stays for files; a text document is erased).
    #[command(after_help = folder::RM_EXAMPLES)]
    Rm(folder::RmArgs),
    /// List a resource's versions, newest first.
    #[command(after_help = history::HISTORY_EXAMPLES)]
    History(history::HistoryArgs),
    /// Show what changed in a text between two versions, as a unified diff.
    #[command(after_help = history::DIFF_EXAMPLES)]
    Diff(history::DiffArgs),
    /// Bring back an old version of a resource as a new version.
    #[command(after_help = history::RESTORE_EXAMPLES)]
    Restore(history::RestoreArgs),
    /// Share links: one URL that opens one document, with no account.
    #[command(subcommand, after_help = access::SHARE_EXAMPLES)]
    Share(access::ShareCommand),
    /// Tokens (admin): create, list and revoke the server's access tokens.
    #[command(subcommand, after_help = access::TOKENS_EXAMPLES)]
    Tokens(access::TokensCommand),
    /// Upload a file, resumably (tus): run the same command again to continue after Ctrl-C.
    #[command(after_help = transfer::UPLOAD_EXAMPLES)]
    Upload(transfer::UploadArgs),
    /// Download a resource to a file, resumably (FILE.part until it is complete).
    #[command(after_help = transfer::DOWNLOAD_EXAMPLES)]
    Download(transfer::DownloadArgs),
    /// Check a token against a server and remember it for that server.
    #[command(after_help = login::EXAMPLES)]
    Login(login::LoginArgs),
    /// Print a shell completion script.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
}

/// `plait completions SHELL`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
    #[command(flatten)]
    pub global: Global,
}

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  plait completions bash > ~/.local/share/bash-completion/completions/plait
  plait completions zsh > \"${fpath[1]}/_plait\"
  plait completions fish > ~/.config/fish/completions/plait.fish";

/// What a command needs besides its arguments: how to print, and which token to send.
pub(crate) struct Ctx {
    pub out: Output,
    token: Option<String>,
}

impl Ctx {
    fn new(g: &Global) -> Ctx {
        Ctx { out: Output { json: g.json, quiet: g.quiet }, token: g.token.clone() }
    }

    /// `--token`, if given.
    pub fn token_flag(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The client for `url`: `--token`, else `$PLAIT_TOKEN`, else the stored token.
    pub fn remote(&self, url: &Url) -> Result<Remote, ClientError> {
        if let Some(t) = &self.token {
            return Remote::new(Some(t.clone()));
        }
        let config = UserConfig::load(&config_path()?)?;
        Remote::new(config.token_for(url))
    }
}

impl ClientCommand {
    fn global(&self) -> &Global {
        match self {
            ClientCommand::Get(a) => &a.global,
            ClientCommand::Put(a) => &a.global,
            ClientCommand::Patch(a) => &a.global,
            ClientCommand::Watch(a) => &a.global,
            ClientCommand::Ls(a) => &a.global,
            ClientCommand::Rm(a) => &a.global,
            ClientCommand::History(a) => &a.global,
            ClientCommand::Diff(a) => &a.global,
            ClientCommand::Restore(a) => &a.global,
            ClientCommand::Share(c) => c.global(),
            ClientCommand::Tokens(c) => c.global(),
            ClientCommand::Upload(a) => &a.global,
            ClientCommand::Download(a) => &a.global,
            ClientCommand::Login(a) => &a.global,
            ClientCommand::Completions(a) => &a.global,
        }
    }
}

/// Runs one command and returns the process exit code; errors are printed to stderr.
/// `top` builds the whole `plait` command line (for `completions`, which describes all of it).
pub async fn run(cmd: ClientCommand, top: fn() -> clap::Command) -> i32 {
    let ctx = Ctx::new(cmd.global());
    match execute(cmd, &ctx, top).await {
        Ok(()) => ExitCode::Ok as i32,
        Err(e) => {
            ctx.out.error(&e);
            e.exit_code() as i32
        }
    }
}

async fn execute(cmd: ClientCommand, ctx: &Ctx, top: fn() -> clap::Command) -> Result<(), ClientError> {
    match cmd {
        ClientCommand::Get(a) => text::get(ctx, a).await,
        ClientCommand::Put(a) => text::put(ctx, a).await,
        ClientCommand::Patch(a) => text::patch(ctx, a).await,
        ClientCommand::Watch(a) => watch::watch(ctx, a).await,
        ClientCommand::Ls(a) => folder::ls(ctx, a).await,
        ClientCommand::Rm(a) => folder::rm(ctx, a).await,
        ClientCommand::History(a) => history::history(ctx, a).await,
        ClientCommand::Diff(a) => history::diff(ctx, a).await,
        ClientCommand::Restore(a) => history::restore(ctx, a).await,
        ClientCommand::Share(c) => access::share(ctx, c).await,
        ClientCommand::Tokens(c) => access::tokens(ctx, c).await,
        ClientCommand::Upload(a) => transfer::upload(ctx, a).await,
        ClientCommand::Download(a) => transfer::download(ctx, a).await,
        ClientCommand::Login(a) => login::login(ctx, a).await,
        ClientCommand::Completions(a) => {
            let mut top = top();
            let name = top.get_name().to_owned();
            let mut buf = Vec::new();
            clap_complete::generate(a.shell, &mut top, name, &mut buf);
            super::output::write_stdout(&buf)
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

/// A version given on the command line as a header value: `a-4` (one bare id), `a-4,b-2`
/// (bare ids), or already quoted (`"a-4", "b-2"`). Returns the `Version`/`Parents` value.
pub fn version_header(s: &str) -> Result<String, ClientError> {
    let s = s.trim();
    let ids: Vec<String> = if s.starts_with('"') {
        serde_json::from_str::<Vec<String>>(&format!("[{s}]"))
            .map_err(|e| ClientError::Usage(format!("{s:?} is not a version: {e}")))?
    } else {
        s.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect()
    };
    Ok(crate::protocol::VersionSet::new(ids).to_header())
}

/// The ids of a `Version`-like response header, as a JSON list (empty when absent).
pub fn version_ids(res: &reqwest::Response, name: &str) -> serde_json::Value {
    let ids = res
        .headers()
        .get(name)
        .and_then(|v| crate::protocol::VersionSet::parse_header(v.as_bytes()).ok())
        .map(|v| v.ids().to_vec())
        .unwrap_or_default();
    serde_json::json!(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_the_command_line() {
        assert_eq!(version_header("alice-4").unwrap(), "\"alice-4\"");
        assert_eq!(version_header("b-2, a-4").unwrap(), "\"a-4\", \"b-2\"");
        assert_eq!(version_header("\"a-4\", \"b-2\"").unwrap(), "\"a-4\", \"b-2\"");
        assert_eq!(version_header("").unwrap(), "");
        assert!(matches!(version_header("\"a"), Err(ClientError::Usage(_))));
    }

    #[test]
    fn only_http_urls() {
        assert!(parse_url("http://127.0.0.1:8080/a").is_ok());
        assert!(matches!(parse_url("ftp://x/a"), Err(ClientError::Usage(_))));
        assert!(matches!(parse_url("notes/a"), Err(ClientError::Usage(_))));
    }
}
