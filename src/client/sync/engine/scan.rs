//! The local scan: which paths need a look. A file whose (size, mtime, inode) equals its
//! record is unchanged and is neither read nor hashed, so a restart over a large, unchanged
//! folder costs one `stat` per file. Recorded paths that are gone are deletes to send.

use std::collections::BTreeSet;
use std::path::Path;

use super::fsio;
use super::paths;
use super::state::State;
use crate::client::ClientError;

/// Paths under `root` whose file differs from its record, or that have a record and no file.
pub fn changed_paths(root: &Path, db: &State, ignore: &dyn Fn(&str) -> bool) -> Result<BTreeSet<String>, ClientError> {
    let mut out = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for file in fsio::walk(root) {
        let Some(rel) = paths::local_relative(root, &file) else { continue };
        if ignore(&rel) {
            continue;
        }
        seen.insert(rel.clone());
        if db.copy_of(&rel)?.is_some() {
            continue;
        }
        let rec = db.record(&rel)?;
        let unchanged = rec.as_ref().is_some_and(|r| {
            r.stat.is_some() && r.stat == fsio::stat(&file) && r.queue.is_empty() && r.intent.is_none()
        });
        if !unchanged {
            out.insert(rel);
        }
    }
    for rel in db.paths()? {
        if !seen.contains(&rel) && !ignore(&rel) {
            out.insert(rel);
        }
    }
    for (rel, c) in db.conflicts()? {
        if !seen.contains(&c.copy) {
            out.insert(rel);
        }
    }
    Ok(out)
}
