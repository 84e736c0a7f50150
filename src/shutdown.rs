//! Stopping: the first Ctrl-C or SIGTERM asks the run to stop taking work and let transfers in
//! flight finish; a second one aborts at once with exit code 130 (with `--json`, after the
//! error object on stdout that every `--json` run ends with).

use tokio_util::sync::CancellationToken;

use crate::exit_codes::ExitCode;
use crate::report::{print_error_line, OutputMode, Reporter};

/// Listens for Ctrl-C and SIGTERM for the rest of the process; cancels `stop` on the first and
/// exits on the second, reporting the abort as `mode` asks.
pub(crate) fn listen(stop: CancellationToken, mode: OutputMode) {
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let mut signals = 0;
        loop {
            tokio::select! {
                r = tokio::signal::ctrl_c() => if r.is_err() { return },
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            signals += 1;
            if signals == 1 {
                // Never eprintln! here: with stderr closed it would panic and end this listener.
                print_error_line(
                    "stopping after the transfers in progress (press Ctrl-C again to abort)",
                );
                stop.cancel();
            } else {
                // `fatal` ignores closed pipes too; with --json it prints the error object.
                Reporter::new(mode).fatal("aborted", ExitCode::Interrupted);
                std::process::exit(i32::from(ExitCode::Interrupted.code()));
            }
        }
    });
}
