//! Local file operations the engine needs to be safe: a file's identity (size, mtime, inode)
//! without reading it, whether it has settled (not being written), reading and chunking it the
//! way the server cuts files, and landing remote content atomically (a temp file in the same
//! folder, fsync, rename, fsync of the folder) so a crash or a reader never sees half a file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::state::Stat;
use crate::chunks::{ChunkId, ChunkParams, Chunker};

/// The prefix of the engine's temp files: ignored both ways, removed at start.
pub const TEMP_PREFIX: &str = ".plait-tmp-";

/// A file that changed within this long is still being written: wait before sending it.
pub const SETTLE: Duration = Duration::from_millis(1000);
/// Text files are small and people wait for them: a shorter settle time.
pub const SETTLE_TEXT: Duration = Duration::from_millis(300);

/// The stat of a regular file, or None (missing, a directory, a link).
pub fn stat(path: &Path) -> Option<Stat> {
    let m = std::fs::symlink_metadata(path).ok()?;
    if !m.is_file() {
        return None;
    }
    Some(Stat { size: m.len(), mtime_ns: mtime_ns(&m), inode: inode(&m) })
}

fn mtime_ns(m: &std::fs::Metadata) -> i128 {
    match m.modified() {
        Ok(t) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        },
        Err(_) => 0,
    }
}

#[cfg(unix)]
fn inode(m: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(m)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

/// How long ago the file was last modified (zero if in the future).
pub fn age(s: &Stat) -> Duration {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0);
    Duration::from_nanos((now - s.mtime_ns).clamp(0, u64::MAX as i128) as u64)
}

/// Whether a file may still be being written, so must not be sent yet: it changed within
/// `settle`, and it is not the file as the engine itself last recorded it (a file the engine
/// just landed is settled: nobody else wrote it since).
pub fn settling(st: &Stat, recorded: Option<&Stat>, settle: Duration) -> bool {
    recorded != Some(st) && age(st) < settle
}

/// A file cut into chunks as the server would, with its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    /// `(id, offset, len)` of each chunk.
    pub chunks: Vec<(ChunkId, u64, u64)>,
    pub size: u64,
    pub sha256: [u8; 32],
    /// The first bytes (to sniff a media type).
    pub head: Vec<u8>,
}

/// Reads the file once: chunk ids and the SHA-256.
pub fn cut(path: &Path, params: ChunkParams) -> std::io::Result<Cut> {
    let mut f = std::fs::File::open(path)?;
    let mut chunker = Chunker::new(params);
    let mut chunks = Vec::new();
    let mut head = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < 512 {
            head.extend_from_slice(&buf[..n.min(512 - head.len())]);
        }
        for c in chunker.push(&buf[..n]) {
            chunks.push((c.id, c.offset, c.data.len() as u64));
        }
    }
    let (rest, summary) = chunker.finish();
    for c in rest {
        chunks.push((c.id, c.offset, c.data.len() as u64));
    }
    Ok(Cut { chunks, size: summary.len, sha256: summary.sha256, head })
}

/// SHA-256 of a file's bytes (hex).
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// SHA-256 of bytes (hex).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads `len` bytes at `offset`.
pub fn read_range(path: &Path, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Seek;
    let mut f = std::fs::File::open(path)?;
    f.seek(std::io::SeekFrom::Start(offset))?;
    let mut out = vec![0u8; len as usize];
    f.read_exact(&mut out)?;
    Ok(out)
}

/// A fresh temp file path next to `target` (same folder, so the rename is atomic).
pub fn temp_beside(target: &Path) -> PathBuf {
    let dir = target.parent().unwrap_or_else(|| Path::new("."));
    dir.join(format!("{TEMP_PREFIX}{:016x}", rand::random::<u64>()))
}

/// An open temp file that becomes `target` on [`Landing::commit`] and disappears otherwise.
pub struct Landing {
    pub temp: PathBuf,
    file: Option<std::fs::File>,
}

