//! Differences between two texts: Braid patches (code point ranges against the old text) and
//! a unified line diff for people. Pure functions; no history involved.

use similar::{ChangeTag, DiffOp, TextDiff};

use crate::protocol::{Patch, TextRange};

/// The patches that turn `old` into `new`: sorted, non-overlapping, absolute against `old`,
/// in code points (what a PUT with `Parents: <old's version>` would carry).
pub fn patches_between(old: &str, new: &str) -> Vec<Patch> {
    let diff = TextDiff::from_chars(old, new);
    let new_chars: Vec<char> = new.chars().collect();
    let mut patches: Vec<Patch> = Vec::new();
    for op in diff.ops() {
        let (old_range, new_range) = match *op {
            DiffOp::Equal { .. } => continue,
            DiffOp::Delete { old_index, old_len, new_index } => (old_index..old_index + old_len, new_index..new_index),
            DiffOp::Insert { old_index, new_index, new_len } => (old_index..old_index, new_index..new_index + new_len),
            DiffOp::Replace { old_index, old_len, new_index, new_len } => {
                (old_index..old_index + old_len, new_index..new_index + new_len)
            }
        };
        let content: String = new_chars[new_range].iter().collect();
        // Adjacent operations (a delete next to an insert) become one patch.
        if let Some(last) = patches.last_mut() {
            if last.range.end == crate::protocol::Bound::FromStart(old_range.start as u64) {
                last.range.end = crate::protocol::Bound::FromStart(old_range.end as u64);
                last.content.push_str(&content);
                continue;
            }
        }
        patches.push(Patch { range: TextRange::absolute(old_range.start as u64, old_range.end as u64), content });
    }
    patches
}

/// A unified diff of `old` and `new` by lines, with 3 lines of context.
pub fn unified(old: &str, new: &str, old_label: &str, new_label: &str) -> String {
    let diff = TextDiff::from_lines(old, new);
    let mut out = String::new();
    out.push_str(&format!("--- {old_label}\n+++ {new_label}\n"));
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        out.push_str(&format!("{}\n", hunk.header()));
        for change in hunk.iter_changes() {
            let sign = match change.tag() {
                ChangeTag::Delete => '-',
                ChangeTag::Insert => '+',
                ChangeTag::Equal => ' ',
            };
            out.push(sign);
            out.push_str(change.value());
            if change.missing_newline() {
                out.push_str("\n\\ No newline at end of file\n");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn apply(old: &str, patches: &[Patch]) -> String {
        let chars: Vec<char> = old.chars().collect();
        let mut out = String::new();
        let mut at = 0;
        for p in patches {
            let (s, e) = p.range.resolve(chars.len() as u64).unwrap();
            assert!(s as usize >= at, "sorted and disjoint");
            out.extend(&chars[at..s as usize]);
            out.push_str(&p.content);
            at = e as usize;
        }
        out.extend(&chars[at..]);
        out
    }

    #[test]
    fn patches_turn_old_into_new() {
        let cases = [
            ("", ""),
            ("", "hello"),
            ("hello", ""),
            ("hello world", "hello brave new world"),
            ("a😀b\nsecond line\n", "a😀éb\nsecond\n"),
            ("the quick brown fox", "a quick red fox!"),
        ];
        for (old, new) in cases {
            let patches = patches_between(old, new);
            assert_eq!(apply(old, &patches), new, "{old:?} -> {new:?}: {patches:?}");
        }
        assert!(patches_between("same", "same").is_empty());
        // Code points, not bytes: the emoji counts as one.
        let p = patches_between("😀x", "😀y");
        assert_eq!(p, vec![Patch { range: TextRange::absolute(1, 2), content: "y".into() }]);
    }

    #[test]
    fn unified_diff_marks_lines() {
        let d = unified("one\ntwo\nthree\n", "one\n2\nthree\n", "a", "b");
        assert!(d.starts_with("--- a\n+++ b\n@@ "), "{d}");
        assert!(d.contains("\n-two\n+2\n"), "{d}");
        assert!(d.contains("\n one\n"), "{d}");
        assert_eq!(unified("x\n", "x\n", "a", "b"), "--- a\n+++ b\n");
    }
}
