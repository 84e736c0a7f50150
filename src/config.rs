//! The settled configuration of a run, built once from the command line and the environment.
//! The sync code sees only this, never clap types.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::chmod::Modes;
use crate::cli::{Cli, TlsMode, TlsVersionArg};
use crate::credentials::{self, CredentialError};
use crate::direction::{self, Direction, DirectionError};
use crate::ftp::target::{Scheme, Target, TargetError};
use crate::ftp::tls::{self, TlsConfig, TlsOptions, TlsSetupError, TlsVersion};
use crate::ftp::Login;
use crate::local::filter::{Filter, FilterError};
use crate::report::OutputMode;

mod remote_path;
use remote_path::remote_path_in;
pub(crate) use remote_path::{BackupDir, BACKUP_HOLDS_ROOT};

/// Everything a sync run needs to know.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The local folder to mirror.
    pub(crate) local_dir: PathBuf,
    /// Where to mirror it.
    pub(crate) target: Target,
    /// Who to log in as.
    pub(crate) login: Login,
    /// Number of workers, each with its own connection.
    pub(crate) jobs: usize,
    /// Remove remote entries that do not exist locally.
    pub(crate) delete: bool,
    /// What keeps remote paths from deletion: the exclude patterns, or nothing with
    /// `--delete-excluded` (then excluded remote paths go too).
    pub(crate) remote_filter: Filter,
    /// Plan and print only.
    pub(crate) dry_run: bool,
    /// How deep to descend below the root (None: no limit).
    pub(crate) max_depth: Option<usize>,
    /// Excluded paths: neither uploaded nor deleted.
    pub(crate) filter: Filter,
    /// Upload under a temporary name and rename it into place (off with `--inplace`).
    pub(crate) atomic: bool,
    /// Most remote entries `--delete` may remove in one run.
    pub(crate) max_delete: Option<u64>,
    /// Allow `--delete` with an empty local folder.
    pub(crate) force: bool,
    /// Follow local symbolic links.
    pub(crate) follow_symlinks: bool,
    /// Limit for every network wait.
    pub(crate) timeout: Duration,
    /// Tries per failed job.
    pub(crate) retries: u32,
    /// What to print.
    pub(crate) output: OutputMode,
    /// Show the live progress display on stderr (`--progress`, or stderr is a terminal).
    pub(crate) progress: bool,
    /// Folder for the per-target upload record (None: keep no record).
    pub(crate) state_dir: Option<PathBuf>,
    /// Keep mirroring (`--every`, `--watch`); None for one sync.
    pub(crate) periodic: Option<Periodic>,
    /// `--checksum`: compare by content against the manifest on the server; None compares by
    /// time.
    pub(crate) checksum: Option<Checksum>,
    /// `--bwlimit`: bytes per second for all connections' file bytes together (None: no limit).
    pub(crate) bwlimit: Option<u64>,
    /// Push (LOCAL_DIR first) or pull (the URL first): see [`crate::direction`].
    pub(crate) direction: Direction,
    /// `--backup-dir`: where remote files go before they are replaced or deleted.
    pub(crate) backup: Option<BackupDir>,
    /// `--chmod` and `--perms`: the modes to give what is uploaded; None sends none.
    pub(crate) modes: Option<Modes>,
}

/// How `--checksum` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checksum {
    /// The manifest's path as FTP commands name it (like [`Target::remote_path`]).
    pub(crate) manifest: String,
    /// Its path relative to the sync root when it lies inside the remote folder: never
    /// uploaded from the local tree, never shown as a change, never deleted.
    pub(crate) manifest_rel: Option<String>,
    /// `--adopt`: without a manifest or server hashes, remote files of the local size count as
    /// unchanged, once.
    pub(crate) adopt: bool,
    /// The `--exclude` patterns, as the manifest records them.
    pub(crate) excludes: Vec<String>,
}

impl Checksum {
    /// Settles `--manifest` (None: the default name in the remote folder) against `target`.
    fn new(
        target: &Target,
        manifest: Option<&str>,
        adopt: bool,
        excludes: Vec<String>,
    ) -> Result<Checksum, ConfigError> {
        let Some(given) = manifest else {
            return Ok(Checksum {
                manifest: target.remote_path(crate::manifest::DEFAULT_NAME),
                manifest_rel: Some(crate::manifest::DEFAULT_NAME.into()),
                adopt,
                excludes,
            });
        };
        let bad = |why: &'static str| ConfigError::ManifestPath {
            path: given.to_string(),
            why,
        };
        let (manifest, manifest_rel) = remote_path_in(target, given).map_err(bad)?;
        if manifest == target.path.trim_end_matches('/') {
            return Err(bad("that is the remote folder itself; give a file path"));
        }
        Ok(Checksum {
            manifest,
            manifest_rel,
            adopt,
            excludes,
        })
    }
}

