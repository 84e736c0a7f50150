//! Which local paths are left out (`--exclude`, `--exclude-from`, `--include`), with the rules
//! .gitignore users know, read by the `ignore` crate's gitignore matcher: a pattern without a
//! slash matches a name at any depth (`*.log`), a trailing slash matches folders only
//! (`cache/`), a pattern with a slash inside matches the whole relative path (`**/tmp`, `/build`,
//! `docs/*.pdf`), and among the exclude patterns the last one that matches decides, so that
//! `!keep.log` after `*.log` keeps that file. An `--include` pattern that matches keeps the path
//! whatever the excludes say (as rsync does with the includes written first).

use std::io::Read;
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::gitignore::{NestedGitignore, Verdict};

/// A bad exclude pattern or an unreadable exclude file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FilterError {
    #[error("invalid pattern {pattern:?}: {reason}")]
    Pattern { pattern: String, reason: String },
    // The I/O error is part of the message, not a `source`: a source would be printed again after it.
    #[error("cannot read exclude file {}: {error}; check the --exclude-from path", path.display())]
    File {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("exclude file {} is larger than {} MiB; is it the right file?", path.display(), MAX_PATTERN_FILE_BYTES >> 20)]
    TooLarge { path: PathBuf },
    #[error("exclude file {} is not UTF-8 text; save it as UTF-8", path.display())]
    NotUtf8 { path: PathBuf },
    #[error("{count} exclude patterns given; at most {MAX_PATTERNS} are supported")]
    TooMany { count: usize },
    #[error("--exclude-from {} has {count} patterns{}; at most {MAX_PATTERNS} are supported",
        path.display(),
        if *before > 0 { format!(", with {before} before it") } else { String::new() })]
    TooManyInFile {
        path: PathBuf,
        count: usize,
        before: usize,
    },
}

/// Largest `--exclude-from` file read: far beyond any real list of globs, and small enough that
/// naming a device or a huge file by mistake (`/dev/zero`, a disk image) fails at once.
pub(crate) const MAX_PATTERN_FILE_BYTES: u64 = 4 << 20;

/// Most exclude patterns (`--exclude` and `--exclude-from` lines together). globset's cost grows
/// with the count, in building and in every match. Measured in a release build (2 shared cores):
/// 1,000 patterns like `**/xN/**/*.tmp` build in 21 ms and match 10,000 paths in 0.37 s
/// (37 µs a path) with an 18 MB peak for the whole process; 2,000 take 0.75 s and 33 MB, and
/// 20,000 took 107 s and 522 MB. Real lists hold tens of patterns: 1,000 leaves room for them
/// and keeps a few thousand paths well under a second.
pub(crate) const MAX_PATTERNS: usize = 1000;

/// Compiled patterns.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    excludes: Gitignore,
    includes: Gitignore,
    /// `--gitignore`: the `.gitignore` files of the local tree.
    nested: Option<NestedGitignore>,
}

impl Default for Filter {
    fn default() -> Self {
        Filter::new(&[], &[]).expect("empty pattern lists always compile")
    }
}

impl Filter {
    /// Compiles the exclude patterns (in order: the last match decides; `!pattern` keeps) and
    /// the include patterns (any match keeps).
    pub(crate) fn new(excludes: &[String], includes: &[String]) -> Result<Filter, FilterError> {
        let count = excludes.len() + includes.len();
        if count > MAX_PATTERNS {
            return Err(FilterError::TooMany { count });
        }
        Ok(Filter {
            excludes: compile(excludes)?,
            includes: compile(includes)?,
            nested: None,
        })
    }

    /// The same, also honouring the `.gitignore` files inside the local tree at `root`.
    pub(crate) fn with_gitignore(self, root: std::path::PathBuf) -> Filter {
        Filter {
            nested: Some(NestedGitignore::new(root)),
            ..self
        }
    }

