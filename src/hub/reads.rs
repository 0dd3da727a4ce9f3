//! Reads: the text at a version, or the updates between two. They never touch the writer: the
//! current text comes from the published head when a reader already computed it, and anything
//! else from the readers' copy of the document, off the async scheduler.

use std::sync::Arc;

use bytes::Bytes;

use crate::document::Current;
use crate::protocol::VersionSet;

use super::loading::blocking;
use super::{Hub, HubError, ReadOutcome, ReadRequest};

impl Hub {
    /// Reads the text at a version, or the updates between two versions.
    pub async fn read(&self, path: &str, req: ReadRequest) -> Result<ReadOutcome, HubError> {
        let handle = self.doc(path).await?;
        if req.version.is_none() && req.parents.is_none() {
            // The current text, once some reader computed it for this head: no lock at all.
            let published = handle.shared.published();
            if let Some(current) = published.current.get() {
                let horizon = published.horizon.as_ref().map(|h| h.version_set());
                return Ok(ReadOutcome::Snapshot {
                    text: current.text.clone(),
                    version: published.head.clone(),
                    current: published.head.clone(),
                    digest: current.digest.clone(),
                    horizon,
                });
            }
        }
        let (shared, store) = (handle.shared.clone(), self.0.store.clone());
        blocking(|| {
            shared.with_replica(store.as_ref(), |replica, published| {
                let head = &published.head;
                let horizon = published.horizon.as_deref();
                let mut unknown: Vec<String> = Vec::new();
                for v in [&req.version, &req.parents].into_iter().flatten() {
                    unknown.extend(replica.unpublished_ids(head, v, horizon)?.ids().iter().cloned());
                }
                if !unknown.is_empty() {
                    return Err(crate::document::DocError::UnknownVersion(VersionSet::new(unknown)).into());
                }
                let target = req.version.clone().unwrap_or_else(|| head.clone());
                let horizon = horizon.map(|h| h.version_set());
                match &req.parents {
                    Some(parents) if *parents != target => {
                        let updates = replica.history_updates(parents, &target)?;
                        Ok(ReadOutcome::History { updates, current: head.clone(), horizon })
                    }
                    _ => {
                        let (text, digest) = replica.text_and_digest(&target)?;
                        let text = Bytes::from(text);
                        if target == *head {
                            let current = Current { text: text.clone(), digest: digest.clone() };
                            let _ = published.current.set(Arc::new(current));
                        }
                        Ok(ReadOutcome::Snapshot { text, version: target, current: head.clone(), digest, horizon })
                    }
                }
            })
        })
    }
}
