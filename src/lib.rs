//! ftpsync mirrors a local folder to an FTP server over several connections at once.
//!
//! The pipeline, one module per stage:
//! - [`cli`] and [`config`]: the command line, settled into a [`config::Config`];
//! - [`target`] and [`credentials`]: the remote URL and the login;
//! - [`local`] (with [`filter`]): the local tree;
//! - [`listing`]: parsing the server's folder listings (MLSD, UNIX and DOS LIST);
//! - [`plan`]: what to create, upload and delete, and in which order;
//! - [`sync`], [`schedule`] and [`dispatch`]: the coordinator releasing jobs to the workers in
//!   dependency order;
//! - [`worker`], [`ftp`] and [`ftp_error`]: one persistent FTP connection per worker, with [`pipeline`] for
//!   uploads in few round trips;
//! - [`tls`]: FTPS (rustls): trust anchors, version pinning, a session cache per connection;
//! - [`state`]: the record of uploads for servers that cannot set file times;
//! - [`report`] and [`exit_codes`]: what the user and scripts see;
//! - [`periodic`] and [`watch`]: keeping a folder mirrored, on a clock or on changes;
//! - [`shutdown`]: Ctrl-C and SIGTERM.

pub mod chain;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod data;
pub mod dispatch;
pub mod exit_codes;
pub mod filter;
pub mod ftp;
pub mod ftp_error;
pub mod listing;
pub mod local;
pub mod lock;
pub mod periodic;
pub mod pipeline;
pub mod plan;
pub mod report;
pub mod schedule;
pub mod shutdown;
pub mod state;
pub mod sync;
pub mod target;
pub mod temp_name;
pub mod tls;
pub mod upload;
pub mod watch;
pub mod worker;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Environment};
use crate::exit_codes::ExitCode;
use crate::report::Reporter;

/// Runs ftpsync with a parsed command line; returns the exit code. Errors that stop the run
/// before it changes anything come back as Err (exit code 2).
pub async fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    let config = Config::from_cli(cli, &Environment::from_process())?;
    let stop = CancellationToken::new();
    shutdown::listen(stop.clone());
    if let Some(periodic) = config.periodic {
        // A mistyped folder is a usage error, not something the next cycle can fix.
        local::check_root(&config.local_dir)?;
        return Ok(periodic::run(&config, periodic, stop).await);
    }
    let summary = match sync::run(&config, &sync::Scope::Everything, stop).await {
        Ok(summary) => summary,
        Err(e @ sync::SyncError::Interrupted) => {
            Reporter::new(config.output).fatal(&e.to_string(), ExitCode::Interrupted);
            return Ok(ExitCode::Interrupted);
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot sync to {}", config.target.display_url()));
        }
    };
    Reporter::new(config.output).summary(&summary);
    Ok(ExitCode::of_run(
        summary.interrupted,
        summary.failed as usize,
    ))
}
