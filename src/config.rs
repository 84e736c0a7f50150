//! The settled configuration of a run, built once from the command line and the environment.
//! The sync code sees only this, never clap types.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::Cli;
use crate::credentials::{self, CredentialError, Login};
use crate::filter::{Filter, FilterError};
use crate::report::OutputMode;
use crate::target::{Target, TargetError};

/// Everything a sync run needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// The local folder to mirror.
    pub local_dir: PathBuf,
    /// Where to mirror it.
    pub target: Target,
    /// Who to log in as.
    pub login: Login,
    /// Number of workers, each with its own connection.
    pub jobs: usize,
    /// Remove remote entries that do not exist locally.
    pub delete: bool,
    /// Plan and print only.
    pub dry_run: bool,
    /// How deep to descend below the root (None: no limit).
    pub max_depth: Option<usize>,
    /// Excluded paths: neither uploaded nor deleted.
    pub filter: Filter,
    /// Upload under a temporary name and rename it into place (off with `--inplace`).
    pub atomic: bool,
    /// Most remote entries `--delete` may remove in one run.
    pub max_delete: Option<u64>,
    /// Allow `--delete` with an empty local folder.
    pub force: bool,
    /// Follow local symbolic links.
    pub follow_symlinks: bool,
    /// Limit for every network wait.
    pub timeout: Duration,
    /// Tries per failed job.
    pub retries: u32,
    /// What to print.
    pub output: OutputMode,
    /// Folder for the per-target upload record (None: keep no record).
    pub state_dir: Option<PathBuf>,
}

/// The environment values the configuration reads, passed in so tests control them.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `FTPSYNC_PASSWORD`.
    pub password: Option<String>,
    /// `$NETRC` or `~/.netrc`.
    pub netrc: Option<PathBuf>,
    /// The state folder (`$XDG_STATE_HOME/ftpsync`).
    pub state_dir: Option<PathBuf>,
}

impl Environment {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        Environment {
            password: std::env::var("FTPSYNC_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty()),
            netrc: credentials::default_netrc_path(),
            state_dir: crate::state::default_state_dir(),
        }
    }
}

/// The command line or its files do not make a valid run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error(transparent)]
    Filter(#[from] FilterError),
}

impl Config {
    /// Settles the command line into a configuration.
    pub fn from_cli(cli: Cli, env: &Environment) -> Result<Config, ConfigError> {
        let target = Target::parse(&cli.remote)?;
        let login = credentials::resolve_login(
            &target,
            env.password.as_deref(),
            cli.password_file.as_deref(),
            env.netrc.as_deref(),
        )?;
        let mut patterns = cli.excludes;
        for file in &cli.exclude_from {
            patterns.extend(Filter::read_pattern_file(file)?);
        }
        Ok(Config {
            local_dir: cli.local_dir,
            target,
            login,
            jobs: usize::from(cli.jobs),
            delete: cli.delete,
            dry_run: cli.dry_run,
            max_depth: cli.max_depth,
            filter: Filter::new(&patterns)?,
            atomic: !cli.inplace,
            max_delete: cli.max_delete,
            force: cli.force,
            follow_symlinks: cli.follow_symlinks,
            timeout: Duration::from_secs(cli.timeout),
            retries: cli.retries,
            output: OutputMode {
                quiet: cli.quiet,
                json: cli.json,
            },
            state_dir: env.state_dir.clone(),
        })
    }
}
