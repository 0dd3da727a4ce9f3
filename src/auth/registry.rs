//! `Access`: every token and share link, in memory for checks that cost no I/O, written
//! through to the store (synced) before a create or revoke answers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use tokio::sync::{watch, Notify};

use crate::store::{keys, Batch, Op, Store};

use super::records::{expired, ShareRecord, TokenRecord};
use super::rights::{prefix_problem, Right, ShareRight};
use super::secret::{self, Minted, SecretHash};
use super::throttle::{Throttle, CAPACITY};
use super::{now_ms, AuthError, Grant};

/// Most tokens that may exist at once.
pub const MAX_TOKENS: usize = 10_000;
/// Most share links that may exist at once.
pub const MAX_SHARES: usize = 100_000;
/// Longest label, in characters.
const MAX_LABEL_CHARS: usize = 200;
/// Most prefixes on one token.
const MAX_PREFIXES: usize = 32;
/// Longest lifetime a credential may be given (10 years).
const MAX_LIFETIME_SECS: u64 = 10 * 366 * 24 * 3600;

/// A token to create.
#[derive(Clone, Debug)]
pub struct NewToken {
    /// Who or what it is for.
    pub label: String,
    /// Its right.
    pub rights: Right,
    /// The prefixes it covers.
    pub prefixes: Vec<String>,
    /// Seconds until it expires (None: never).
    pub expires_in_secs: Option<u64>,
}

/// A share link to create (the path was checked and the creator's right on it too).
#[derive(Clone, Debug)]
pub struct NewShare {
    /// The document.
    pub path: String,
    /// What the link may do.
    pub rights: ShareRight,
    /// The pinned version and its text, if pinned.
    pub pinned: Option<(Vec<String>, String)>,
    /// A name for listings and history (None: the path).
    pub label: Option<String>,
    /// Seconds until it expires (None: never).
    pub expires_in_secs: Option<u64>,
}

/// Every credential, and the failed-authentication throttle. Cheap to clone.
#[derive(Clone)]
pub struct Access {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    admin: Option<SecretHash>,
    creds: Mutex<Creds>,
    throttle: Mutex<Throttle>,
    /// Wakes the expiry task when a credential that expires is added.
    added: Notify,
}

#[derive(Default)]
struct Creds {
    tokens: HashMap<String, Live<TokenRecord>>,
    shares: HashMap<String, Live<ShareRecord>>,
}

/// A credential as the checks use it.
struct Live<R> {
    record: Arc<R>,
    hash: SecretHash,
    prefixes: Arc<[String]>,
    /// Set to true on revocation or expiry; every grant made from it watches it.
    ended: watch::Sender<bool>,
}

impl<R> Live<R> {
    fn new(record: R, hash: SecretHash, prefixes: &[String]) -> Self {
        let (ended, _) = watch::channel(false);
        Live { record: Arc::new(record), hash, prefixes: prefixes.into(), ended }
    }
}

impl<R: Stored> Live<R> {
    /// Whether `presented` is this credential's secret (constant time) and it has not expired.
    fn accepts(&self, presented: &str) -> bool {
        secret::matches(presented, &self.hash) && !expired(self.record.expires_ms(), now_ms())
    }
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").field("admin", &self.inner.admin.map(|_| "<configured>")).finish_non_exhaustive()
    }
}

impl Access {
    /// Loads every stored credential. `admin_token` is the configured admin secret (kept as
    /// its hash only); `failures_per_minute` the throttle's limit per client address.
    pub fn open(
        store: Arc<dyn Store>,
        admin_token: Option<&str>,
        failures_per_minute: u32,
    ) -> Result<Access, AuthError> {
        let mut creds = Creds::default();
        for (key, value) in store.scan_prefix(&keys::all_tokens())? {
            match decode::<TokenRecord>(&value) {
                Some((rec, hash)) => {
                    let prefixes = rec.prefixes.clone();
                    creds.tokens.insert(rec.id.clone(), Live::new(rec, hash, &prefixes));
                }
                None => {
                    tracing::error!(key = %String::from_utf8_lossy(&key), "corrupt token record ignored (it authenticates nothing)")
                }
            }
        }
        for (key, value) in store.scan_prefix(&keys::all_shares())? {
            match decode::<ShareRecord>(&value) {
                Some((rec, hash)) => {
                    creds.shares.insert(rec.id.clone(), Live::new(rec, hash, &[]));
                }
                None => {
                    tracing::error!(key = %String::from_utf8_lossy(&key), "corrupt share record ignored (it opens nothing)")
                }
            }
        }
        Ok(Access {
            inner: Arc::new(Inner {
                store,
                admin: admin_token.map(secret::hash),
                creds: Mutex::new(creds),
                throttle: Mutex::new(Throttle::new(failures_per_minute, CAPACITY)),
                added: Notify::new(),
            }),
        })
    }