impl Landing {
    /// Creates the temp file (and the target's folders).
    pub fn create(target: &Path) -> std::io::Result<Landing> {
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let temp = temp_beside(target);
        let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temp)?;
        Ok(Landing { temp, file: Some(file) })
    }

    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.file {
            Some(f) => f.write_all(bytes),
            None => Err(std::io::Error::other("landing already closed")),
        }
    }

    /// Syncs the temp file and closes it; the content is then durable under the temp name.
    pub fn finish(&mut self) -> std::io::Result<()> {
        if let Some(f) = self.file.take() {
            f.sync_all()?;
        }
        Ok(())
    }

    /// Puts the (finished) temp file at `target` only if the file there is still `expect`
    /// (`None`: no file), and says whether it did. Checking first and renaming after leaves a
    /// window in which a local save is overwritten and lost; so on Linux the two files are
    /// swapped atomically (`renameat2(RENAME_EXCHANGE)`, or `RENAME_NOREPLACE` where no file
    /// was), and the file that comes out is checked: if someone wrote to it (in place, or by
    /// renaming their own file over it) since `expect` was taken, they are swapped back and
    /// nothing is lost. Elsewhere: check, then rename.
    pub fn commit_if_unchanged(mut self, target: &Path, expect: Option<Stat>) -> std::io::Result<bool> {
        self.finish()?;
        let landed = swap_in(&self.temp, target, expect)?;
        if landed {
            self.temp = PathBuf::new();
            sync_parent(target);
        }
        Ok(landed)
    }

    /// Renames the (finished) temp file over `target` and syncs the folder.
    pub fn commit(mut self, target: &Path) -> std::io::Result<()> {
        self.finish()?;
        std::fs::rename(&self.temp, target)?;
        self.temp = PathBuf::new();
        if let Some(dir) = target.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Writes `bytes` to `target` atomically.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut l = Landing::create(target)?;
    l.write(bytes)?;
    l.commit(target)
}

fn sync_parent(target: &Path) {
    if let Some(dir) = target.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// `temp` becomes `target` if `target` is still `expect`; true when it did. See
/// [`Landing::commit_if_unchanged`].
#[cfg(target_os = "linux")]
fn swap_in(temp: &Path, target: &Path, expect: Option<Stat>) -> std::io::Result<bool> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    let Some(expect) = expect else {
        return match renameat_with(CWD, temp, CWD, target, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::EXIST) => Ok(false),
            Err(e) => Err(e.into()),
        };
    };
    match renameat_with(CWD, temp, CWD, target, RenameFlags::EXCHANGE) {
        Ok(()) => {}
        // The file is gone (deleted locally meanwhile): that is a local change too.
        Err(rustix::io::Errno::NOENT) => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    // `temp` now names what was at `target`.
    if stat(temp) == Some(expect) {
        std::fs::remove_file(temp)?;
        return Ok(true);
    }
    renameat_with(CWD, temp, CWD, target, RenameFlags::EXCHANGE)?;
    Ok(false)
}

#[cfg(not(target_os = "linux"))]
fn swap_in(temp: &Path, target: &Path, expect: Option<Stat>) -> std::io::Result<bool> {
    if stat(target) != expect {
        return Ok(false);
    }
    std::fs::rename(temp, target)?;
    Ok(true)
}

/// Removes the engine's temp files left by a crash (anywhere under `root`).
pub fn remove_temps(root: &Path) {
    for entry in walk(root) {
        if entry.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(TEMP_PREFIX)) {
            let _ = std::fs::remove_file(&entry);
        }
    }
}

/// Every regular file under `root` (no symlinks followed).
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

/// Removes empty folders from `dir` up to (not including) `root`.
pub fn prune_empty_dirs(root: &Path, mut dir: Option<&Path>) {
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) {
            break;
        }
        if std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Makes a file read-only (a read-only token) or writable again.
