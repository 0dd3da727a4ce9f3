//! What a request authenticated as, and what that lets it do.

use std::sync::Arc;

use tokio::sync::watch;

use super::rights::{covers, Action, Right, ShareRight};

/// A credential that passed its check: who it is, what it may do, and a signal that fires
/// when it is revoked or expires (so long-lived responses opened with it can end).
#[derive(Clone, Debug)]
pub struct Grant {
    kind: Kind,
    id: String,
    label: String,
    scope: Scope,
    ended: Option<watch::Receiver<bool>>,
}

/// Which kind of credential a grant came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The admin token from the configuration.
    Admin,
    /// A stored token.
    Token,
    /// A share link.
    Share,
}

impl Kind {
    /// The name shown in history (`author.principal.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Admin => "admin",
            Kind::Token => "token",
            Kind::Share => "share",
        }
    }
}

#[derive(Clone, Debug)]
enum Scope {
    Everything,
    Prefixes { rights: Right, prefixes: Arc<[String]> },
    Document { path: String, rights: ShareRight, pinned: bool },
}

impl Grant {
    /// The configured admin token: every right everywhere, never revoked.
    pub(super) fn admin() -> Grant {
        Grant { kind: Kind::Admin, id: "admin".into(), label: "admin".into(), scope: Scope::Everything, ended: None }
    }

    /// A stored token's grant.
    pub(super) fn token(
        id: &str,
        label: &str,
        rights: Right,
        prefixes: Arc<[String]>,
        ended: watch::Receiver<bool>,
    ) -> Grant {
        Grant {
            kind: Kind::Token,
            id: id.into(),
            label: label.into(),
            scope: Scope::Prefixes { rights, prefixes },
            ended: Some(ended),
        }
    }

    /// A share link's grant.
    pub(super) fn share(
        id: &str,
        label: &str,
        path: &str,
        rights: ShareRight,
        pinned: bool,
        ended: watch::Receiver<bool>,
    ) -> Grant {
        Grant {
            kind: Kind::Share,
            id: id.into(),
            label: label.into(),
            scope: Scope::Document { path: path.into(), rights, pinned },
            ended: Some(ended),
        }
    }

    /// Whether this credential may do `action` to `path` (a raw document path).
    pub fn allows(&self, action: Action, path: &str) -> bool {
        match &self.scope {
            Scope::Everything => true,
            Scope::Prefixes { rights, prefixes } => {
                *rights >= action.token_right() && prefixes.iter().any(|p| covers(p, path))
            }
            Scope::Document { path: own, rights, pinned } => {
                let Some(needed) = action.share_right() else { return false };
                own == path && *rights >= needed && !(*pinned && needed > ShareRight::Read)
            }
        }
    }

    /// Whether this credential may do `action` to anything under `folder` (a path ending in
    /// `/`): listing and watching a folder need it, and show only what it may read. A share
    /// link names one document, never a folder.
    pub fn allows_under(&self, action: Action, folder: &str) -> bool {
        match &self.scope {
            Scope::Everything => true,
            Scope::Prefixes { rights, prefixes } => {
                *rights >= action.token_right() && prefixes.iter().any(|p| covers(p, folder) || covers(folder, p))
            }
            Scope::Document { .. } => false,
        }
    }

    /// Whether this is an admin over every path (manages tokens and every share link).
    pub fn is_root_admin(&self) -> bool {
        self.kind != Kind::Share && self.allows(Action::Admin, "/")
    }

    /// The kind of credential.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The credential's public id (`admin` for the configured admin token).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The credential's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Fires (becomes true) when the credential is revoked or expires; None for one that
    /// never ends.
    pub fn ended(&self) -> Option<watch::Receiver<bool>> {
        self.ended.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(rights: Right, prefixes: &[&str]) -> Grant {
        let (_tx, rx) = watch::channel(false);
        let prefixes: Arc<[String]> = prefixes.iter().map(|p| p.to_string()).collect();
        Grant::token("0123456789abcdef", "t", rights, prefixes, rx)
    }

    #[test]
    fn token_rights_by_prefix() {
        let read = token(Right::Read, &["/notes/"]);
        assert!(read.allows(Action::Read, "/notes/a"));
        assert!(read.allows(Action::Subscribe, "/notes/a"));
        assert!(!read.allows(Action::Write, "/notes/a"));
        assert!(!read.allows(Action::Read, "/other"));
        let write = token(Right::Write, &["/a", "/b/"]);
        assert!(write.allows(Action::Write, "/b/x") && write.allows(Action::Write, "/a"));
        assert!(!write.allows(Action::Admin, "/a"));
        assert!(!write.is_root_admin());
        assert!(token(Right::Admin, &["/"]).is_root_admin());
        assert!(!token(Right::Admin, &["/notes"]).is_root_admin());
        assert!(Grant::admin().is_root_admin());
        let some = token(Right::Read, &["/notes/a", "/notes/b/"]);
        assert!(some.allows_under(Action::Read, "/notes/") && some.allows_under(Action::Read, "/"));
        assert!(some.allows_under(Action::Read, "/notes/b/") && some.allows_under(Action::Read, "/notes/b/c/"));
        assert!(!some.allows_under(Action::Read, "/notes/c/") && !some.allows_under(Action::Read, "/other/"));
    }

    #[test]
    fn share_rights_on_one_document() {
        let (_tx, rx) = watch::channel(false);
        let sub = Grant::share("0123456789abcdef", "l", "/doc", ShareRight::Subscribe, false, rx.clone());
        assert!(sub.allows(Action::Read, "/doc") && sub.allows(Action::Subscribe, "/doc"));
        assert!(!sub.allows(Action::Write, "/doc"));
        assert!(!sub.allows(Action::Read, "/doc/child"));
        assert!(!sub.allows(Action::Admin, "/doc"));
        let pinned = Grant::share("0123456789abcdef", "l", "/doc", ShareRight::Write, true, rx);
        assert!(pinned.allows(Action::Read, "/doc"));
        assert!(!pinned.allows(Action::Subscribe, "/doc") && !pinned.allows(Action::Write, "/doc"));
        assert!(!pinned.is_root_admin());
    }
}