    /// Whether anybody could ever authenticate: an admin token, or any stored token.
    pub fn has_credentials(&self) -> bool {
        self.inner.admin.is_some() || !self.creds().tokens.is_empty()
    }

    /// Stored tokens and share links.
    pub fn counts(&self) -> (usize, usize) {
        let creds = self.creds();
        (creds.tokens.len(), creds.shares.len())
    }

    fn creds(&self) -> MutexGuard<'_, Creds> {
        // A panic while holding the lock cannot leave the maps half-changed (every change is
        // one insert or remove), so a poisoned lock is still usable.
        self.inner.creds.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn throttle(&self) -> MutexGuard<'_, Throttle> {
        self.inner.throttle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs one authentication attempt from `addr` under the throttle: refused at once while
    /// `addr` is throttled, and counted as a failure when it presents an invalid token or
    /// link (a missing or doubled header is not a guess, so it does not count).
    pub fn attempt<T>(&self, addr: IpAddr, check: impl FnOnce(&Self) -> Result<T, AuthError>) -> Result<T, AuthError> {
        self.throttle()
            .check(addr, Instant::now())
            .map_err(|wait| AuthError::Throttled { retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64 })?;
        let result = check(self);
        if matches!(result, Err(AuthError::InvalidToken | AuthError::InvalidLink)) {
            self.throttle().fail(addr, Instant::now());
        }
        result
    }

    /// Checks a bearer token: the admin token, or a stored, unexpired one.
    pub fn authenticate_token(&self, token: &str) -> Result<Grant, AuthError> {
        // The admin comparison runs for every token, ours or not, in constant time.
        let is_admin = self.inner.admin.is_some_and(|h| bool::from(secret::hash(token).ct_eq(&h)));
        if is_admin {
            return Ok(Grant::admin());
        }
        let (id, presented) = secret::parse_token(token).ok_or(AuthError::InvalidToken)?;
        let creds = self.creds();
        let live = creds.tokens.get(id).filter(|l| l.accepts(presented)).ok_or(AuthError::InvalidToken)?;
        let rec = &live.record;
        Ok(Grant::token(&rec.id, &rec.label, rec.rights, live.prefixes.clone(), live.ended.subscribe()))
    }

    /// Checks a share link's last path segment; returns its grant and record.
    pub fn authenticate_link(&self, link: &str) -> Result<(Grant, Arc<ShareRecord>), AuthError> {
        let (id, presented) = secret::parse_link(link).ok_or(AuthError::InvalidLink)?;
        let creds = self.creds();
        let live = creds.shares.get(id).filter(|l| l.accepts(presented)).ok_or(AuthError::InvalidLink)?;
        let rec = &live.record;
        let grant =
            Grant::share(&rec.id, &rec.label, &rec.path, rec.rights, rec.version.is_some(), live.ended.subscribe());
        Ok((grant, rec.clone()))
    }

    /// Creates a token; returns its record and the token itself (shown once).
    pub async fn create_token(&self, new: NewToken) -> Result<(TokenRecord, String), AuthError> {
        let label = check_label(&new.label)?;
        if new.prefixes.is_empty() || new.prefixes.len() > MAX_PREFIXES {
            return Err(AuthError::BadRequest(format!("prefixes: give 1 to {MAX_PREFIXES} path prefixes")));
        }
        if let Some((p, why)) = new.prefixes.iter().find_map(|p| prefix_problem(p).map(|why| (p, why))) {
            return Err(AuthError::BadRequest(format!("prefix {p:?}: {why}")));
        }
        if self.creds().tokens.len() >= MAX_TOKENS {
            return Err(AuthError::TooMany { what: "tokens", limit: MAX_TOKENS });
        }
        let minted = Minted::new()?;
        let created_ms = now_ms();
        let record = TokenRecord {
            id: minted.id.clone(),
            label,
            rights: new.rights,
            prefixes: new.prefixes,
            created_ms,
            expires_ms: expiry(created_ms, new.expires_in_secs)?,
            hash: secret::hex(&minted.hash),
        };
        let mut batch = Batch::new();
        batch.put(keys::token(&record.id), encode(&record)?);
        self.write(batch).await?;
        let prefixes = record.prefixes.clone();
        self.creds().tokens.insert(record.id.clone(), Live::new(record.clone(), minted.hash, &prefixes));
        if record.expires_ms.is_some() {
            self.inner.added.notify_one();
        }
        Ok((record, minted.token()))
    }