/// How a mirror that keeps running is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Periodic {
    /// Period of full syncs, on a steady clock.
    pub(crate) every: Duration,
    /// `--watch`: also sync on file-system events, once they have been quiet this long
    /// (`--debounce`); None for `--every` alone.
    pub(crate) watch_debounce: Option<Duration>,
}

/// Full rescan period of `--watch` without `--every`: catches what events missed.
const DEFAULT_WATCH_RESCAN: Duration = Duration::from_secs(600);

/// The environment values the configuration reads, passed in so tests control them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Environment {
    /// `FTPSYNC_PASSWORD`.
    pub(crate) password: Option<String>,
    /// `$NETRC` or `~/.netrc`.
    pub(crate) netrc: Option<PathBuf>,
    /// The state folder (`$XDG_STATE_HOME/ftpsync`).
    pub(crate) state_dir: Option<PathBuf>,
    /// stderr is a terminal that can show a progress display (not `TERM=dumb`).
    pub(crate) stderr_terminal: bool,
    /// The process's umask, for `--chmod` rules that name no u, g, o or a.
    pub(crate) umask: u32,
}

impl Environment {
    /// Reads the process environment.
    pub(crate) fn from_process() -> Self {
        Environment {
            password: std::env::var("FTPSYNC_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty()),
            netrc: credentials::default_netrc_path(),
            state_dir: crate::state::default_state_dir(),
            stderr_terminal: std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("TERM").is_none_or(|t| t != "dumb"),
            umask: crate::chmod::process_umask(),
        }
    }
}

/// The command line or its files do not make a valid run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error("{option} applies only to TLS connections; use ftpes:// or ftps://, or add --tls explicit or --tls implicit")]
    TlsOptionWithoutTls { option: &'static str },
    #[error("--manifest {path:?}: {why}")]
    ManifestPath { path: String, why: &'static str },
    #[error("--backup-dir {path:?}: {why}")]
    BackupPath { path: String, why: &'static str },
    #[error("LOCAL_DIR and REMOTE are both needed (on the command line, or local and remote in the profile); see ftpsync --help")]
    MissingArguments,
    #[error("the environment variable {name} (named by --password-env) is not set or empty; export it, or give the password another way")]
    PasswordEnvUnset { name: String },
    #[error(transparent)]
    Direction(#[from] DirectionError),
}

impl Config {
    /// Settles the command line into a configuration.
    pub(crate) fn from_cli(cli: Cli, env: &Environment) -> Result<Config, ConfigError> {
        // clap asks for both unless --generate (which never comes here) or a profile gives them.
        let local_dir = cli.local_dir.clone().or(cli.profile_local.clone());
        let remote = cli.remote.clone().or(cli.profile_remote.clone());
        let (Some(local_dir), Some(remote)) = (local_dir, remote) else {
            return Err(ConfigError::MissingArguments);
        };
        // A profile's `pull = true` says which way its `local` and `remote` go; positional
        // arguments say it by their order.
        let from_profile = cli.local_dir.is_none() && cli.remote.is_none();
        let (local_dir, remote, direction) = if from_profile && cli.profile_pull {
            direction::settle(
                PathBuf::from(&remote),
                local_dir.to_string_lossy().into_owned(),
            )?
        } else {
            direction::settle(local_dir, remote)?
        };
        if direction == Direction::Pull {
            direction::check_pull_options(&cli)?;
        }
        let mut target = match cli.tls {
            None => Target::parse(&remote)?,
            Some(TlsMode::Explicit) => Target::parse_with_tls(&remote, Scheme::Ftpes)?,
            Some(TlsMode::Implicit) => Target::parse_with_tls(&remote, Scheme::Ftps)?,
        };
        let tls_options = TlsOptions {
            ca_file: cli.ca_file,
            insecure: cli.insecure,
            version: cli.tls_version.map(|v| match v {
                TlsVersionArg::V1_2 => TlsVersion::V1_2,
                TlsVersionArg::V1_3 => TlsVersion::V1_3,
            }),
        };
        if target.scheme.is_tls() {
            target.tls = Some(TlsConfig::load(&tls_options)?);
        } else if let Some(option) = tls_only_option(&tls_options) {
            // Silently ignored, it would let the user believe the connection is secured.
            return Err(ConfigError::TlsOptionWithoutTls { option });
        }
        let env_password = match &cli.password_env {
            None => env.password.clone(),
            Some(name) => Some(
                std::env::var(name)
                    .ok()
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| ConfigError::PasswordEnvUnset { name: name.clone() })?,
            ),
        };
        let login = credentials::resolve_login(
            &target,
            env_password.as_deref(),
            cli.password_file.as_deref(),
            env.netrc.as_deref(),
        )?;
        let mut patterns = cli.excludes;
        for file in &cli.exclude_from {
            let more = Filter::read_pattern_file(file, patterns.len())?;
            patterns.extend(more);
        }
        let checksum = match cli.checksum {
            true => Some(Checksum::new(
                &target,
                cli.manifest.as_deref(),
                cli.adopt,
                patterns.clone(),
            )?),
            false => None,
        };
        let backup = (cli.backup_dir.as_deref())
            .map(|given| BackupDir::new(&target, given))
            .transpose()?;
        let mut filter = Filter::new(&patterns, &cli.includes)?;
        if cli.gitignore {
            filter = filter.with_gitignore(local_dir.clone());
        }
        let config = Config {
            bwlimit: cli.bwlimit.filter(|&rate| rate > 0),
            checksum,
            direction,
            backup,
            local_dir,
            target,
            login,
            jobs: usize::from(cli.jobs),
            delete: cli.delete,
            dry_run: cli.dry_run,
            max_depth: cli.max_depth,
            remote_filter: match cli.delete_excluded {
                true => Filter::default(),
                false => filter.clone(),
            },
            filter,
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
            // Asked for, or on a terminal that nothing else is reading: never in a pipe or file.
            progress: cli.progress
                || (!cli.no_progress && env.stderr_terminal && !cli.quiet && !cli.json),
            state_dir: env.state_dir.clone(),
            periodic: match (cli.every, cli.watch) {
                (every, true) => Some(Periodic {
                    every: every.unwrap_or(DEFAULT_WATCH_RESCAN),
                    watch_debounce: Some(cli.debounce),
                }),
                (Some(every), false) => Some(Periodic {
                    every,
                    watch_debounce: None,
                }),
                (None, false) => None,
            },
            modes: Modes::new(cli.perms, cli.chmod, env.umask),
        };
        if let Some(warning) = config.insecure_warning() {
            // Every run, even with -q: the user must not forget that nothing is verified.
            crate::report::print_error_line(&format!("warning: {warning}"));
        }
        Ok(config)
    }

    /// The warning `--insecure` prints on every run, None without it.
    pub(crate) fn insecure_warning(&self) -> Option<&'static str> {
        let tls = self.target.tls.as_ref()?;
        tls.options().insecure.then_some(tls::INSECURE_WARNING)
    }

    /// For the summary: a warning when the password went unencrypted (plain `ftp://`) to a host
    /// other than this machine; None otherwise.
    pub(crate) fn plaintext_password_warning(&self) -> Option<String> {
        plaintext_password_warning(&self.target, &self.login)
    }
}

/// For the summary: a warning when `login`'s password went unencrypted (plain `ftp://`) to a
/// host other than this machine; None otherwise.
pub(crate) fn plaintext_password_warning(target: &Target, login: &Login) -> Option<String> {
    if target.scheme != Scheme::Ftp || login.password.is_empty() || is_loopback(&target.host) {
        return None;
    }
    Some(format!(
        "the password for {} was sent unencrypted to {}; use ftpes:// (or --tls explicit) to \
         encrypt the login and the files",
        login.user, target.host
    ))
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The first TLS-only option that was given.
fn tls_only_option(options: &TlsOptions) -> Option<&'static str> {
    if options.ca_file.is_some() {
        Some("--ca-file")
    } else if options.insecure {
        Some("--insecure")
    } else if options.version.is_some() {
        Some("--tls-version")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(password: &str) -> Login {
        Login {
            user: "bob".into(),
            password: password.into(),
        }
    }

    #[test]
    fn plain_passwords_to_other_hosts_are_reported() {
        let warn = |url: &str, pw: &str| {
            plaintext_password_warning(&Target::parse(url).unwrap(), &login(pw))
        };
        let message = warn("ftp://example.com/x", "pw").expect("a warning");
        assert!(message.contains("example.com") && message.contains("ftpes://"));
        assert!(
            !message.contains("pw "),
            "never the password itself: {message}"
        );
        for quiet in [
            ("ftpes://example.com/x", "pw"),
            ("ftps://example.com/x", "pw"),
            ("ftp://example.com/x", ""),
            ("ftp://127.0.0.1/x", "pw"),
            ("ftp://127.3.4.5/x", "pw"),
            ("ftp://[::1]/x", "pw"),
            ("ftp://LocalHost/x", "pw"),
            ("ftp://a.localhost/x", "pw"),
        ] {
            assert_eq!(warn(quiet.0, quiet.1), None, "{quiet:?}");
        }
    }

    use clap::Parser;

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        let cli = Cli::try_parse_from(["ftpsync"].iter().chain(args)).unwrap();
        let env = Environment {
            password: Some("pw".into()),
            ..Environment::default()
        };
        Config::from_cli(cli, &env)
    }

    #[test]
    fn a_bwlimit_of_0_or_off_is_no_limit() {
        let limit = |rate: &str| {
            config(&["--bwlimit", rate, ".", "ftp://h/"])
                .unwrap()
                .bwlimit
        };
        assert_eq!(limit("500K"), Some(500 << 10));
        assert_eq!(limit("0"), None);
        assert_eq!(limit("off"), None);
    }

    #[test]
    fn progress_shows_on_a_terminal_unless_told_or_quiet_or_json() {
        let progress = |args: &[&str], terminal: bool| {
            let cli = Cli::try_parse_from(["ftpsync"].iter().chain(args).chain(&[".", "ftp://h/"]));
            let env = Environment {
                password: Some("pw".into()),
                stderr_terminal: terminal,
                ..Environment::default()
            };
            Config::from_cli(cli.unwrap(), &env).unwrap().progress
        };
        assert!(progress(&[], true));
        assert!(!progress(&[], false), "never in a pipe or a file");
        for quiet in [&["-q"][..], &["--json"], &["--no-progress"]] {
            assert!(!progress(quiet, true), "{quiet:?}");
        }
        assert!(progress(&["--progress"], false));
    }

    #[test]
    fn tls_options_without_tls_are_refused() {
        for option in [
            &["--insecure"][..],
            &["--tls-version", "1.2"],
            &["--ca-file", "x"],
        ] {
            let args = [option, &[".", "ftp://h/"]].concat();
            let err = config(&args).expect_err("refused").to_string();
            assert!(err.contains("applies only to TLS connections"), "{err}");
        }
    }

    #[test]
    fn the_manifest_path_is_found_inside_or_outside_the_remote_folder() {
        let at = |url: &str, manifest: Option<&str>| {
            let mut args = vec!["-c"];
            if let Some(m) = manifest {
                args.extend(["--manifest", m]);
            }
            args.extend([".", url]);
            let c = config(&args).unwrap().checksum.unwrap();
            (c.manifest, c.manifest_rel)
        };
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            at("ftp://h/www", None),
            (
                "www/.ftpsync-manifest.json".into(),
                some(".ftpsync-manifest.json")
            )
        );
        assert_eq!(
            at("ftp://h/", None),
            (
                ".ftpsync-manifest.json".into(),
                some(".ftpsync-manifest.json")
            )
        );
        assert_eq!(
            at("ftp://h/www", Some("private/m.json")),
            ("private/m.json".into(), None)
        );
        assert_eq!(
            at("ftp://h/www", Some("www/m.json")),
            ("www/m.json".into(), some("m.json"))
        );
        assert_eq!(
            at("ftp://h/www", Some("wwwx/m.json")),
            ("wwwx/m.json".into(), None)
        );
        assert_eq!(
            at("ftp://h//srv/www", Some("/srv/m.json")),
            ("/srv/m.json".into(), None)
        );
        assert_eq!(
            at("ftp://h//srv/www", Some("/srv/www/a/m.json")),
            ("/srv/www/a/m.json".into(), some("a/m.json"))
        );
        assert_eq!(
            at("ftp://h/", Some("m.json")),
            ("m.json".into(), some("m.json"))
        );
        assert_eq!(
            at("ftp://h//", Some("/m.json")),
            ("/m.json".into(), some("m.json"))
        );
        assert_eq!(at("ftp://h//srv/www", Some("srv/www/m.json")).1, None);
        for bad in ["", "/", "a/../m.json", "dir/", "./m", "www"] {
            let err = config(&["-c", "--manifest", bad, ".", "ftp://h/www"]).expect_err(bad);
            assert!(err.to_string().contains("--manifest"), "{err}");
        }
        assert!(config(&[".", "ftp://h/www"]).unwrap().checksum.is_none());
        for without_checksum in [&["--manifest", "m.json"][..], &["--adopt"]] {
            let args = [&["ftpsync"][..], without_checksum, &[".", "ftp://h/"]].concat();
            assert!(Cli::try_parse_from(args).is_err(), "{without_checksum:?}");
        }
    }

    #[test]
    fn tls_settings_reach_the_target() {
        let c = config(&["--insecure", "--tls", "explicit", ".", "ftp://h/x"]).unwrap();
        assert_eq!(c.target.scheme, Scheme::Ftpes);
        assert_eq!(c.insecure_warning(), Some(tls::INSECURE_WARNING));
        assert!(c.target.tls.as_ref().unwrap().options().insecure);
        assert_eq!(c.plaintext_password_warning(), None);
        let c = config(&[".", "ftp://bob@example.com/x"]).unwrap();
        assert_eq!(c.target.tls, None);
        assert_eq!(c.insecure_warning(), None);
        assert!(c.plaintext_password_warning().is_some());
    }
}
