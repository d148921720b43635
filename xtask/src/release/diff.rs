//! A small line diff for showing a planned file change (`release --dry-run`): unified-style
//! hunks with two lines of context.

use std::fmt::Write as _;

/// Lines of unchanged context shown around each change.
const CONTEXT: usize = 2;

/// One step from the old text to the new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Keep(usize, usize),
    Remove(usize),
    Add(usize),
}

/// The unified-style diff from `old` to `new` under the heading `--- name` / `+++ name`;
/// empty when they are equal.
pub(crate) fn unified(name: &str, old: &str, new: &str) -> String {
    let old: Vec<&str> = old.lines().collect();
    let new: Vec<&str> = new.lines().collect();
    let ops = line_ops(&old, &new);
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| !matches!(op, Op::Keep(..)))
        .map(|(index, _)| index)
        .collect();
    if changed.is_empty() {
        return String::new();
    }
    let mut out = format!("--- a/{name}\n+++ b/{name}\n");
    let mut shown_until = 0; // ops before this index are already printed
    let mut position = 0;
    while position < changed.len() {
        // A hunk spans changes whose context windows touch.
        let first = changed[position];
        let mut last = first;
        while position + 1 < changed.len() && changed[position + 1] <= last + 2 * CONTEXT + 1 {
            position += 1;
            last = changed[position];
        }
        position += 1;
        let start = first.saturating_sub(CONTEXT).max(shown_until);
        let end = (last + CONTEXT + 1).min(ops.len());
        let (old_line, new_line) = line_numbers_at(&ops, start);
        let hunk = &ops[start..end];
        let old_count = hunk.iter().filter(|op| !matches!(op, Op::Add(_))).count();
        let new_count = hunk
            .iter()
            .filter(|op| !matches!(op, Op::Remove(_)))
            .count();
        let _ = writeln!(out, "@@ -{old_line},{old_count} +{new_line},{new_count} @@");
        for op in hunk {
            let _ = match *op {
                Op::Keep(i, _) => writeln!(out, " {}", old[i]),
                Op::Remove(i) => writeln!(out, "-{}", old[i]),
                Op::Add(j) => writeln!(out, "+{}", new[j]),
            };
        }
        shown_until = end;
    }
    out
}

/// The 1-based old and new line numbers where the op at `index` starts.
fn line_numbers_at(ops: &[Op], index: usize) -> (usize, usize) {
    let (mut old, mut new) = (1, 1);
    for op in &ops[..index] {
        match op {
            Op::Keep(..) => {
                old += 1;
                new += 1;
            }
            Op::Remove(_) => old += 1,
            Op::Add(_) => new += 1,
        }
    }
    (old, new)
}

/// A shortest edit script by longest common subsequence (quadratic; planned files are small).
fn line_ops(old: &[&str], new: &[&str]) -> Vec<Op> {
    let (n, m) = (old.len(), new.len());
    // common[i][j]: LCS length of old[i..] and new[j..].
    let mut common = vec![vec![0_u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if old[i] == new[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let mut ops = Vec::with_capacity(n.max(m));
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && old[i] == new[j] {
            ops.push(Op::Keep(i, j));
            i += 1;
            j += 1;
        } else if i < n && (j == m || common[i + 1][j] >= common[i][j + 1]) {
            ops.push(Op::Remove(i));
            i += 1;
        } else {
            ops.push(Op::Add(j));
            j += 1;
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(unified("f", "a\nb\n", "a\nb\n"), "");
    }

    #[test]
    fn shows_changes_with_context_in_separate_hunks() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n";
        let new = "1\n2\nthree\n4\n5\n6\n7\n8\n9\n10\n11\n";
        assert_eq!(
            unified("f.txt", old, new),
            "--- a/f.txt\n+++ b/f.txt\n\
             @@ -1,5 +1,5 @@\n 1\n 2\n-3\n+three\n 4\n 5\n\
             @@ -9,2 +9,3 @@\n 9\n 10\n+11\n"
        );
    }

    #[test]
    fn nearby_changes_share_a_hunk() {
        let diff = unified("f", "a\nb\nc\nd\ne\n", "A\nb\nc\nd\nE\n");
        assert_eq!(diff.matches("@@").count(), 2, "one hunk header: {diff}");
        assert!(diff.contains("-a\n+A\n b\n c\n d\n-e\n+E\n"), "{diff}");
    }
}
