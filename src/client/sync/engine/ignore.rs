//! Which paths are not synced: `.plaitignore` at the folder's root (gitignore syntax, through
//! the `ignore` crate) plus defaults nobody wants on another machine (editor swap and backup
//! files, OS junk, the engine's own temp files). Applied both ways: an ignored local file is
//! never sent, and an ignored server path is never written locally.

use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// The rules every folder has, before its `.plaitignore`.
pub const DEFAULTS: &[&str] = &[
    // vim, emacs, and the file vim creates to test that a folder is writable.
    "*.swp",
    "*.swo",
    "*.swx",
    "*~",
    ".#*",
    "#*#",
    "4913",
    // OS junk.
    ".DS_Store",
    "._*",
    "Thumbs.db",
    "desktop.ini",
    ".Trash-*",
    ".directory",
    // Our own temp files (fsio::TEMP_PREFIX).
    ".plait-tmp-*",
];

/// The file at the folder's root whose lines are added to the defaults.
pub const FILE_NAME: &str = ".plaitignore";

/// The compiled rules of one folder.
pub struct Ignore {
    rules: Gitignore,
}

impl Ignore {
    /// The defaults plus `root/.plaitignore` (if any). Bad lines in the file are skipped.
    pub fn load(root: &Path) -> Ignore {
        let mut b = GitignoreBuilder::new(root);
        for line in DEFAULTS {
            let _ = b.add_line(None, line);
        }
        let file = root.join(FILE_NAME);
        if let Ok(text) = std::fs::read_to_string(&file) {
            for line in text.lines() {
                let _ = b.add_line(Some(file.clone()), line);
            }
        }
        let rules = b.build().unwrap_or_else(|_| Gitignore::empty());
        Ignore { rules }
    }

    /// Whether `rel` (`/`-separated, relative to the folder) is ignored, itself or through one of
    /// its folders.
    pub fn is_ignored(&self, rel: &str) -> bool {
        if rel.is_empty() {
            return false;
        }
        self.rules.matched_path_or_any_parents(Path::new(rel), false).is_ignore()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_the_folder_rules_apply_to_paths_and_their_folders() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "build/\n*.log\n!keep.log\n").unwrap();
        let i = Ignore::load(dir.path());
        for p in [
            ".notes.md.swp",
            "a/b~",
            "a/.#x",
            "4913",
            ".DS_Store",
            "x/Thumbs.db",
            ".plait-tmp-12",
            "build/out.o",
            "a.log",
        ] {
            assert!(i.is_ignored(p), "{p}");
        }
        for p in ["notes.md", "keep.log", "builds.txt", ".plaitignore", "a/b.txt"] {
            assert!(!i.is_ignored(p), "{p}");
        }
    }
}
