//! Test support: a real server on 127.0.0.1:0 and a raw HTTP/1.1 client, so tests assert
//! the bytes on the wire.

#![allow(dead_code)]

pub mod client;
pub mod server;

pub use client::{Response, SubscriptionReader};
