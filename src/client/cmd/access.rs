//! `plait share create|ls|revoke` (share links, `/.plait/shares`) and `plait tokens
//! create|ls|revoke` (access tokens, `/.plait/tokens`, admin only): docs/ACCESS.md.

use clap::{Args, Subcommand, ValueEnum};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, Url};
use serde_json::{json, Value};

use super::{parse_url, version_header, Ctx, Global};
use crate::client::error::ClientError;
use crate::client::output::{field, show_time_ms, table};
use crate::client::remote::root_endpoint_url;
use crate::protocol::VersionSet;

/// `plait share ...`.
#[derive(Subcommand, Debug)]
pub enum ShareCommand {
    /// Create a link to one document; prints its URL (shown once).
    #[command(after_help = SHARE_EXAMPLES)]
    Create(ShareCreate),
    /// List the links you created (an admin sees all); a document URL lists that document's.
    #[command(after_help = SHARE_EXAMPLES)]
    Ls(ServerArg),
    /// Revoke a link by its id (its live subscriptions end within a second).
    #[command(after_help = SHARE_EXAMPLES)]
    Revoke(RevokeArgs),
}

/// What a share link allows.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ShareRights {
    Read,
    Subscribe,
    Write,
}

/// What a token allows.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum TokenRights {
    Read,
    Write,
    Admin,
}

#[derive(Args, Debug)]
pub struct ShareCreate {
    /// The document's URL.
    pub url: String,
    /// read, subscribe (read and watch) or write.
    #[arg(long, value_enum, default_value = "subscribe")]
    pub rights: ShareRights,
    /// Pin the link to this version (read links only).
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    /// The link stops working after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub expires_in: Option<u64>,
    /// A label (default: the document's path).
    #[arg(long)]
    pub label: Option<String>,
    #[command(flatten)]
    pub global: Global,
}

/// A server (any URL on it) or a document.
#[derive(Args, Debug)]
pub struct ServerArg {
    /// The server's URL (http://host:port/), or a document's to list only its links.
    pub url: String,
    #[command(flatten)]
    pub global: Global,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The server's URL (any URL on it).
    pub url: String,
    /// The id to revoke (from `ls`).
    pub id: String,
    #[command(flatten)]
    pub global: Global,
}

pub const SHARE_EXAMPLES: &str = "\
Examples:
  plait share create http://127.0.0.1:8080/notes/plan                    # read and watch
  plait share create http://127.0.0.1:8080/notes/plan --rights read --version alice-4
  plait share create http://127.0.0.1:8080/notes/plan --rights write --expires-in 3600
  plait share ls http://127.0.0.1:8080/
  plait share revoke http://127.0.0.1:8080/ 9d0c4e1f2a3b4c5d";

/// `plait tokens ...`.
#[derive(Subcommand, Debug)]
pub enum TokensCommand {
    /// Create a token (needs the admin token); prints the secret once.
    #[command(after_help = TOKENS_EXAMPLES)]
    Create(TokenCreate),
    /// List tokens (ids, labels, rights; never secrets).
    #[command(after_help = TOKENS_EXAMPLES)]
    Ls(ServerArg),
    /// Revoke a token by its id (its live subscriptions end within a second).
    #[command(after_help = TOKENS_EXAMPLES)]
    Revoke(RevokeArgs),
}

#[derive(Args, Debug)]
pub struct TokenCreate {
    /// The server's URL (any URL on it).
    pub url: String,
    /// Who or what it is for ("alice laptop"); shown in history.
    #[arg(long)]
    pub label: String,
    /// read, write or admin.
    #[arg(long, value_enum)]
    pub rights: TokenRights,
    /// A path prefix it applies to (repeat for several; default /).
    #[arg(long = "prefix", value_name = "PATH")]
    pub prefixes: Vec<String>,
    /// The token stops working after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub expires_in: Option<u64>,
    #[command(flatten)]
    pub global: Global,
}

pub const TOKENS_EXAMPLES: &str = "\
Examples:
  export PLAIT_TOKEN=$PLAIT_ADMIN_TOKEN
  plait tokens create http://127.0.0.1:8080/ --label 'alice laptop' --rights write --prefix /notes/
  plait tokens ls http://127.0.0.1:8080/
  plait tokens revoke http://127.0.0.1:8080/ 3f2a9c0d4b1e7a65";

impl ShareCommand {
    pub fn global(&self) -> &Global {
        match self {
            ShareCommand::Create(a) => &a.global,
            ShareCommand::Ls(a) => &a.global,
            ShareCommand::Revoke(a) => &a.global,
        }
    }
}

impl TokensCommand {
    pub fn global(&self) -> &Global {
        match self {
            TokensCommand::Create(a) => &a.global,
            TokensCommand::Ls(a) => &a.global,
            TokensCommand::Revoke(a) => &a.global,
        }
    }
}

