//! Event ids `agent-seq`: parsing, formatting and the rules for agent names.
//!
//! The id is split at the LAST `-`, so agents may contain `-`. Seqs must be canonical decimal
//! (no sign, no leading zeros) and at most 2^53-1 (what JS peers can express), so one event has
//! exactly one spelling and set comparisons on strings are exact. This file does not look ids up;
//! see `frontier.rs`.

use super::TextError;
use std::fmt;

/// The largest seq accepted: 2^53-1, the largest integer a JS peer can express exactly.
pub const MAX_SEQ: u64 = (1 << 53) - 1;

/// Agent names must be shorter than this many UTF-8 bytes (braid-text's limit).
pub const MAX_AGENT_BYTES: usize = 50;

/// The reserved agent name diamond-types uses for its root; it can never name an event.
pub(super) const ROOT_AGENT: &str = "ROOT";

/// Agent names starting with this are reserved for the server (the base run of a compacted document).
pub(super) const RESERVED_PREFIX: char = '~';

/// A parsed `agent-seq` event id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EventId {
    /// Everything before the last `-`.
    pub agent: String,
    /// The decimal after the last `-`.
    pub seq: u64,
}

impl EventId {
    /// Parses `agent-seq` (split at the last `-`). Only the syntax is checked here; whether the
    /// agent may write is [`validate_agent`]'s job.
    pub fn parse(id: &str) -> Result<EventId, TextError> {
        let bad = || TextError::InvalidEventId { id: id.to_string() };
        let (agent, seq) = id.rsplit_once('-').ok_or_else(bad)?;
        if seq.is_empty()
            || !seq.bytes().all(|b| b.is_ascii_digit())
            || (seq.len() > 1 && seq.starts_with('0'))
            || seq.len() > 16
        {
            return Err(bad());
        }
        let seq: u64 = seq.parse().map_err(|_| bad())?;
        if seq > MAX_SEQ {
            return Err(bad());
        }
        Ok(EventId { agent: agent.to_string(), seq })
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.agent, self.seq)
    }
}

/// Checks that `agent` may create events: a valid name ([`validate_agent_name`]) that is not
/// `~…` (reserved for the server's compaction bases).
pub fn validate_agent(agent: &str) -> Result<(), TextError> {
    validate_agent_name(agent)?;
    if agent.starts_with(RESERVED_PREFIX) {
        let reason = "agent names starting with ~ are reserved for the server";
        return Err(TextError::InvalidAgent { agent: agent.to_string(), reason });
    }
    Ok(())
}

/// Checks that `agent` can name events at all: non-empty, not `ROOT`, under 50 UTF-8 bytes.
/// Ids of the server's own `~` agents pass (clients may name them, only never write as
/// them). diamond-types itself enforces none of this (`ROOT` even crashes it, DT-FACTS §6).
pub fn validate_agent_name(agent: &str) -> Result<(), TextError> {
    let reason = if agent.is_empty() {
        "the agent name is empty"
    } else if agent == ROOT_AGENT {
        "the agent name ROOT is reserved"
    } else if agent.len() >= MAX_AGENT_BYTES {
        "the agent name must be shorter than 50 UTF-8 bytes"
    } else {
        return Ok(());
    };
    Err(TextError::InvalidAgent { agent: agent.to_string(), reason })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_at_last_dash() {
        let id = EventId::parse("my-agent-12").unwrap();
        assert_eq!(id, EventId { agent: "my-agent".into(), seq: 12 });
        assert_eq!(id.to_string(), "my-agent-12");
        assert_eq!(EventId::parse("a-0").unwrap().seq, 0);
        assert_eq!(EventId::parse("a-9007199254740991").unwrap().seq, MAX_SEQ);
    }

    #[test]
    fn rejects_bad_ids() {
        for bad in ["a", "a-", "a-x", "a-+1", "-", "a-01", "a-9007199254740992", "a-99999999999999999999", "a-1 "] {
            let err = EventId::parse(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_event_id", "{bad}");
        }
    }

    #[test]
    fn agent_rules() {
        assert!(validate_agent("alice").is_ok());
        assert!(validate_agent(&"x".repeat(49)).is_ok());
        assert!(validate_agent("a~b").is_ok());
        for bad in [String::new(), "ROOT".to_string(), "x".repeat(50), "é".repeat(25), "~h1".into(), "~".into()] {
            assert_eq!(validate_agent(&bad).unwrap_err().code(), "invalid_agent");
        }
    }
}
