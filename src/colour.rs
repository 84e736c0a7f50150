//! Colour, on a terminal only: the markers of the change lines (`+` green, `-` red), the level
//! of a log line (`WARN` yellow, `ERROR` red), and `failed` in a failure line.
//!
//! Decided once per stream when the run starts: a stream gets colour when it is a terminal,
//! `NO_COLOR` is unset or empty (<https://no-color.org>) and `TERM` is not `dumb`. Pipes, files
//! and the `--log-file` never get an escape sequence. Colour is added to text that is already
//! escaped (see [`crate::report::escape_controls`]), so the only escape sequences that reach a
//! terminal are the ones written here.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::io::IsTerminal;
use std::sync::OnceLock;

/// Where a line goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// Whether stdout and stderr get colour; unset (tests, before [`init`]) means no colour.
static ENABLED: OnceLock<(bool, bool)> = OnceLock::new();

/// Decides, from the environment and the two streams, where colour goes.
pub(crate) fn init() {
    let allowed = allowed(
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("TERM").as_deref(),
    );
    let _ = ENABLED.set((
        allowed && std::io::stdout().is_terminal(),
        allowed && std::io::stderr().is_terminal(),
    ));
}

/// Colour is allowed unless `NO_COLOR` holds something or the terminal says it is dumb.
fn allowed(no_color: Option<&OsStr>, term: Option<&OsStr>) -> bool {
    no_color.is_none_or(OsStr::is_empty) && term != Some(OsStr::new("dumb"))
}

fn enabled(stream: Stream) -> bool {
    match (ENABLED.get(), stream) {
        (Some(&(stdout, _)), Stream::Stdout) => stdout,
        (Some(&(_, stderr)), Stream::Stderr) => stderr,
        (None, _) => false,
    }
}

const RED: &str = "31";
const GREEN: &str = "32";
const YELLOW: &str = "33";
const BLUE: &str = "34";
const MAGENTA: &str = "35";
const DIM: &str = "2";

fn paint(code: &str, text: &str) -> String {
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// A change line (`+ dir/`, `> file (1 KiB)`, `- gone`) with its marker coloured.
pub(crate) fn change(line: &str, stream: Stream) -> Cow<'_, str> {
    if !enabled(stream) {
        return Cow::Borrowed(line);
    }
    change_painted(line)
}

fn change_painted(line: &str) -> Cow<'_, str> {
    let code = match line.as_bytes().first() {
        Some(b'+') => GREEN,
        Some(b'>') => BLUE,
        Some(b'-') => RED,
        _ => return Cow::Borrowed(line),
    };
    Cow::Owned(format!("{}{}", paint(code, &line[..1]), &line[1..]))
}

/// `ftpsync: failed: PATH: ERROR` with `failed` in red (stderr).
pub(crate) fn failure(line: &str) -> Cow<'_, str> {
    if !enabled(Stream::Stderr) {
        return Cow::Borrowed(line);
    }
    failure_painted(line)
}

fn failure_painted(line: &str) -> Cow<'_, str> {
    const FAILED: &str = "failed:";
    match line.split_once(FAILED) {
        Some((before, after)) => Cow::Owned(format!("{before}{}{after}", paint(RED, FAILED))),
        None => Cow::Borrowed(line),
    }
}

/// A log line on stderr (`TIME LEVEL message`): the time dimmed, the level in its colour.
pub(crate) fn log_line(line: &str) -> Cow<'_, str> {
    if !enabled(Stream::Stderr) {
        return Cow::Borrowed(line);
    }
    log_line_painted(line)
}

fn log_line_painted(line: &str) -> Cow<'_, str> {
    let Some((time, rest)) = line.split_once(' ') else {
        return Cow::Borrowed(line);
    };
    let level = rest.trim_start();
    let pad = &rest[..rest.len() - level.len()];
    let Some((word, message)) = level.split_once(' ') else {
        return Cow::Borrowed(line);
    };
    let code = match word {
        "ERROR" => RED,
        "WARN" => YELLOW,
        "INFO" => GREEN,
        "DEBUG" => BLUE,
        "TRACE" => MAGENTA,
        _ => return Cow::Borrowed(line),
    };
    Cow::Owned(format!(
        "{} {pad}{} {message}",
        paint(DIM, time),
        paint(code, word)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_with_a_value_or_a_dumb_terminal_turns_colour_off() {
        let on = |no_color: Option<&str>, term: Option<&str>| {
            allowed(no_color.map(OsStr::new), term.map(OsStr::new))
        };
        assert!(on(None, Some("xterm-256color")));
        assert!(on(None, None));
        assert!(on(Some(""), Some("xterm")), "an empty NO_COLOR is unset");
        assert!(!on(Some("1"), Some("xterm")));
        assert!(!on(Some("0"), Some("xterm")), "any value counts, even 0");
        assert!(!on(None, Some("dumb")));
    }

    #[test]
    fn change_lines_get_a_coloured_marker_and_nothing_else() {
        assert_eq!(change_painted("+ css/"), "\x1b[32m+\x1b[0m css/");
        assert_eq!(change_painted("- old.txt"), "\x1b[31m-\x1b[0m old.txt");
        assert_eq!(change_painted("> a (1 B)"), "\x1b[34m>\x1b[0m a (1 B)");
        assert_eq!(change_painted("created"), "created");
    }

    #[test]
    fn a_log_line_keeps_its_text_and_gets_its_level_coloured() {
        let line = "2026-11-30T12:11:00.584049Z  WARN run{worker=0}: slow server";
        assert_eq!(
            log_line_painted(line),
            "\x1b[2m2026-11-30T12:11:00.584049Z\x1b[0m  \x1b[33mWARN\x1b[0m run{worker=0}: slow server"
        );
        let line = "2026-11-30T12:11:00.584049Z DEBUG connected";
        assert!(log_line_painted(line).contains("\x1b[34mDEBUG\x1b[0m connected"));
        assert_eq!(log_line_painted("no level here"), "no level here");
    }

    #[test]
    fn a_failure_line_has_failed_in_red() {
        assert_eq!(
            failure_painted("ftpsync: failed: a.txt: 550 denied"),
            "ftpsync: \x1b[31mfailed:\x1b[0m a.txt: 550 denied"
        );
    }

    #[test]
    fn without_init_nothing_is_coloured() {
        assert_eq!(change("+ a/", Stream::Stdout), "+ a/");
        assert_eq!(failure("ftpsync: failed: a: b"), "ftpsync: failed: a: b");
    }
}