pub fn set_readonly(path: &Path, readonly: bool) {
    if let Ok(m) = std::fs::metadata(path) {
        let mut p = m.permissions();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = p.mode();
            p.set_mode(if readonly { mode & !0o222 } else { mode | 0o200 });
        }
        #[cfg(not(unix))]
        p.set_readonly(readonly);
        let _ = std::fs::set_permissions(path, p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_landing_never_replaces_a_file_changed_since_it_was_looked_at() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.txt");
        std::fs::write(&target, "old").unwrap();
        let seen = stat(&target);
        // Unchanged: lands.
        let mut l = Landing::create(&target).unwrap();
        l.write(b"server").unwrap();
        assert!(l.commit_if_unchanged(&target, seen).unwrap());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "server");
        // Written in place after it was looked at: kept, the landing dropped.
        let seen = stat(&target);
        let mut l = Landing::create(&target).unwrap();
        l.write(b"server 2").unwrap();
        std::fs::write(&target, "a local save, longer").unwrap();
        assert!(!l.commit_if_unchanged(&target, seen).unwrap());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "a local save, longer");
        // Replaced by an editor's rename: kept.
        let seen = stat(&target);
        let mut l = Landing::create(&target).unwrap();
        l.write(b"server 3").unwrap();
        std::fs::write(dir.path().join("editor.tmp"), "renamed save").unwrap();
        std::fs::rename(dir.path().join("editor.tmp"), &target).unwrap();
        assert!(!l.commit_if_unchanged(&target, seen).unwrap());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "renamed save");
        // A file created where there was none: kept.
        let fresh = dir.path().join("b.txt");
        let mut l = Landing::create(&fresh).unwrap();
        l.write(b"server").unwrap();
        std::fs::write(&fresh, "local").unwrap();
        assert!(!l.commit_if_unchanged(&fresh, None).unwrap());
        assert_eq!(std::fs::read_to_string(&fresh).unwrap(), "local");
        // No temp file is left behind.
        let temps = walk(dir.path()).into_iter().filter(|p| p.to_string_lossy().contains(TEMP_PREFIX)).count();
        assert_eq!(temps, 0);
    }

    #[test]
    fn atomic_writes_leave_no_temp_and_cut_matches_the_server_chunker() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/a.bin");
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        write_atomic(&target, &bytes).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), bytes);
        assert_eq!(walk(dir.path()), vec![target.clone()]);
        let params = ChunkParams::new(16 * 1024, 64 * 1024, 256 * 1024).unwrap();
        let c = cut(&target, params).unwrap();
        let (chunks, summary) = crate::chunks::chunker::chunk_all(params, &bytes);
        assert_eq!(c.chunks.iter().map(|c| c.0).collect::<Vec<_>>(), chunks.iter().map(|c| c.id).collect::<Vec<_>>());
        assert_eq!((c.size, c.sha256), (summary.len, summary.sha256));
        assert_eq!(sha256_file(&target).unwrap(), hex::encode(summary.sha256));
        let s = stat(&target).unwrap();
        assert_eq!(s.size, bytes.len() as u64);
        assert!(age(&s) < Duration::from_secs(60));
    }

    #[test]
    fn a_fresh_file_settles_unless_it_is_the_one_the_engine_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        std::fs::write(&p, b"x").unwrap();
        let st = stat(&p).unwrap();
        assert!(settling(&st, None, SETTLE));
        assert!(settling(&st, Some(&Stat { size: 9, ..st }), SETTLE));
        assert!(!settling(&st, Some(&st), SETTLE), "the engine's own landing is not being written");
        assert!(!settling(&st, None, Duration::ZERO));
    }

    #[test]
    fn an_abandoned_landing_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a");
        {
            let mut l = Landing::create(&target).unwrap();
            l.write(b"half").unwrap();
        }
        assert!(walk(dir.path()).is_empty());
    }
}
