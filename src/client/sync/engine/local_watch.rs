//! Filesystem notifications for one folder (notify's recommended watcher, recursive), turned
//! into folder-relative paths on a channel. Events are hints: the engine debounces them and
//! re-reads the file's state itself, and a periodic rescan catches anything missed (an
//! overflowed queue, a filesystem without notifications).

use std::path::{Path, PathBuf};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// A running watcher; dropping it stops the notifications.
pub struct LocalWatch {
    _watcher: notify::RecommendedWatcher,
}

/// Starts watching `root`; the paths that changed arrive on the receiver (absolute). None if
/// the platform cannot watch (the periodic rescan still works).
pub fn start(root: &Path) -> Option<(LocalWatch, mpsc::UnboundedReceiver<PathBuf>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            // Opens and reads are noise; a close after writing says the file may have settled.
            if let notify::EventKind::Access(a) = ev.kind {
                if !matches!(a, notify::event::AccessKind::Close(notify::event::AccessMode::Write)) {
                    return;
                }
            }
            for p in ev.paths {
                let _ = tx.send(p);
            }
        }
    })
    .ok()?;
    watcher.watch(root, RecursiveMode::Recursive).ok()?;
    Some((LocalWatch { _watcher: watcher }, rx))
}