    /// Every token, oldest first.
    pub fn tokens(&self) -> Vec<Arc<TokenRecord>> {
        let mut list: Vec<_> = self.creds().tokens.values().map(|l| l.record.clone()).collect();
        list.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        list
    }

    /// Revokes a token: removed from the store (synced), then every response opened with it
    /// is told to end.
    pub async fn revoke_token(&self, id: &str) -> Result<(), AuthError> {
        if !self.creds().tokens.contains_key(id) {
            return Err(AuthError::NoSuchToken(id.to_string()));
        }
        let mut batch = Batch::new();
        batch.ops.push(Op::Delete(keys::token(id)));
        self.write(batch).await?;
        if let Some(live) = self.creds().tokens.remove(id) {
            live.ended.send_replace(true);
        }
        Ok(())
    }

    /// Creates a share link; returns its record and the link's last path segment (shown once).
    pub async fn create_share(&self, new: NewShare, created_by: &Grant) -> Result<(ShareRecord, String), AuthError> {
        let label = match &new.label {
            Some(l) => check_label(l)?,
            None => new.path.chars().take(MAX_LABEL_CHARS).collect(),
        };
        if new.pinned.is_some() {
            check_pinned_rights(new.rights)?;
        }
        if self.creds().shares.len() >= MAX_SHARES {
            return Err(AuthError::TooMany { what: "share links", limit: MAX_SHARES });
        }
        let minted = Minted::new()?;
        let created_ms = now_ms();
        let record = ShareRecord {
            id: minted.id.clone(),
            path: new.path,
            rights: new.rights,
            version: new.pinned.as_ref().map(|(v, _)| v.clone()),
            label,
            created_ms,
            expires_ms: expiry(created_ms, new.expires_in_secs)?,
            created_by: created_by.id().to_string(),
            hash: secret::hex(&minted.hash),
        };
        let mut batch = Batch::new();
        batch.put(keys::share(&record.id), encode(&record)?);
        if let Some((_, text)) = new.pinned {
            batch.put(keys::pinned_text(&record.id), text.into_bytes());
        }
        self.write(batch).await?;
        self.creds().shares.insert(record.id.clone(), Live::new(record.clone(), minted.hash, &[]));
        if record.expires_ms.is_some() {
            self.inner.added.notify_one();
        }
        Ok((record, minted.link()))
    }

    /// The share links `viewer` may see (a root admin: all; others: the ones they made),
    /// optionally only those of one path, oldest first.
    pub fn shares(&self, viewer: &Grant, path: Option<&str>) -> Vec<Arc<ShareRecord>> {
        let mut list: Vec<_> = self
            .creds()
            .shares
            .values()
            .map(|l| l.record.clone())
            .filter(|r| viewer.is_root_admin() || r.created_by == viewer.id())
            .filter(|r| path.is_none_or(|p| r.path == p))
            .collect();
        list.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        list
    }

    /// Revokes a share link `by` may see (else it is "no such share").
    pub async fn revoke_share(&self, id: &str, by: &Grant) -> Result<(), AuthError> {
        let visible = self.creds().shares.get(id).is_some_and(|l| by.is_root_admin() || l.record.created_by == by.id());
        if !visible {
            return Err(AuthError::NoSuchShare(id.to_string()));
        }
        let mut batch = Batch::new();
        batch.ops.push(Op::Delete(keys::share(id)));
        batch.ops.push(Op::Delete(keys::pinned_text(id)));
        self.write(batch).await?;
        if let Some(live) = self.creds().shares.remove(id) {
            live.ended.send_replace(true);
        }
        Ok(())
    }

