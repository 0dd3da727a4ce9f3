//! Expiry: uploads left alone past their `Upload-Expires` are dropped (record, chunk list and
//! references), after which the chunk collector removes their chunks. Completed uploads' small
//! records go the same way.

use std::time::Duration;

use crate::store::Batch;

use super::super::loading::blocking;
use super::{commit_error, state, Hub, HubError};

impl Hub {
    /// Drops every upload expired at `now_ms`; returns how many went.
    pub async fn expire_uploads(&self, now_ms: u64) -> Result<usize, HubError> {
        let all = blocking(|| state::all(self.0.store.as_ref()))?;
        let mut dropped = 0;
        for (id, _) in all.iter().filter(|(_, r)| r.expires_ms <= now_ms) {
            let slot = self.0.uploads.slot(id);
            let mut held = self.hold(&slot).await;
            // Read again under the lock: a request may have extended it meanwhile.
            let Ok(record) = self.upload_record(id) else { continue };
            if record.expires_ms > now_ms {
                continue;
            }
            let mut batch = Batch::new();
            blocking(|| state::drop_upload(self.0.store.as_ref(), &mut batch, id, &record))?;
            self.0.durability.commit(batch).await.map_err(commit_error)?;
            self.uncache_tail(&mut held.live);
            drop(held);
            self.0.uploads.forget(id);
            dropped += 1;
        }
        Ok(dropped + self.expire_direct(now_ms).await?)
    }
}

/// The expiry pass, every `every`.
pub async fn run_expiry(hub: Hub, every: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match hub.expire_uploads(super::super::browse::now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "expired uploads dropped"),
            Err(e) => tracing::warn!(error = %e, "upload expiry pass failed; next pass later"),
        }
    }
}
