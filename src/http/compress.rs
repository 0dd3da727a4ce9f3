//! Response compression (gzip or brotli, as the client's `Accept-Encoding` asks), except for
//! subscriptions.
//!
//! Why subscriptions never: a compressor holds small writes back until it has a block worth
//! emitting, so a compressed 209 stream would sit on each update, and proxies that see a
//! `Content-Encoding` may buffer too. Snapshots and history ranges are finite responses and
//! compress like any other body (tower-http's default rules: above 32 bytes, not images, not
//! already encoded).

use axum::http::Response;
use tower_http::compression::predicate::{DefaultPredicate, Predicate};
use tower_http::compression::CompressionLayer;

/// Compress unless the response is a subscription (it echoes `Subscribe`).
#[derive(Clone, Copy, Debug, Default)]
pub struct NotSubscriptions;

impl Predicate for NotSubscriptions {
    fn should_compress<B: http_body::Body>(&self, response: &Response<B>) -> bool {
        !response.headers().contains_key("subscribe")
    }
}

/// The compression layer used when compression is on.
pub fn layer() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new().gzip(true).br(true).compress_when(DefaultPredicate::new().and(NotSubscriptions))
}
