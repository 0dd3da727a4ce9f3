//! B2's subscribers: a simpleton subscription read to its end state, each update applied to a
//! local copy of the text as a simpleton client would (its `Parents` must be the version the
//! client is at; its patches are absolute code-point ranges of that text).
//!
//! Kept apart from the replay itself so that what "converged" means for a subscriber is in one
//! small place: it reached the trace's final version, and its text is what it applied.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context};

use plait::protocol::{DecodedUpdate, Decoder, Patch, UpdateBody, VersionSet};

use super::client::Conn;

/// Opens a simpleton subscription (no `Peer`: it receives every change) to `path`.
pub(super) async fn subscribe(addr: SocketAddr, path: &str) -> anyhow::Result<Conn> {
    let mut conn = Conn::connect(addr).await?;
    conn.send("GET", path, &[("subscribe", "true"), ("merge-type", "simpleton")], b"").await?;
    let head = conn.read_head().await?;
    ensure!(head.status == 209, "subscribing to {path} answered {}", head.status);
    Ok(conn)
}

/// A text kept as a simpleton client keeps it.
#[derive(Default)]
struct LiveText {
    text: String,
    /// While the text is ASCII, code point positions are byte offsets.
    ascii: bool,
}

impl LiveText {
    /// The byte offset of code point `cp`, if it is inside the text (or its end).
    fn byte_at(&self, cp: u64) -> Option<usize> {
        let cp = usize::try_from(cp).ok()?;
        if self.ascii {
            return (cp <= self.text.len()).then_some(cp);
        }
        self.text.char_indices().map(|(b, _)| b).chain([self.text.len()]).nth(cp)
    }

    /// Applies sorted, non-overlapping absolute patches (back to front, so that earlier
    /// positions stay valid).
    fn apply(&mut self, patches: &[Patch]) -> anyhow::Result<()> {
        let len = if self.ascii { self.text.len() as u64 } else { self.text.chars().count() as u64 };
        let mut prev_start = u64::MAX;
        for p in patches.iter().rev() {
            let (a, b) = p.range.resolve(len).ok_or_else(|| anyhow!("patch {} outside the text", p.range))?;
            ensure!(b <= prev_start, "patches overlap or are not sorted");
            prev_start = a;
            let (Some(a), Some(b)) = (self.byte_at(a), self.byte_at(b)) else {
                bail!("patch {} outside the text", p.range)
            };
            self.text.replace_range(a..b, &p.content);
            self.ascii &= p.content.is_ascii();
        }
        Ok(())
    }
}

/// A subscription being read.
pub(super) struct Follower {
    conn: Conn,
    decoder: Decoder,
    text: LiveText,
    version: VersionSet,
    updates: usize,
}

impl Follower {
    /// Follows the subscription opened on `conn`.
    pub(super) fn new(conn: Conn) -> Follower {
        Follower {
            conn,
            decoder: Decoder::new(),
            text: LiveText { text: String::new(), ascii: true },
            version: VersionSet::root(),
            updates: 0,
        }
    }

    fn apply(&mut self, u: &DecodedUpdate) -> anyhow::Result<()> {
        match &u.body {
            // The simpleton initial state: the body is inserted at [0:0].
            UpdateBody::Snapshot(s) => {
                self.text.text.insert_str(0, s);
                self.text.ascii &= s.is_ascii();
            }
            UpdateBody::Patches(patches) => {
                let parents = u.parents.as_ref().ok_or_else(|| anyhow!("an update without Parents"))?;
                ensure!(
                    *parents == self.version,
                    "an update from {} while the client is at {}",
                    parents.to_header(),
                    self.version.to_header()
                );
                self.text.apply(patches).with_context(|| format!("update {}", self.updates))?;
            }
        }
        if let Some(v) = &u.version {
            self.version = v.clone();
        }
        self.updates += 1;
        Ok(())
    }

    /// Reads and applies updates until the client is at `heads`; returns its text. Fails if
    /// the stream ends first or nothing arrives for `stall`.
    pub(super) async fn follow_to(mut self, heads: &VersionSet, stall: Duration) -> anyhow::Result<String> {
        loop {
            while let Some(u) = self.decoder.next_update()? {
                self.apply(&u)?;
            }
            if self.version == *heads {
                return Ok(self.text.text);
            }
            let chunk = tokio::time::timeout(stall, self.conn.read_chunk())
                .await
                .map_err(|_| {
                    anyhow!("no update for {stall:?} (at {} after {} updates)", self.version.to_header(), self.updates)
                })??
                .ok_or_else(|| anyhow!("the subscription ended at {}", self.version.to_header()))?;
            self.decoder.push(&chunk);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use plait::protocol::TextRange;

    fn patch(a: u64, b: u64, s: &str) -> Patch {
        Patch { range: TextRange::absolute(a, b), content: s.into() }
    }

    #[test]
    fn patches_apply_as_absolute_ranges() {
        for ascii_start in ["hello world", "héllo world"] {
            let mut t = LiveText { text: ascii_start.into(), ascii: ascii_start.is_ascii() };
            t.apply(&[patch(0, 1, "H"), patch(5, 6, ""), patch(11, 11, "!")]).unwrap();
            assert_eq!(t.text.replace('é', "e"), "Helloworld!");
        }
        let mut t = LiveText { text: "ab".into(), ascii: true };
        t.apply(&[patch(1, 1, "é")]).unwrap();
        t.apply(&[patch(2, 3, "c")]).unwrap();
        assert_eq!(t.text, "aéc");
        assert!(t.apply(&[patch(0, 2, ""), patch(1, 3, "")]).is_err());
        assert!(t.apply(&[patch(4, 4, "x")]).is_err());
    }
}
