//! A stand-in for `sync::engine` (branch syncengine) until it is merged into core, so that the
//! daemon, its control API and their tests build: it reports the folder as failed and waits for
//! the stop. The lead deletes this file when merging the engine (and `mod.rs`'s `#[path]`).

use tokio::sync::watch;

use super::spec::FolderSpec;
use super::status::{FolderState, StatusBoard};
use crate::client::error::ClientError;

/// The engine's interface from the contract (issue 18).
pub struct Engine;

impl Engine {
    /// Marks the folder failed ("not in this build") and waits until `stop` fires.
    pub async fn run(spec: FolderSpec, board: StatusBoard, mut stop: watch::Receiver<bool>) -> Result<(), ClientError> {
        board.update(&spec.dir.display().to_string(), |s| {
            s.state = FolderState::Failed;
            s.last_error = Some("the sync engine is not in this build yet".into());
        });
        let _ = stop.wait_for(|s| *s).await;
        Ok(())
    }
}
