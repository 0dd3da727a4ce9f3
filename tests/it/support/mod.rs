//! Test support: a real server on 127.0.0.1:0 and a raw HTTP/1.1 client, so tests assert
//! the bytes on the wire.

#![allow(dead_code)]

pub mod client;
pub mod cut_proxy;
pub mod folder_watch;
pub mod killable;
pub mod seaweed;
pub mod server;

pub use client::{Response, SubscriptionReader};

/// Applies a decoded simpleton update to a local text, as a simpleton client does: a
/// snapshot is inserted at the start, patches are absolute against the text.
pub fn apply_update(text: &str, u: &plait::protocol::DecodedUpdate) -> String {
    use plait::protocol::{Bound, UpdateBody};
    match &u.body {
        UpdateBody::Snapshot(s) => format!("{s}{text}"),
        UpdateBody::Patches(patches) => {
            let chars: Vec<char> = text.chars().collect();
            let mut out = String::new();
            let mut cursor = 0usize;
            for p in patches {
                let (Bound::FromStart(a), Bound::FromStart(b)) = (p.range.start, p.range.end) else {
                    panic!("relative bound in an update")
                };
                out.extend(&chars[cursor..a as usize]);
                out.push_str(&p.content);
                cursor = b as usize;
            }
            out.extend(&chars[cursor..]);
            out
        }
    }
}
