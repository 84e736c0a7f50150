//! What the user sees: one line per change made, failures, and the final summary (as text, or
//! as one JSON object with `--json`). Writes errors on a closed pipe off silently.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use crate::plan::Op;

/// How much to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutputMode {
    /// Print only errors.
    pub quiet: bool,
    /// Summary as JSON on stdout; change lines go to stderr.
    pub json: bool,
}

/// A path that could not be mirrored, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Failure {
    pub path: String,
    pub error: String,
}

/// What one run did on the server.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    pub target: String,
    pub dry_run: bool,
    pub folders_created: u64,
    pub files_uploaded: u64,
    pub bytes_uploaded: u64,
    pub deleted: u64,
    pub unchanged: u64,
    pub failed: u64,
    pub failures: Vec<Failure>,
    /// Remote entries ignored because their names are unsafe or unreadable.
    pub skipped_remote: u64,
    /// Set when a password went over an unencrypted connection to a host that is not local.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// The cycle number, in periodic and watch modes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle: Option<u64>,
    pub interrupted: bool,
    pub elapsed_secs: f64,
    pub bytes_per_sec: f64,
    pub exit_code: u8,
}

/// Prints changes as they happen.
#[derive(Debug, Clone, Copy)]
pub struct Reporter {
    mode: OutputMode,
}

impl Reporter {
    pub fn new(mode: OutputMode) -> Self {
        Reporter { mode }
    }

    /// A change made (or, in a dry run, to be made).
    pub fn change(&self, op: &Op) {
        if self.mode.quiet {
            return;
        }
        let line = change_line(op);
        if self.mode.json {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        } else {
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
    }

    /// A path that failed; always shown, on stderr.
    pub fn failure(&self, failure: &Failure) {
        let _ = writeln!(
            std::io::stderr().lock(),
            "ftpsync: failed: {}: {}",
            shown(&failure.path),
            failure.error
        );
    }

    /// Something worth knowing that is not a failure.
    pub fn notice(&self, message: &str) {
        if !self.mode.quiet {
            let _ = writeln!(std::io::stderr().lock(), "ftpsync: {message}");
        }
    }

    /// The end-of-run summary.
    pub fn summary(&self, s: &Summary) {
        if self.mode.json {
            let json = serde_json::to_string(s).expect("summary serializes");
            let _ = writeln!(std::io::stdout().lock(), "{json}");
        } else if !self.mode.quiet {
            let _ = writeln!(std::io::stdout().lock(), "{}", summary_line(s));
        }
    }
}

fn shown(rel: &str) -> &str {
    if rel.is_empty() {
        "."
    } else {
        rel
    }
}

/// `+ dir/`, `> file (12.3 KiB)`, `- file`, `- dir/`.
pub fn change_line(op: &Op) -> String {
    match op {
        Op::MakeRoot => "+ ./".to_string(),
        Op::Mkdir(rel) => format!("+ {rel}/"),
        Op::Upload { rel, size, .. } => format!("> {rel} ({})", human_bytes(*size)),
        Op::DeleteFile(rel) => format!("- {rel}"),
        Op::RemoveDir(rel) => format!("- {rel}/"),
        Op::Cleanup(rel) => format!("- {rel} (leftover of an interrupted upload)"),
    }
}

/// The one-line summary.
pub fn summary_line(s: &Summary) -> String {
    let elapsed = human_duration(Duration::from_secs_f64(s.elapsed_secs));
    let (created, uploaded, deleted) = (s.folders_created, s.files_uploaded, s.deleted);
    let bytes = human_bytes(s.bytes_uploaded);
    let (unchanged, failed) = (s.unchanged, s.failed);
    let mut line = if s.dry_run {
        format!("dry run: would create {created} folders, upload {uploaded} files ({bytes}), delete {deleted}; {unchanged} unchanged, {failed} failed in {elapsed}")
    } else {
        format!("{created} folders created, {uploaded} files uploaded ({bytes}), {deleted} deleted, {unchanged} unchanged, {failed} failed in {elapsed}")
    };
    if !s.dry_run && s.bytes_uploaded > 0 {
        line.push_str(&format!(" ({}/s)", human_bytes(s.bytes_per_sec as u64)));
    }
    if s.interrupted {
        line.push_str("; interrupted");
    }
    if let Some(warning) = &s.warning {
        line.push_str("; ");
        line.push_str(warning);
    }
    if let Some(cycle) = s.cycle {
        line = format!("cycle {cycle}: {line}");
    }
    line
}

/// 999 B, 12.3 KiB, 4.0 MiB, ...
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.2} s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_lines_have_the_documented_shape() {
        assert_eq!(change_line(&Op::Mkdir("a/b".into())), "+ a/b/");
        let up = Op::Upload {
            rel: "a/f".into(),
            size: 12_595,
            mtime: 0,
        };
        assert_eq!(change_line(&up), "> a/f (12.3 KiB)");
        assert_eq!(change_line(&Op::DeleteFile("x".into())), "- x");
        assert_eq!(change_line(&Op::RemoveDir("d".into())), "- d/");
    }

    #[test]
    fn bytes_are_human_readable() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
    }

    #[test]
    fn summary_counts_everything() {
        let s = Summary {
            folders_created: 2,
            files_uploaded: 3,
            bytes_uploaded: 2048,
            deleted: 1,
            unchanged: 7,
            failed: 0,
            elapsed_secs: 1.5,
            bytes_per_sec: 1365.0,
            ..Summary::default()
        };
        assert_eq!(
            summary_line(&s),
            "2 folders created, 3 files uploaded (2.0 KiB), 1 deleted, 7 unchanged, 0 failed in 1.50 s (1.3 KiB/s)"
        );
    }
}
