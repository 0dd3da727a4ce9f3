//! `plait login URL`: checks a token against the server and stores it for the URL's origin in
//! the per-user config file (`client::config`, mode 0600), so later commands send it without
//! `--token`. The token comes from `--token`, else stdin (one line; a prompt on a terminal), so
//! it never has to appear in the shell's history.

use std::io::{BufRead, IsTerminal};

use clap::Args;
use reqwest::Method;
use serde_json::json;

use super::{parse_url, Ctx, Global};
use crate::client::config::{config_path, origin_of, ServerEntry, UserConfig};
use crate::client::error::ClientError;
use crate::client::remote::status_error;
use crate::client::Remote;

/// `plait login`.
#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The server's URL, or a URL on it the token may read (checked with a HEAD).
    pub url: String,
    #[command(flatten)]
    pub global: Global,
}

pub const EXAMPLES: &str = "\
Examples:
  plait login http://127.0.0.1:8080/notes/              # asks for the token
  echo \"$TOKEN\" | plait login http://127.0.0.1:8080/notes/
  plait login http://127.0.0.1:8080/ --token plait_3f2a..._...";

pub async fn login(ctx: &Ctx, a: LoginArgs) -> Result<(), ClientError> {
    let url = parse_url(&a.url)?;
    let token = match ctx.token_flag() {
        Some(t) => t.to_owned(),
        None => read_token(&origin_of(&url))?,
    };
    if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ClientError::Usage("the token is empty or has spaces in it".into()));
    }
    // A HEAD with the token: 401 means the server does not know it (or it expired); anything
    // else means it was accepted (403 or 404 only say it reaches nothing at this URL).
    let remote = Remote::new(Some(token.clone()))?;
    let res = remote.send_raw(remote.request(Method::HEAD, url.clone())).await?;
    let status = res.status().as_u16();
    if status == 401 || status == 429 || status >= 500 {
        return Err(status_error(res).await);
    }
    let path = config_path()?;
    let mut config = UserConfig::load(&path)?;
    let origin = origin_of(&url);
    config.servers.insert(origin.clone(), ServerEntry { token });
    config.save(&path)?;
    if status == 403 {
        ctx.out.note(&format!("plait: note: this token may not read {}", url.path()));
    }
    ctx.out.result(&json!({"server": origin, "config": path.display().to_string(), "status": status}), || {
        format!("logged in to {origin} (token saved in {})\n", path.display())
    })
}

/// One line from stdin; on a terminal, a prompt with echo off (rpassword), so the token never
/// shows on screen or in a terminal recording.
fn read_token(origin: &str) -> Result<String, ClientError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let token = rpassword::prompt_password(format!("Token for {origin}: "))
            .map_err(|e| ClientError::Local(format!("reading the token: {e}")))?;
        return Ok(token.trim().to_owned());
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).map_err(|e| ClientError::Local(format!("stdin: {e}")))?;
    Ok(line.trim().to_owned())
}
