//! Stopping: the first Ctrl-C or SIGTERM asks the run to stop taking work and lets the transfers
//! in flight finish for a few seconds ([`GRACE`]); what is still running then is aborted, as a
//! second Ctrl-C aborts at once: exit code 130 (with `--json`, after the error object on stdout
//! that every `--json` run ends with). An aborted upload never reaches its final name (that
//! rename comes only after its transfer and size check); its temporary file is resumed or
//! removed by the next run.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::exit_codes::ExitCode;
use crate::report::{print_error_line, OutputMode, Reporter};

/// How long transfers in flight may go on after the first stop signal.
pub(crate) const GRACE: Duration = Duration::from_secs(5);

/// Listens for Ctrl-C and SIGTERM for the rest of the process; cancels `stop` on the first and
/// exits on the second or when [`GRACE`] is over, reporting the abort as `mode` asks.
pub(crate) fn listen(stop: CancellationToken, mode: OutputMode) {
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let grace_over = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = tokio::signal::ctrl_c() => if r.is_err() { return },
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
                _ = grace_over => {
                    abort(mode, "aborted: transfers still running after the stop; the next run resumes or removes their temporary files");
                }
            }
            if deadline.is_some() {
                abort(mode, "aborted");
            }
            if !mode.quiet {
                // Never eprintln! here: with stderr closed it would panic and end this listener.
                print_error_line(&format!(
                    "stopping: transfers in progress get {} s to finish (press Ctrl-C again to abort now)",
                    GRACE.as_secs()
                ));
            }
            stop.cancel();
            deadline = Some(tokio::time::Instant::now() + GRACE);
        }
    });
}

/// Ends the process with exit code 130 after `message` (`fatal` ignores closed pipes; with
/// --json it prints the error object).
fn abort(mode: OutputMode, message: &str) -> ! {
    Reporter::new(mode).fatal(message, ExitCode::Interrupted);
    std::process::exit(i32::from(ExitCode::Interrupted.code()));
}
