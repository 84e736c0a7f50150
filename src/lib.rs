//! ftpsync mirrors a local folder to an FTP server over several connections at once.
//!
//! The crate is three layers, each in its own folder, with the settings and the report around
//! them (see "How it works" in the README):
//! - [`local`]: the local tree (scan, `--exclude` filters, change notifications);
//! - [`ftp`]: the protocol: one connection, its TLS, its listings and uploads. It knows nothing
//!   of plans, jobs or workers;
//! - [`engine`]: one sync run: plan, schedule, a pool of workers, each driving one connection;
//! - [`cli`], [`config`] and [`credentials`]: the command line, settled into a
//!   [`config::Config`], and the login; [`chmod`]: the modes `--chmod` and `--perms` give;
//! - [`state`], [`lock`], [`temp_name`] and [`manifest`]: what persists between runs and on
//!   the server;
//! - [`report`] and [`exit_codes`]: what the user and scripts see; [`progress`]: the live
//!   display on a terminal; [`colour`]: where it is coloured; [`log`]: the log (stderr,
//!   `--log-file`);
//! - [`periodic`]: keeping a folder mirrored, on a clock or on changes;
//! - [`shutdown`]: Ctrl-C and SIGTERM.
//!
//! Only what `main.rs` needs is public: [`cli`], [`exit_codes`] and [`run`] (and, hidden, the
//! listing parsers a test of the test tools uses).

mod chmod;
pub mod cli;
mod colour;
mod config;
mod credentials;
mod direction;
mod engine;
pub mod exit_codes;
mod ftp;
mod generate;
mod local;
mod lock;
mod log;
mod manifest;
mod periodic;
mod profile;
mod progress;
mod report;
mod shutdown;
mod state;
mod temp_name;

/// Not part of the interface: the fault proxy's self-test (tests/all/faults_selftest.rs) checks
/// that the listings it invents parse with ftpsync's own parsers.
#[doc(hidden)]
pub mod listing {
    pub use crate::ftp::listing::{parse_list_line, parse_mlsd_line, EntryKind};
}

use std::ffi::OsString;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Environment};
use crate::exit_codes::ExitCode;
use crate::report::{OutputMode, Reporter};

/// Runs ftpsync with a parsed command line (`args` as given, to shorten them in messages):
/// installs the log, runs the sync on a new runtime and reports an error that stopped it.
pub fn run(cli: cli::Cli, args: &[OsString]) -> ExitCode {
    if let Some(kind) = cli.generate {
        return match generate::generate(kind, &mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::Success,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::Success,
            Err(e) => {
                report::print_error_line(&format!("cannot write to stdout: {e}"));
                ExitCode::Fatal
            }
        };
    }
    colour::init();
    let mode = OutputMode {
        quiet: cli.quiet,
        json: cli.json,
    };
    let result = log::init(cli.quiet, cli.verbose, cli.log_file.as_deref()).and_then(|()| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(run_async(cli))
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            Reporter::new(mode).fatal(&report::error_line(&e, args), ExitCode::Fatal);
            ExitCode::Fatal
        }
    }
}

/// Runs ftpsync with a parsed command line; returns the exit code. Errors that stop the run
/// before it changes anything come back as Err (exit code 2).
async fn run_async(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    let config = Config::from_cli(cli, &Environment::from_process())?;
    let stop = CancellationToken::new();
    shutdown::listen(stop.clone(), config.output);
    if let Some(periodic) = config.periodic {
        // A mistyped folder is a usage error, not something the next cycle can fix (a pull
        // creates its folder).
        if config.direction == direction::Direction::Push {
            local::check_root(&config.local_dir)?;
        }
        return Ok(periodic::run(&config, periodic, stop).await);
    }
    let summary = match engine::run(&config, &local::Scope::Everything, stop).await {
        Ok(summary) => summary,
        Err(e @ engine::SyncError::Interrupted) => {
            Reporter::new(config.output).fatal(&e.to_string(), ExitCode::Interrupted);
            return Ok(ExitCode::Interrupted);
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot sync to {}", config.target.display_url()));
        }
    };
    Reporter::new(config.output).summary(&summary);
    Ok(summary.outcome())
}
