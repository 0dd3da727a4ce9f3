//! The client's errors and the process exit codes they map to, in one place, so every
//! command and the daemon report failures the same way (and scripts can branch on them).

use std::fmt;

/// Conventional exit codes. `2` is clap's own code for a bad command line, so usage errors
/// found after parsing use it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything worked.
    Ok = 0,
    /// Anything not listed below (a server's 4xx without a more precise code, local I/O).
    Failure = 1,
    /// A bad command line or argument (clap uses 2 as well).
    Usage = 2,
    /// The resource (or version) does not exist: 404, 410.
    NotFound = 3,
    /// No credentials, or they do not allow it: 401, 403.
    Denied = 4,
    /// The write was refused because of the resource's state: 409, 412, 309, 460.
    Conflict = 5,
    /// The server could not be reached, or the connection broke and retries ran out.
    Network = 6,
    /// The server failed (5xx) or answered something this client cannot read.
    Server = 7,
    /// Interrupted by Ctrl-C (128 + SIGINT), as shells report it.
    Interrupted = 130,
}

/// Any failure of a client command.
#[derive(Debug)]
pub enum ClientError {
    /// The command line or an argument is wrong (a URL that does not parse, a missing file).
    Usage(String),
    /// The server answered with an error status; `code` is Plait's stable error code when the
    /// body carried one (`{"error": code, "message": ...}` or the `Plait-Error` header).
    Status { status: u16, code: Option<String>, message: String },
    /// The server could not be reached or the connection failed.
    Network(String),
    /// The server's answer could not be understood.
    Protocol(String),
    /// A local file or the local database failed.
    Local(String),
    /// Ctrl-C.
    Interrupted,
}

impl ClientError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            ClientError::Usage(_) => ExitCode::Usage,
            ClientError::Status { status, .. } => match status {
                404 | 410 => ExitCode::NotFound,
                401 | 403 => ExitCode::Denied,
                309 | 409 | 412 | 460 => ExitCode::Conflict,
                500..=599 => ExitCode::Server,
                _ => ExitCode::Failure,
            },
            ClientError::Network(_) => ExitCode::Network,
            ClientError::Protocol(_) => ExitCode::Server,
            ClientError::Local(_) => ExitCode::Failure,
            ClientError::Interrupted => ExitCode::Interrupted,
        }
    }

    /// A stable, machine-readable name for `--json` error output.
    pub fn kind(&self) -> &str {
        match self {
            ClientError::Usage(_) => "usage",
            ClientError::Status { code: Some(code), .. } => code,
            ClientError::Status { .. } => "http_status",
            ClientError::Network(_) => "network",
            ClientError::Protocol(_) => "protocol",
            ClientError::Local(_) => "local",
            ClientError::Interrupted => "interrupted",
        }
    }

    /// Whether trying the same request again later may succeed (network trouble, 5xx, 503).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Network(_) => true,
            ClientError::Status { status, .. } => matches!(status, 408 | 425 | 429 | 500..=599),
            _ => false,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Usage(m) => write!(f, "{m}"),
            ClientError::Status { status, code: Some(code), message } => write!(f, "{status} {code}: {message}"),
            ClientError::Status { status, code: None, message } => write!(f, "{status}: {message}"),
            ClientError::Network(m) => write!(f, "network: {m}"),
            ClientError::Protocol(m) => write!(f, "unexpected answer: {m}"),
            ClientError::Local(m) => write!(f, "{m}"),
            ClientError::Interrupted => write!(f, "interrupted"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Local(e.to_string())
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_decode() {
            ClientError::Protocol(e.to_string())
        } else if e.is_builder() {
            ClientError::Usage(e.to_string())
        } else {
            // Connect, timeout, request and body errors: the network (or the server going away).
            ClientError::Network(error_chain(&e))
        }
    }
}

/// An error with its causes ("error sending request: connection refused"), since reqwest's
/// own Display stops at the outermost layer.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}
