//! The log: `tracing` events at the level `-q`/`-v` or `FTPSYNC_LOG` choose, written one
//! escaped line each to stderr (above the progress display, coloured on a terminal) and, with
//! `--log-file`, appended with timestamps to that file.

use std::io::Write;

use anyhow::Context;

use crate::colour;
use crate::progress::display::above;
use crate::report::escape_controls;

/// The log goes to stderr through [`LogWriter`]; `FTPSYNC_LOG` overrides the level the
/// flags choose. With `--log-file`, the same events at the `-v` level at least (with the change
/// lines and the summary) are also appended to that file, with timestamps.
pub(crate) fn init(
    quiet: bool,
    verbose: u8,
    log_file: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "ftpsync=debug,warn",
        (false, _) => "debug",
    };
    let filter = EnvFilter::try_from_env("FTPSYNC_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    // Only what the flags ask for reaches stderr; the change lines and summary, logged at info
    // for the file, are printed by the reporter.
    let filter = filter.add_directive("ftpsync::report=warn".parse()?);
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(LogWriter::Stderr)
        // The writer escapes control characters, then adds colour itself (see `colour`).
        .with_ansi(false)
        .with_target(false)
        .with_filter(filter);
    let file = match log_file {
        None => None,
        Some(path) => {
            let opened = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path);
            let file = opened.with_context(|| {
                format!(
                    "cannot open --log-file {}; name a file in a folder you can write to",
                    path.display()
                )
            })?;
            let level = if verbose >= 2 {
                "debug"
            } else {
                "ftpsync=debug,warn"
            };
            let writer = LogWriter::File(std::sync::Arc::new(std::sync::Mutex::new(file)));
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .with_ansi(false)
                    .with_target(false)
                    .with_filter(EnvFilter::new(level)),
            )
        }
    };
    tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .init();
    Ok(())
}

/// The log's writer (`tracing_subscriber`'s `MakeWriter`): each event is written as one line
/// with its control characters escaped, to stderr or to the `--log-file`; a failed write (a
/// closed pipe, a full disk) is dropped instead of reported, since reporting it would fail too.
#[derive(Debug, Clone, Default)]
pub(crate) enum LogWriter {
    #[default]
    Stderr,
    /// The `--log-file`, opened for appending.
    File(std::sync::Arc<std::sync::Mutex<std::fs::File>>),
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::new(), self.clone())
    }
}

/// One log event being written; goes out when dropped.
#[derive(Debug)]
pub(crate) struct LogLine(Vec<u8>, LogWriter);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let Some(line) = log_line(&self.0) else {
            return;
        };
        match &self.1 {
            LogWriter::Stderr => {
                let line = colour::log_line(&line);
                let _ = above(|| std::io::stderr().lock().write_all(line.as_bytes()));
            }
            LogWriter::File(file) => {
                let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let _ = file.write_all(line.as_bytes());
            }
        }
    }
}

/// What a log event's bytes become on stderr: one line, escaped but for its final newline.
fn log_line(event: &[u8]) -> Option<String> {
    if event.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(event);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Some(format!("{}\n", escape_controls(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_event_is_written_as_one_escaped_line() {
        let event = b"WARN reply \x1b[2J\nsecond line\0\n";
        let expected = "WARN reply \\x1b[2J\\nsecond line\\0\n";
        assert_eq!(log_line(event).as_deref(), Some(expected));
        assert_eq!(log_line(b""), None);
    }
}
