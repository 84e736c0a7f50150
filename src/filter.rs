//! Exclude patterns (`--exclude`, `--exclude-from`), with the rules rsync and .gitignore users know:
//! a pattern without a slash matches a name at any depth (`*.log`), a trailing slash matches
//! folders only (`cache/`), and a pattern with a slash inside matches the whole relative path
//! (`**/tmp`, `/build`, `docs/*.pdf`).

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// A bad exclude pattern or an unreadable exclude file.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("invalid exclude pattern {pattern:?}: {reason}")]
    Pattern { pattern: String, reason: String },
    #[error("cannot read exclude file {}: {source}; check the --exclude-from path", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Compiled exclude patterns.
#[derive(Debug, Clone)]
pub struct Filter {
    any_name: GlobSet,
    any_path: GlobSet,
    dir_name: GlobSet,
    dir_path: GlobSet,
}

impl Default for Filter {
    fn default() -> Self {
        Filter::new(&[]).expect("an empty pattern list always compiles")
    }
}

impl Filter {
    /// Compiles `patterns`.
    pub fn new(patterns: &[String]) -> Result<Filter, FilterError> {
        let mut sets = [(); 4].map(|_| GlobSetBuilder::new());
        for raw in patterns {
            let (pattern, dir_only) = match raw.strip_suffix('/') {
                Some(p) => (p, true),
                None => (raw.as_str(), false),
            };
            let (pattern, anchored) = match pattern.strip_prefix('/') {
                Some(p) => (p, true),
                None => (pattern, pattern.contains('/')),
            };
            if pattern.is_empty() {
                return Err(FilterError::Pattern {
                    pattern: raw.clone(),
                    reason: "it matches nothing".into(),
                });
            }
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| FilterError::Pattern {
                    pattern: raw.clone(),
                    reason: e.kind().to_string(),
                })?;
            sets[usize::from(dir_only) * 2 + usize::from(anchored)].add(glob);
        }
        let [any_name, any_path, dir_name, dir_path] = sets.map(|b| {
            b.build()
                .expect("globs that compiled one by one compile together")
        });
        Ok(Filter {
            any_name,
            any_path,
            dir_name,
            dir_path,
        })
    }

    /// Patterns from `--exclude-from` files: one per line, blank lines and `#` comments skipped.
    pub fn read_pattern_file(path: &Path) -> Result<Vec<String>, FilterError> {
        let text = std::fs::read_to_string(path).map_err(|source| FilterError::File {
            path: path.to_owned(),
            source,
        })?;
        Ok(text
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect())
    }

    /// Whether the entry at `rel` ('/'-separated, relative to the sync root) is excluded.
    pub fn is_excluded(&self, rel: &str, is_dir: bool) -> bool {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        self.any_name.is_match(name)
            || self.any_path.is_match(rel)
            || (is_dir && (self.dir_name.is_match(name) || self.dir_path.is_match(rel)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(patterns: &[&str]) -> Filter {
        Filter::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn name_pattern_matches_at_any_depth() {
        let f = filter(&["*.log"]);
        assert!(f.is_excluded("a.log", false));
        assert!(f.is_excluded("deep/down/b.log", false));
        assert!(!f.is_excluded("a.log.txt", false));
    }

    #[test]
    fn trailing_slash_matches_folders_only() {
        let f = filter(&["cache/"]);
        assert!(f.is_excluded("cache", true));
        assert!(f.is_excluded("x/cache", true));
        assert!(!f.is_excluded("cache", false));
    }

    #[test]
    fn double_star_matches_any_depth_including_root() {
        let f = filter(&["**/tmp"]);
        assert!(f.is_excluded("tmp", true));
        assert!(f.is_excluded("a/b/tmp", false));
        assert!(!f.is_excluded("a/tmpx", false));
    }

    #[test]
    fn slash_inside_anchors_to_the_root() {
        let f = filter(&["docs/*.pdf", "/build"]);
        assert!(f.is_excluded("docs/a.pdf", false));
        assert!(!f.is_excluded("x/docs/a.pdf", false));
        assert!(!f.is_excluded("docs/sub/a.pdf", false));
        assert!(f.is_excluded("build", true));
        assert!(!f.is_excluded("src/build", true));
    }

    #[test]
    fn bad_pattern_is_a_clear_error() {
        let err = Filter::new(&["a[".to_string()]).unwrap_err();
        assert!(err.to_string().contains("invalid exclude pattern \"a[\""));
    }

    #[test]
    fn pattern_file_skips_comments_and_blanks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ex");
        std::fs::write(&path, "# comment\n*.log\n\ncache/\n").unwrap();
        assert_eq!(
            Filter::read_pattern_file(&path).unwrap(),
            ["*.log", "cache/"]
        );
    }
}
