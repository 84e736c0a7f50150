//! What the user sees: one line per change made, failures, and the final summary (as text, or
//! as one JSON object with `--json`). Writes errors on a closed pipe off silently.
//!
//! Everything printed here (and the log lines, through [`crate::log::LogWriter`]) goes through
//! [`escape_controls`]: server replies and remote names are untrusted, and local names may hold
//! newlines, so none of it reaches the terminal raw and every message stays on one line.
//! While the progress display is up, all of it is printed above the display (see
//! [`above`]).

use std::borrow::Cow;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use crate::colour;
use crate::exit_codes::ExitCode;
use crate::progress::display::above;

/// How much to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct OutputMode {
    /// Print only errors.
    pub(crate) quiet: bool,
    /// Summary as JSON on stdout; change lines go to stderr.
    pub(crate) json: bool,
}

/// A path that could not be mirrored, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) path: String,
    pub(crate) error: String,
}

/// The version of the `--json` summary's layout: raised when a field changes meaning or goes.
pub(crate) const JSON_VERSION: u32 = 2;

/// One change the run made (or, dry, would make), as `--json` lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Change {
    /// `"mkdir"`, `"upload"` or `"delete"`.
    pub(crate) action: &'static str,
    /// Relative to the remote folder; a folder's ends with `/`.
    pub(crate) path: String,
    /// Uploads: the bytes sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) bytes: Option<u64>,
}

/// What one run did on the server.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub(crate) struct Summary {
    /// [`JSON_VERSION`].
    pub(crate) version: u32,
    pub(crate) target: String,
    /// `"push"`, or `"pull"` (the URL first: `target` is then the local folder).
    pub(crate) direction: &'static str,
    pub(crate) dry_run: bool,
    pub(crate) folders_created: u64,
    pub(crate) files_uploaded: u64,
    pub(crate) bytes_uploaded: u64,
    /// A pull: the files and bytes received.
    pub(crate) files_downloaded: u64,
    pub(crate) bytes_downloaded: u64,
    pub(crate) deleted: u64,
    pub(crate) unchanged: u64,
    pub(crate) failed: u64,
    pub(crate) failures: Vec<Failure>,
    /// What was done, sorted by action then path (the same order in a dry run).
    pub(crate) changes: Vec<Change>,
    /// Remote entries ignored because their names are unsafe or unreadable.
    pub(crate) skipped_remote: u64,
    /// How files on both sides were compared: `"time"`, or `"checksum"` (`--checksum`).
    pub(crate) compare: &'static str,
    /// `--checksum`: files compared by hash (with the manifest's, or the server's).
    pub(crate) compared_by_hash: u64,
    /// `--checksum`: files changed or removed on the server since ftpsync uploaded them, and
    /// uploaded again.
    pub(crate) drift_repaired: u64,
    /// `--checksum`: the manifest on the server was written.
    pub(crate) manifest_written: bool,
    /// `--backup-dir`: files moved to the backup before they were replaced or deleted (dry:
    /// that would be).
    pub(crate) backed_up: u64,
    /// `--backup-dir`: this run's dated folder, as FTP commands name it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) backup_dir: Option<String>,
    /// Set when a password went over an unencrypted connection to a host that is not local.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) warning: Option<String>,
    /// The cycle number, in periodic and watch modes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cycle: Option<u64>,
    pub(crate) interrupted: bool,
    pub(crate) elapsed_secs: f64,
    pub(crate) bytes_per_sec: f64,
    pub(crate) exit_code: u8,
}

impl Summary {
    /// The exit code of the run this summary tells (`exit_code` is its number).
    pub(crate) fn outcome(&self) -> ExitCode {
        ExitCode::of_run(self.interrupted, self.failed as usize)
    }
}

/// Prints changes as they happen.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reporter {
    mode: OutputMode,
}

impl Reporter {
    pub(crate) fn new(mode: OutputMode) -> Self {
        Reporter { mode }
    }