    /// Patterns from `--exclude-from` files: one per line, blank lines and `#` comments skipped.
    /// `before` patterns come before them: more than [`MAX_PATTERNS`] in all are refused, and
    /// only those that fit are kept while counting the rest.
    pub(crate) fn read_pattern_file(
        path: &Path,
        before: usize,
    ) -> Result<Vec<String>, FilterError> {
        let file_error = |error| FilterError::File {
            path: path.to_owned(),
            error,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| {
                file.take(MAX_PATTERN_FILE_BYTES + 1)
                    .read_to_end(&mut bytes)
            })
            .map_err(file_error)?;
        if bytes.len() as u64 > MAX_PATTERN_FILE_BYTES {
            return Err(FilterError::TooLarge {
                path: path.to_owned(),
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| FilterError::NotUtf8 {
            path: path.to_owned(),
        })?;
        let mut lines = text
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        let room = MAX_PATTERNS.saturating_sub(before);
        let patterns: Vec<String> = lines.by_ref().take(room).map(String::from).collect();
        let rest = lines.count();
        if rest > 0 {
            return Err(FilterError::TooManyInFile {
                path: path.to_owned(),
                count: patterns.len() + rest,
                before,
            });
        }
        Ok(patterns)
    }

    /// Whether the entry at `rel` ('/'-separated, relative to the sync root) is left out.
    pub(crate) fn is_excluded(&self, rel: &str, is_dir: bool) -> bool {
        if self.includes.matched(rel, is_dir).is_ignore() {
            return false;
        }
        self.excludes.matched(rel, is_dir).is_ignore()
            || self
                .nested
                .as_ref()
                .is_some_and(|g| g.verdict(rel, is_dir) == Verdict::Ignored)
    }
}

/// One gitignore-style matcher for `patterns`, each refused with its reason when it does not
/// compile or matches nothing.
fn compile(patterns: &[String]) -> Result<Gitignore, FilterError> {
    let mut builder = GitignoreBuilder::new("");
    builder.allow_unclosed_class(false);
    for raw in patterns {
        let bare = raw.trim_start_matches('!').trim_matches('/');
        if bare.is_empty() {
            return Err(FilterError::Pattern {
                pattern: raw.clone(),
                reason: "it matches nothing".into(),
            });
        }
        builder
            .add_line(None, raw)
            .map_err(|e| FilterError::Pattern {
                pattern: raw.clone(),
                reason: match e {
                    ignore::Error::Glob { err, .. } => err,
                    other => other.to_string(),
                },
            })?;
    }
    builder.build().map_err(|e| FilterError::Pattern {
        pattern: patterns.join(" "),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(patterns: &[&str]) -> Filter {
        Filter::new(
            &patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            &[],
        )
        .unwrap()
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
    fn a_negation_keeps_what_an_earlier_pattern_excluded_the_last_match_decides() {
        let f = filter(&["*.log", "!keep.log"]);
        assert!(f.is_excluded("a.log", false));
        assert!(!f.is_excluded("keep.log", false));
        assert!(!f.is_excluded("deep/keep.log", false));
        let again = filter(&["*.log", "!keep.log", "deep/*.log"]);
        assert!(
            again.is_excluded("deep/keep.log", false),
            "a later pattern wins"
        );
    }

    #[test]
    fn an_include_keeps_a_path_whatever_the_excludes_say() {
        let excludes = ["*".to_string()];
        let includes = ["*/".to_string(), "*.php".to_string()];
        let f = Filter::new(&excludes, &includes).unwrap();
        assert!(!f.is_excluded("index.php", false));
        assert!(
            !f.is_excluded("app", true),
            "folders kept to reach the files"
        );
        assert!(!f.is_excluded("app/x.php", false));
        assert!(f.is_excluded("app/x.css", false));
    }

    #[test]
    fn bad_pattern_is_a_clear_error() {
        let err = Filter::new(&["a[".to_string()], &[]).unwrap_err();
        assert!(err.to_string().contains("invalid pattern \"a[\""), "{err}");
    }

    #[test]
    fn pattern_file_skips_comments_and_blanks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ex");
        std::fs::write(&path, "# comment\n*.log\n\ncache/\n").unwrap();
        assert_eq!(
            Filter::read_pattern_file(&path, 0).unwrap(),
            ["*.log", "cache/"]
        );
    }

    #[test]
    fn a_missing_pattern_file_names_its_cause_once() {
        let error = Filter::read_pattern_file(Path::new("/no/such/excludes"), 0).unwrap_err();
        let line = crate::report::error_line(&anyhow::Error::new(error), &[]);
        assert_eq!(
            line.matches("No such file or directory").count(),
            1,
            "{line}"
        );
    }

    #[test]
    fn more_patterns_than_the_cap_are_refused_with_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ex");
        let lines: String = (0..MAX_PATTERNS).map(|i| format!("*.e{i}\n")).collect();
        std::fs::write(&path, &lines).unwrap();
        assert_eq!(
            Filter::read_pattern_file(&path, 0).unwrap().len(),
            MAX_PATTERNS
        );
        let error = Filter::read_pattern_file(&path, 2).unwrap_err();
        let expected = format!(
            "--exclude-from {} has {MAX_PATTERNS} patterns, with 2 before it; at most \
             {MAX_PATTERNS} are supported",
            path.display()
        );
        assert_eq!(error.to_string(), expected);
        let too_many = vec!["*.x".to_string(); MAX_PATTERNS + 1];
        assert!(matches!(
            Filter::new(&too_many, &[]),
            Err(FilterError::TooMany { count }) if count == MAX_PATTERNS + 1
        ));
    }

    #[test]
    fn a_pattern_file_past_the_limit_is_refused_without_reading_it_all() {
        let error = Filter::read_pattern_file(Path::new("/dev/zero"), 0).unwrap_err();
        assert!(matches!(error, FilterError::TooLarge { .. }), "{error}");
        assert!(error.to_string().contains("larger than 4 MiB"), "{error}");
    }
}