    /// The text a pinned link serves.
    pub async fn pinned_text(&self, id: &str) -> Result<String, AuthError> {
        let store = self.inner.store.clone();
        let key = keys::pinned_text(id);
        let bytes = tokio::task::spawn_blocking(move || store.get(&key))
            .await
            .map_err(|e| AuthError::Corrupt(format!("reading a pinned text: {e}")))??;
        let bytes = bytes.ok_or_else(|| AuthError::Corrupt(format!("pinned share {id} has no text")))?;
        String::from_utf8(bytes).map_err(|_| AuthError::Corrupt(format!("pinned share {id}: text is not UTF-8")))
    }

    /// Synced write on the blocking pool.
    async fn write(&self, batch: Batch) -> Result<(), AuthError> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || store.write(&batch))
            .await
            .map_err(|e| AuthError::Corrupt(format!("store write task: {e}")))??;
        Ok(())
    }

    /// Ends the responses of credentials that expired by now; returns when the next one will.
    fn end_expired(&self) -> Option<u64> {
        let now = now_ms();
        let creds = self.creds();
        let mut next: Option<u64> = None;
        let entries = creds
            .tokens
            .values()
            .map(|l| (l.record.expires_ms, &l.ended))
            .chain(creds.shares.values().map(|l| (l.record.expires_ms, &l.ended)));
        for (expires, ended) in entries {
            let Some(at) = expires else { continue };
            if at <= now {
                if !*ended.borrow() {
                    ended.send_replace(true);
                }
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        next
    }

    /// Runs until aborted: at each expiry, ends the responses opened with that credential
    /// (so they end within milliseconds of it, not at the client's next request).
    pub async fn run_expiry(self) {
        loop {
            let next = self.end_expired();
            // Re-check at least every minute, so wall-clock jumps are caught too.
            let wait = next.map_or(Duration::from_secs(60), |at| {
                Duration::from_millis(at.saturating_sub(now_ms())).min(Duration::from_secs(60))
            });
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.inner.added.notified() => {}
            }
        }
    }
}

/// A pinned link serves one version, so it may only read. (Checked before its text is read.)
pub fn check_pinned_rights(rights: ShareRight) -> Result<(), AuthError> {
    if rights != ShareRight::Read {
        return Err(AuthError::BadRequest("a pinned link serves one version: its rights must be \"read\"".into()));
    }
    Ok(())
}

fn check_label(label: &str) -> Result<String, AuthError> {
    let n = label.chars().count();
    if n == 0 || n > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
        return Err(AuthError::BadRequest(format!(
            "label: 1 to {MAX_LABEL_CHARS} characters without control characters"
        )));
    }
    Ok(label.to_string())
}

fn expiry(created_ms: u64, expires_in_secs: Option<u64>) -> Result<Option<u64>, AuthError> {
    match expires_in_secs {
        None => Ok(None),
        Some(0) => Err(AuthError::BadRequest("expires_in_secs must be at least 1".into())),
        Some(s) if s > MAX_LIFETIME_SECS => {
            Err(AuthError::BadRequest(format!("expires_in_secs may be at most {MAX_LIFETIME_SECS} (10 years)")))
        }
        Some(s) => Ok(Some(created_ms.saturating_add(s * 1000))),
    }
}

fn encode<R: serde::Serialize>(record: &R) -> Result<Vec<u8>, AuthError> {
    serde_json::to_vec(record).map_err(|e| AuthError::Corrupt(e.to_string()))
}

/// A stored record and the hash it carries; None when either does not parse.
fn decode<R: serde::de::DeserializeOwned + Stored>(bytes: &[u8]) -> Option<(R, SecretHash)> {
    let rec: R = serde_json::from_slice(bytes).ok()?;
    let hash = secret::unhex32(rec.hash_hex())?;
    Some((rec, hash))
}

/// What the checks read from either kind of record.
trait Stored {
    fn hash_hex(&self) -> &str;
    fn expires_ms(&self) -> Option<u64>;
}

impl Stored for TokenRecord {
    fn hash_hex(&self) -> &str {
        &self.hash
    }
    fn expires_ms(&self) -> Option<u64> {
        self.expires_ms
    }
}

impl Stored for ShareRecord {
    fn hash_hex(&self) -> &str {
        &self.hash
    }
    fn expires_ms(&self) -> Option<u64> {
        self.expires_ms
    }
}
