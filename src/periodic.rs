//! Keeping a folder mirrored: sync cycles on a steady clock (`--every`) or on file-system events
//! (`--watch`, with a full rescan every period), until stopped. Between cycles nothing runs: the
//! process sleeps on a timer, the watcher and the stop signal, and holds no connection (each
//! cycle connects its workers afresh, so a server that dropped idle connections costs nothing).

use std::io::IsTerminal;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Periodic};
use crate::engine::{self, SyncError};
use crate::exit_codes::ExitCode;
use crate::ftp::FtpError;
use crate::local::watch::ChangeWatcher;
use crate::local::Scope;
use crate::report::Reporter;

/// Runs cycles until `stop` (Ctrl-C, SIGTERM, or Enter on a terminal). Exit 0 after a clean
/// stop, 2 when waiting cannot help (login refused, TLS verification failed).
pub(crate) async fn run(config: &Config, periodic: Periodic, stop: CancellationToken) -> ExitCode {
    let reporter = Reporter::new(config.output);
    stop_on_enter(stop.clone());
    let mut watcher = match periodic.watch_debounce {
        Some(_) => match ChangeWatcher::start(&config.local_dir) {
            Ok(w) => Some(w),
            Err(e) => {
                reporter.notice(&format!(
                    "cannot watch {} ({e}); falling back to a full sync every {}",
                    config.local_dir.display(),
                    humantime::format_duration(periodic.every)
                ));
                None
            }
        },
        None => None,
    };

    // Full cycles start on a steady clock: multiples of the period from the first start.
    let mut next_full = Instant::now();
    let mut scope = Scope::Everything;
    let mut cycle = 0u64;
    let mut retry;
    loop {
        cycle += 1;
        let full = scope == Scope::Everything;
        if full {
            next_full += periodic.every;
        }
        let started = Instant::now();
        // A cycle that fails as a whole is retried too.
        retry = true;
        match engine::run(config, &scope, stop.clone()).await {
            Ok(mut summary) => {
                summary.cycle = Some(cycle);
                reporter.summary(&summary);
                retry = summary.failed > 0;
            }
            Err(SyncError::Interrupted) => retry = false,
            Err(SyncError::Connect(e)) if gives_up(&e) => {
                let url = config.target.display_url();
                reporter.fatal(&format!("cannot sync to {url}: {e}"), ExitCode::Fatal);
                return ExitCode::Fatal;
            }
            // Another run on the same folder is no passing trouble either, nor a manifest
            // that cannot be read (never taken for a first deploy).
            Err(e @ (SyncError::Lock(_) | SyncError::Manifest { .. })) => {
                let url = config.target.display_url();
                reporter.fatal(&format!("cannot sync to {url}: {e}"), ExitCode::Fatal);
                return ExitCode::Fatal;
            }
            Err(e) => reporter.cycle_failed(cycle, &e.to_string()),
        }
        if stop.is_cancelled() {
            return ExitCode::Success;
        }
        let now = Instant::now();
        if now >= next_full {
            if full {
                reporter.notice(&format!(
                    "cycle {cycle} took {:.1?}, longer than the period; starting the next one now",
                    now - started
                ));
            }
            // To the last tick passed: this cycle stands for it, the next one is on the clock.
            while next_full + periodic.every <= now {
                next_full += periodic.every;
            }
            scope = Scope::Everything;
            continue;
        }
        // Between change-driven cycles, what failed is tried again soon, not only at the next
        // full rescan.
        let retry_at = Instant::now() + RETRY_AFTER;
        scope = tokio::select! {
            _ = stop.cancelled() => return ExitCode::Success,
            _ = tokio::time::sleep_until(next_full) => Scope::Everything,
            _ = tokio::time::sleep_until(retry_at), if retry && watcher.is_some() => Scope::Everything,
            batch = next_change(&mut watcher, periodic.watch_debounce) => batch,
        };
    }
}

/// In watch mode, how soon a cycle that left failures is followed by a full one.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// The next batch of changes, or never when not watching.
async fn next_change(watcher: &mut Option<ChangeWatcher>, debounce: Option<Duration>) -> Scope {
    match (watcher.as_mut(), debounce) {
        (Some(w), Some(debounce)) => match w.next_batch(debounce).await {
            Some(scope) => scope,
            None => std::future::pending().await,
        },
        _ => std::future::pending().await,
    }
}

/// Errors that another cycle will not fix.
fn gives_up(e: &FtpError) -> bool {
    matches!(e, FtpError::LoginRefused { .. } | FtpError::Tls { .. }) && !e.is_connection_limit()
}

/// Pressing Enter on an interactive terminal stops, as in the original program.
fn stop_on_enter(stop: CancellationToken) {
    if !std::io::stdin().is_terminal() {
        return;
    }
    std::thread::spawn(move || {
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line).is_ok() {
            crate::report::print_error_line("stopping after the transfers in progress");
            stop.cancel();
        }
    });
}