    /// A change made (or, in a dry run, to be made): its line (see
    /// [`crate::engine::plan::change_line`]).
    pub(crate) fn change(&self, line: &str) {
        tracing::info!("{line}");
        if self.mode.quiet {
            return;
        }
        above(|| {
            if self.mode.json {
                let line = colour::change(line, colour::Stream::Stderr);
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            } else {
                let line = colour::change(line, colour::Stream::Stdout);
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
        });
    }

    /// A path that failed; always shown, on stderr.
    pub(crate) fn failure(&self, failure: &Failure) {
        let line = failure_line(failure);
        let line = colour::failure(&line);
        let _ = above(|| writeln!(std::io::stderr().lock(), "{line}"));
    }

    /// Something worth knowing that is not a failure.
    pub(crate) fn notice(&self, message: &str) {
        if !self.mode.quiet {
            print_error_line(message);
        }
    }

    /// An error that ends the run with `code`: one line on stderr, even with `--quiet`; with
    /// `--json`, also `{"error": ..., "exit_code": ...}` on stdout, so that a script reading
    /// stdout always gets one JSON object.
    pub(crate) fn fatal(&self, message: &str, code: ExitCode) {
        print_error_line(message);
        if self.mode.json {
            print_json_line(&serde_json::json!({ "error": message, "exit_code": code.code() }));
        }
    }

    /// A periodic cycle that failed as a whole (the next one will try again): a notice, and with
    /// `--json` the object `{"cycle": N, "error": ...}` on stdout in place of its summary.
    pub(crate) fn cycle_failed(&self, cycle: u64, message: &str) {
        if self.mode.json {
            print_json_line(&serde_json::json!({ "cycle": cycle, "error": message }));
        }
        self.notice(&format!(
            "cycle {cycle} failed: {message}; trying again next cycle"
        ));
    }

    /// The end-of-run summary.
    pub(crate) fn summary(&self, s: &Summary) {
        tracing::info!("{}", summary_line(s));
        if self.mode.json {
            print_json_line(s);
        } else if !self.mode.quiet {
            let line = summary_line(s);
            let _ = above(|| writeln!(std::io::stdout().lock(), "{line}"));
        }
    }
}

/// Writes `value` to stdout as one JSON line: every JSON object ftpsync prints goes out here.
fn print_json_line(value: &impl Serialize) {
    let line = json_line(value);
    let _ = above(|| writeln!(std::io::stdout().lock(), "{line}"));
}

/// `value` as compact JSON with the characters a terminal or a reader could act on escaped as
/// `\uXXXX`: serde_json escapes only C0, so DEL, C1 (the 8-bit CSI 0x9b) and the bidi
/// controls from server text would otherwise reach whoever `cat`s the output raw. Those
/// characters can only occur inside JSON strings, where `\uXXXX` decodes to the same text.
fn json_line(value: &impl Serialize) -> String {
    let json = serde_json::to_string(value).expect("plain data serializes");
    if !json.chars().any(needs_escape) {
        return json;
    }
    let mut escaped = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if needs_escape(c) {
            // Outside the BMP nothing needs escaping, so one \uXXXX is always enough.
            let _ = write!(escaped, "\\u{:04x}", c as u32);
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// Prints `ftpsync: MESSAGE` on stderr as one line, control characters escaped; a closed stderr
/// is ignored.
pub(crate) fn print_error_line(message: &str) {
    let message = escape_controls(message);
    let _ = above(|| writeln!(std::io::stderr().lock(), "ftpsync: {message}"));
}

/// `text` safe to show on a terminal, on one line: control characters (C0, DEL, C1) and the
/// invisible bidirectional-text controls are written as escapes (`\x1b`, `\0`, `\n`,
/// `\u{85}`), so that text from a server or a file name cannot retitle the window, clear the
/// screen, forge a line or reorder what is shown. Printable text, non-ASCII included, is kept.
pub(crate) fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\0' => escaped.push_str("\\0"),
            '\t' => escaped.push_str("\\t"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            c if needs_escape(c) && (c as u32) < 0x80 => {
                let _ = write!(escaped, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(escaped, "\\u{{{:x}}}", c as u32);
            }
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

fn needs_escape(c: char) -> bool {
    // The bidirectional marks, embeddings, overrides and isolates: invisible, and able to make a
    // name read differently from what it is.
    const BIDI: [char; 12] = [
        '\u{61c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}',
        '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
    ];
    c.is_control() || BIDI.contains(&c)
}

/// Longest user-supplied value (a URL, a path, an argument) repeated whole in an error message.
pub(crate) const MAX_ECHOED_CHARS: usize = 80;

/// `text` cut to [`MAX_ECHOED_CHARS`] characters, ending in "…" when cut: an error repeating a
/// 100,000-character argument would bury what it says.
pub(crate) fn shorten(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(MAX_ECHOED_CHARS) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let keep: String = text.chars().take(MAX_ECHOED_CHARS - 1).collect();
            Cow::Owned(format!("{keep}…"))
        }
    }
}

/// The one line that tells the user why the run stopped: the error and its causes, each cause
/// once (an error that already quotes its cause is not followed by it again), with every long
/// command-line argument in it shortened.
pub(crate) fn error_line(error: &anyhow::Error, args: &[OsString]) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    shorten_arguments(&line, args)
}

/// `message` with every command-line argument longer than [`MAX_ECHOED_CHARS`] shortened.
pub(crate) fn shorten_arguments(message: &str, args: &[OsString]) -> String {
    let mut message = message.to_owned();
    for arg in args {
        let arg = arg.to_string_lossy();
        if arg.chars().count() > MAX_ECHOED_CHARS && message.contains(arg.as_ref()) {
            message = message.replace(arg.as_ref(), &shorten(&arg));
        }
    }
    message
}

fn shown(rel: &str) -> &str {
    if rel.is_empty() {
        "."
    } else {
        rel
    }
}

/// `ftpsync: failed: PATH: ERROR`, escaped for the terminal (the error often quotes the server).
pub(crate) fn failure_line(failure: &Failure) -> String {
    let line = format!(
        "ftpsync: failed: {}: {}",
        shown(&failure.path),
        failure.error
    );
    escape_controls(&line).into_owned()
}

/// The one-line summary, escaped for the terminal.
/// "1 file", "2 files".
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

pub(crate) fn summary_line(s: &Summary) -> String {
    let elapsed = human_duration(Duration::from_secs_f64(s.elapsed_secs));
    let (created, deleted) = (s.folders_created, s.deleted);
    let (verb, moved, bytes) = match s.direction {
        "pull" => ("download", s.files_downloaded, s.bytes_downloaded),
        _ => ("upload", s.files_uploaded, s.bytes_uploaded),
    };
    let (unchanged, failed) = (s.unchanged, s.failed);
    let (folders, files) = (count(created, "folder"), count(moved, "file"));
    let mut line = if s.dry_run {
        let bytes = human_bytes(bytes);
        format!("dry run: would create {folders}, {verb} {files} ({bytes}), delete {deleted}; {unchanged} unchanged, {failed} failed in {elapsed}")
    } else {
        let shown = human_bytes(bytes);
        format!("{folders} created, {files} {verb}ed ({shown}), {deleted} deleted, {unchanged} unchanged, {failed} failed in {elapsed}")
    };
    if !s.dry_run && bytes > 0 {
        line.push_str(&format!(" ({}/s)", human_bytes(s.bytes_per_sec as u64)));
    }
    if let Some(dir) = s.backup_dir.as_ref().filter(|_| s.backed_up > 0) {
        let files = count(s.backed_up, "file");
        match s.dry_run {
            true => line.push_str(&format!("; would back up {files} to {dir}/")),
            false => line.push_str(&format!("; {files} backed up to {dir}/")),
        }
    }
    if s.drift_repaired > 0 {
        let files = count(s.drift_repaired, "file");
        line.push_str(&format!("; {files} changed on the server put back"));
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
    escape_controls(&line).into_owned()
}

/// 999 B, 12.3 KiB, 4.0 MiB, ...
pub(crate) fn human_bytes(n: u64) -> String {
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
    use crate::engine::plan::{change_line, Op};

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

    #[test]
    fn one_of_a_kind_is_singular() {
        let s = Summary {
            folders_created: 1,
            files_uploaded: 1,
            bytes_uploaded: 5,
            elapsed_secs: 1.0,
            bytes_per_sec: 5.0,
            ..Summary::default()
        };
        assert!(
            summary_line(&s).starts_with("1 folder created, 1 file uploaded (5 B),"),
            "{}",
            summary_line(&s)
        );
        let dry = Summary { dry_run: true, ..s };
        assert!(summary_line(&dry).starts_with("dry run: would create 1 folder, upload 1 file ("));
    }

    #[test]
    fn control_characters_from_a_server_reply_are_shown_escaped() {
        let reply = "530 \x1b]0;pwned\x07\x1b[2J bad\0";
        assert_eq!(escape_controls(reply), r"530 \x1b]0;pwned\x07\x1b[2J bad\0");
        assert_eq!(
            escape_controls("a\nb\rc\td\x7fe\u{85}f\u{202e}g"),
            r"a\nb\rc\td\x7fe\u{85}f\u{202e}g"
        );
    }

    #[test]
    fn names_and_replies_in_printed_lines_are_escaped() {
        let remote = Op::DeleteFile("evil\x1b[2J\nname".into());
        assert_eq!(change_line(&remote), r"- evil\x1b[2J\nname");
        let failure = Failure {
            path: "a\nb".into(),
            error: "550 \x1b]0;pwned\x07".into(),
        };
        assert_eq!(
            failure_line(&failure),
            r"ftpsync: failed: a\nb: 550 \x1b]0;pwned\x07"
        );
        let s = Summary {
            warning: Some("host\r\x1b[1A".into()),
            ..Summary::default()
        };
        assert!(
            summary_line(&s).ends_with(r"; host\r\x1b[1A"),
            "{}",
            summary_line(&s)
        );
    }

    #[test]
    fn printable_text_is_kept_as_is_without_copying() {
        for text in ["plain", "café/日本語 ✓", r"C:\path\x1b stays"] {
            assert!(matches!(escape_controls(text), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn long_values_are_shortened_with_an_ellipsis() {
        let host = "h".repeat(100_000);
        let short = shorten(&host);
        assert_eq!(short.chars().count(), MAX_ECHOED_CHARS);
        assert!(short.ends_with("h…"), "{short}");
        let exact = "é".repeat(MAX_ECHOED_CHARS);
        assert_eq!(shorten(&exact), exact, "at the limit nothing is cut");
    }

    #[test]
    fn an_error_line_names_each_cause_once_and_shortens_long_arguments() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let quoting = anyhow::Error::new(io).context("cannot read x: no such file");
        let error = quoting.context("setting up");
        assert_eq!(
            error_line(&error, &[]),
            "setting up: cannot read x: no such file"
        );
        let long = "p".repeat(500);
        let error = anyhow::anyhow!("{long} does not exist");
        let line = error_line(&error, &["ftpsync".into(), long.clone().into()]);
        assert_eq!(line, format!("{} does not exist", shorten(&long)));
    }

    #[test]
    fn json_lines_escape_del_c1_and_bidi_controls_and_decode_to_the_same_text() {
        let text = "\u{9b}[2J\u{7f}\u{202e}";
        let line = json_line(&serde_json::json!({ "error": text }));
        assert_eq!(line, r#"{"error":"\u009b[2J\u007f\u202e"}"#);
        assert!(
            line.chars().all(|c| c.is_ascii() && !c.is_ascii_control()),
            "{line}"
        );
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["error"], text);
        let plain = Summary {
            target: "café ✓".into(),
            ..Summary::default()
        };
        assert_eq!(json_line(&plain), serde_json::to_string(&plain).unwrap());
    }
}