fn lower<T: ValueEnum>(v: &T) -> String {
    v.to_possible_value().map(|p| p.get_name().to_owned()).unwrap_or_default()
}

pub async fn share(ctx: &Ctx, cmd: ShareCommand) -> Result<(), ClientError> {
    match cmd {
        ShareCommand::Create(a) => {
            let url = parse_url(&a.url)?;
            let mut body = json!({"path": url.path(), "rights": lower(&a.rights)});
            if let Some(v) = &a.version {
                body["version"] = json!(VersionSet::parse_header(version_header(v)?.as_bytes())
                    .map_err(|e| ClientError::Usage(e.to_string()))?
                    .ids());
            }
            if let Some(s) = a.expires_in {
                body["expires_in_secs"] = json!(s);
            }
            if let Some(l) = &a.label {
                body["label"] = json!(l);
            }
            let made = post_json(ctx, &url, "shares", &body).await?;
            ctx.out.result(&made, || format!("{}\n", field(&made, "url")))
        }
        ShareCommand::Ls(a) => {
            let url = parse_url(&a.url)?;
            let mut list_url = root_endpoint_url(&url, "shares");
            if url.path() != "/" {
                list_url.query_pairs_mut().append_pair("path", url.path());
            }
            let remote = ctx.remote(&url)?;
            let list: Value = remote.send(remote.request(Method::GET, list_url)).await?.json().await?;
            ctx.out.result(&list, || {
                let rows = rows_of(&list, "shares", |s| {
                    vec![field(s, "id"), field(s, "rights"), field(s, "path"), expiry(s), field(s, "label")]
                });
                table(&["ID", "RIGHTS", "PATH", "EXPIRES (UTC)", "LABEL"], &rows)
            })
        }
        ShareCommand::Revoke(a) => revoke(ctx, &a, "shares").await,
    }
}

pub async fn tokens(ctx: &Ctx, cmd: TokensCommand) -> Result<(), ClientError> {
    match cmd {
        TokensCommand::Create(a) => {
            let url = parse_url(&a.url)?;
            let prefixes = if a.prefixes.is_empty() { vec!["/".to_owned()] } else { a.prefixes.clone() };
            let mut body = json!({"label": a.label, "rights": lower(&a.rights), "prefixes": prefixes});
            if let Some(s) = a.expires_in {
                body["expires_in_secs"] = json!(s);
            }
            let made = post_json(ctx, &url, "tokens", &body).await?;
            ctx.out.result(&made, || format!("{}\n", field(&made, "token")))
        }
        TokensCommand::Ls(a) => {
            let url = parse_url(&a.url)?;
            let remote = ctx.remote(&url)?;
            let list: Value =
                remote.send(remote.request(Method::GET, root_endpoint_url(&url, "tokens"))).await?.json().await?;
            ctx.out.result(&list, || {
                let rows = rows_of(&list, "tokens", |t| {
                    let prefixes = t
                        .get("prefixes")
                        .and_then(Value::as_array)
                        .map(|p| p.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))
                        .unwrap_or_default();
                    let mut exp = expiry(t);
                    if t.get("expired").and_then(Value::as_bool) == Some(true) {
                        exp.push_str(" (expired)");
                    }
                    vec![field(t, "id"), field(t, "rights"), prefixes, exp, field(t, "label")]
                });
                table(&["ID", "RIGHTS", "PREFIXES", "EXPIRES (UTC)", "LABEL"], &rows)
            })
        }
        TokensCommand::Revoke(a) => revoke(ctx, &a, "tokens").await,
    }
}

fn rows_of(list: &Value, key: &str, row: impl Fn(&Value) -> Vec<String>) -> Vec<Vec<String>> {
    list.get(key).and_then(Value::as_array).map(|l| l.iter().map(row).collect()).unwrap_or_default()
}

fn expiry(v: &Value) -> String {
    match v.get("expires_ms").and_then(Value::as_u64) {
        Some(ms) => show_time_ms(Some(ms)),
        None => "never".into(),
    }
}

async fn post_json(ctx: &Ctx, url: &Url, endpoint: &str, body: &Value) -> Result<Value, ClientError> {
    let remote = ctx.remote(url)?;
    let req = remote
        .request(Method::POST, root_endpoint_url(url, endpoint))
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_string());
    Ok(remote.send(req).await?.json().await?)
}

async fn revoke(ctx: &Ctx, a: &RevokeArgs, endpoint: &str) -> Result<(), ClientError> {
    let url = parse_url(&a.url)?;
    if a.id.is_empty() || !a.id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ClientError::Usage(format!("{:?} is not an id (from `plait {endpoint} ls`)", a.id)));
    }
    let remote = ctx.remote(&url)?;
    let target = root_endpoint_url(&url, &format!("{endpoint}/{}", a.id));
    remote.send(remote.request(Method::DELETE, target)).await?;
    ctx.out.result(&json!({"revoked": a.id, "kind": endpoint.trim_end_matches('s')}), || format!("revoked {}\n", a.id))
}
