//! The body of a 209 subscription response: encoded updates, heartbeats between them,
//! and an end when the document is deleted or the server shuts down.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::hub::Subscription;
use crate::protocol::{encode_update, UpdateContent, HEARTBEAT};

use super::reply::REPR_TYPE;

struct StreamState {
    sub: Subscription,
    header_only: bool,
    heartbeat: Option<Interval>,
    /// Checked before each update, never waited on: at shutdown the hub ends subscriptions
    /// through their documents (`Hub::end_subscriptions`), so a stream waits on one channel.
    shutdown: watch::Receiver<bool>,
    /// Fires when the credential that opened the subscription is revoked or expires.
    ended: Option<watch::Receiver<bool>>,
}

/// The streaming body. hyper polls it only when the socket can take more, so a client
/// that stops reading simply stops this stream from computing updates: no queue grows.
/// `header_only` (a `Method-Override: HEAD` subscription, a change feed) sends each update's
/// `Version` and `Parents` with an empty body.
pub fn subscription_body(
    sub: Subscription,
    heartbeat: Option<Duration>,
    shutdown: watch::Receiver<bool>,
    ended: Option<watch::Receiver<bool>>,
    header_only: bool,
) -> Body {
    let heartbeat = heartbeat.map(|every| {
        let mut interval = tokio::time::interval_at(Instant::now() + every, every);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        interval
    });
    let state = StreamState { sub, header_only, heartbeat, shutdown, ended };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        if *st.shutdown.borrow() || st.ended.as_ref().is_some_and(|e| *e.borrow()) {
            return None;
        }
        let chunk = tokio::select! {
            updates = st.sub.next() => {
                let updates = updates?;
                let mut out = Vec::new();
                for mut u in updates {
                    if st.header_only {
                        u.content = UpdateContent::HeaderOnly;
                    }
                    encode_update(&u, REPR_TYPE, &mut out);
                }
                Bytes::from(out)
            }
            _ = tick(&mut st.heartbeat) => Bytes::from_static(HEARTBEAT),
            _ = revoked(&mut st.ended) => return None,
        };
        Some((Ok::<Bytes, std::convert::Infallible>(chunk), st))
    });
    Body::from_stream(stream)
}

/// Completes when the credential is revoked or expires (or its registry entry is gone);
/// never for a subscription opened without a credential.
async fn revoked(ended: &mut Option<watch::Receiver<bool>>) {
    match ended {
        Some(rx) => {
            let _ = rx.wait_for(|ended| *ended).await;
        }
        None => std::future::pending().await,
    }
}

async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}
