//! The command line as the user types it (clap). Turned into a settled [`crate::config::Config`]
//! by `Config::from_cli`; nothing past that point sees clap types.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{ArgAction, Parser, ValueEnum};

use crate::exit_codes::{ExitCode, EXIT_CODES_HELP};
use crate::report::{self, OutputMode, Reporter};

/// The usage line: both directions, source first and destination second, as rsync reads them.
const USAGE: &str = "\
ftpsync [OPTIONS] LOCAL_DIR ftp://host/path    push: make the remote folder a mirror of LOCAL_DIR
       ftpsync [OPTIONS] ftp://host/path LOCAL_DIR    pull: make LOCAL_DIR a mirror of the remote folder";

pub(crate) const AFTER_HELP: &str = "\
A URL first means a pull: the server is only read (no upload, delete, rename or mkdir there),
LOCAL_DIR is created when missing, and --delete removes local entries the server does not have.
A pull refuses --watch (use --every), --inplace, --backup-dir, --chmod and --perms.

The remote is a URL: ftp://[user[:password]@]host[:port]/path. The path is relative to the login
directory, as in curl; a leading %2F or a double slash (ftp://host//srv/www) makes it absolute.
The remote directory and its parents are created when missing.

FTPS, as FileZilla names it: ftpes://host/path is explicit TLS (AUTH TLS on port 21, then the
login and every data connection encrypted); ftps://host/path is implicit TLS from the first byte
(port 990). ftp:// is plain FTP unless --tls says otherwise. The server's certificate is checked
against the system's trust store; --ca-file adds a CA (or a self-signed certificate) to it.

Password, first found: the URL, --password-file, $FTPSYNC_PASSWORD, ~/.netrc (or $NETRC).
Passwords are never printed. As with ftp(1), a netrc file that other users can read is refused
when it holds the password: chmod 600 ~/.netrc.

Examples:
  ftpsync ./site ftp://deploy@example.com/www --delete
  FTPSYNC_PASSWORD=... ftpsync -j 8 --exclude '*.log' ./exports ftp://backup@nas/exports
  ftpsync --dry-run --delete ./site ftp://deploy@example.com/www
  ftpsync --ca-file ./nas-ca.pem ./photos ftpes://me@nas.local/photos
  ftpsync --checksum --delete --json ./public ftpes://ci@example.com/www   # a deploy from CI
  ftpsync --delete ftpes://me@example.com/www ./backup/www                 # pull: a backup

";

/// Mirror a local directory tree to an FTP server, over several connections at once.
#[derive(Debug, Parser)]
#[command(name = "ftpsync", version, args_override_self = true, override_usage = USAGE, after_help = format!("{AFTER_HELP}{EXIT_CODES_HELP}"))]
pub struct Cli {
    /// Local directory to mirror (never modified); with a pull, the URL comes first and this
    /// is the destination
    #[arg(required_unless_present_any = ["generate", "profile_local"])]
    pub local_dir: Option<PathBuf>,

    /// Remote directory, as ftp://[user[:password]@]host[:port]/path (or ftpes://, ftps://);
    /// with a pull, the local directory to mirror into
    #[arg(required_unless_present_any = ["generate", "profile_remote"])]
    pub remote: Option<String>,

    /// Run the profile NAME of the configuration file (options on the command line win)
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// The configuration file with the profiles (default: ~/.config/ftpsync/config.toml)
    #[arg(long, value_name = "FILE", requires = "profile")]
    pub config: Option<PathBuf>,

    /// A profile's `local`, used when no LOCAL_DIR is given.
    #[arg(long, hide = true)]
    pub profile_local: Option<PathBuf>,

    /// A profile's `remote`, used when no REMOTE is given.
    #[arg(long, hide = true)]
    pub profile_remote: Option<String>,

    /// A profile's `pull = true`: its `remote` is mirrored into its `local` (when the command
    /// line names neither).
    #[arg(long, hide = true)]
    pub profile_pull: bool,

    /// Write shell completions or the man page to stdout, and exit
    #[arg(long, value_enum, value_name = "KIND", exclusive = true)]
    pub generate: Option<Generate>,

    /// Descend at most N levels below LOCAL_DIR (1 = only its direct entries)
    #[arg(help_heading = "Selection", long, value_name = "N", value_parser = parse_depth)]
    pub max_depth: Option<usize>,

    /// Skip paths matching GLOB ('*.log', 'cache/', '**/tmp'); excluded remote paths are never deleted
    #[arg(
        help_heading = "Selection",
        short = 'x',
        long = "exclude",
        value_name = "GLOB"
    )]
    pub excludes: Vec<String>,

    /// Leave out what the .gitignore files inside LOCAL_DIR leave out, as git does (and .git/)
    #[arg(help_heading = "Selection", long)]
    pub gitignore: bool,

    /// Keep paths matching GLOB whatever the excludes say (e.g. --include '*.php' --exclude '*.inc')
    #[arg(help_heading = "Selection", long = "include", value_name = "GLOB")]
    pub includes: Vec<String>,

    /// Read exclude globs from FILE, one per line, as .gitignore ('#' comments, '!pattern' keeps
    /// what an earlier line excluded; at most 4 MiB)
    #[arg(help_heading = "Selection", long, value_name = "FILE")]
    pub exclude_from: Vec<PathBuf>,

    /// Decide what to upload by content (BLAKE3) against a manifest kept on the server, not by
    /// modification time: for deploys from fresh checkouts (CI)
    #[arg(help_heading = "Selection", short = 'c', long)]
    pub checksum: bool,

    /// With --checksum: where the manifest lives on the server, relative to the login folder like
    /// the URL's path (default: .ftpsync-manifest.json in the remote folder)
    #[arg(
        help_heading = "Selection",
        long,
        value_name = "REMOTE_PATH",
        requires = "checksum"
    )]
    pub manifest: Option<String>,

    /// With --checksum, when the server has no manifest and cannot hash files: take remote files
    /// of the local size as unchanged, once (recorded as adopted in the manifest)
    #[arg(help_heading = "Selection", long, requires = "checksum")]
    pub adopt: bool,

    /// Follow symbolic links and upload what they point at (loops are detected and skipped); a
    /// pull follows remote links whose target lies inside the remote folder
    #[arg(help_heading = "Selection", short = 'L', long)]
    pub follow_symlinks: bool,

    /// Parallel workers, each with its own FTP connection
    #[arg(help_heading = "Transfer", short, long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,

    /// Upload straight to the final name instead of a temporary name renamed into place
    #[arg(help_heading = "Transfer", long)]
    pub inplace: bool,

    /// Limit file transfers to RATE bytes per second, all connections together (500K, 2M;
    /// K, M, G = 1024, 1024², 1024³; 0 or off: no limit); listings and commands are not limited
    #[arg(help_heading = "Transfer", long, value_name = "RATE", value_parser = crate::ftp::bwlimit::parse_rate)]
    pub bwlimit: Option<u64>,

    /// Set the mode of each uploaded file and created folder with SITE CHMOD, rules as rsync's
    /// applied to the local mode: D755,F644 (D: folders, F: files), F600, Fg-w, u+rwx,go=rx
    #[arg(help_heading = "Transfer", long, value_name = "RULES", value_parser = crate::chmod::parse_rules)]
    pub chmod: Vec<crate::chmod::ChmodRules>,

    /// Give each uploaded file and created folder its local mode (SITE CHMOD); --chmod applies on top
    #[arg(help_heading = "Transfer", long)]
    pub perms: bool,

    /// Remove remote files and folders that no longer exist locally
    #[arg(help_heading = "Deletion", long)]
    pub delete: bool,

    /// With --delete: also delete remote paths the excludes leave out (they are kept otherwise)
    #[arg(help_heading = "Deletion", long, requires = "delete")]
    pub delete_excluded: bool,

    /// Refuse to delete more than N remote entries (the rest of the sync still runs; exit 1)
    #[arg(help_heading = "Deletion", long, value_name = "N")]
    pub max_delete: Option<u64>,

    /// Allow --delete even when the local folder is empty (which would empty the remote one)
    #[arg(help_heading = "Deletion", long)]
    pub force: bool,

    /// Move each remote file a run replaces or deletes to REMOTE_PATH/<UTC time of the run>/
    /// first, under its path in the remote folder (same server; relative to the login folder
    /// like the URL's path): for rolling a deploy back
    #[arg(help_heading = "Deletion", long, value_name = "REMOTE_PATH")]
    pub backup_dir: Option<String>,

    /// Read the password from the first line of FILE (within its first 64 KiB)
    #[arg(help_heading = "Connection and TLS", long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Read the password from the environment variable NAME (instead of FTPSYNC_PASSWORD)
    #[arg(help_heading = "Connection and TLS", long, value_name = "NAME")]
    pub password_env: Option<String>,

    /// Seconds to wait for any network operation before giving up on it
    #[arg(help_heading = "Connection and TLS", long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,

    /// Tries for each failed operation (reconnecting when the connection broke)
    #[arg(help_heading = "Connection and TLS", long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub retries: u32,

    /// Use TLS with an ftp:// URL: explicit (AUTH TLS, as ftpes://) or implicit (port 990, as ftps://)
    #[arg(
        help_heading = "Connection and TLS",
        long,
        value_enum,
        value_name = "MODE"
    )]
    pub tls: Option<TlsMode>,

    /// Also trust the certificates in this PEM file (a private CA, or a self-signed server certificate)
    #[arg(help_heading = "Connection and TLS", long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// Do not verify the server's certificate (still encrypted, but open to interception); warns on every run
    #[arg(help_heading = "Connection and TLS", long, conflicts_with = "ca_file")]
    pub insecure: bool,

    /// Use only this TLS version, for servers that fail with the other
    #[arg(
        help_heading = "Connection and TLS",
        long,
        value_enum,
        value_name = "VERSION"
    )]
    pub tls_version: Option<TlsVersionArg>,

    /// Keep mirroring: a sync every DURATION (30s, 15m, 1h) on a steady clock, until stopped
    /// (Ctrl-C, SIGTERM, or Enter on a terminal); with --watch, the full rescan period (default 10m)
    #[arg(help_heading = "Keep mirroring", long, value_name = "DURATION", value_parser = parse_duration)]
    pub every: Option<std::time::Duration>,

    /// Keep mirroring: sync again whenever the local folder changes (only what changed is looked at)
    #[arg(help_heading = "Keep mirroring", long)]
    pub watch: bool,

    /// With --watch: wait for this much quiet after a change before syncing
    #[arg(help_heading = "Keep mirroring", long, value_name = "DURATION", value_parser = parse_duration, default_value = "2s", requires = "watch")]
    pub debounce: std::time::Duration,

    /// Print what would be done; change nothing on the server
    #[arg(help_heading = "Output", short = 'n', long)]
    pub dry_run: bool,

    /// Print the final summary as one JSON object on stdout (change lines go to stderr)
    #[arg(help_heading = "Output", long)]
    pub json: bool,

    /// More detail (-v: each FTP operation, -vv: protocol debugging)
    #[arg(help_heading = "Output", short, long, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Also append the log, with timestamps, at the -v level at least (with each change and
    /// the summary), to FILE (for cron)
    #[arg(help_heading = "Output", long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,

    /// Print only errors and the exit status
    #[arg(help_heading = "Output", short, long)]
    pub quiet: bool,

    /// Show a live progress display on stderr (files, bytes, rate, time left, large files in
    /// flight); the default when stderr is a terminal, without -q and --json
    #[arg(help_heading = "Output", long)]
    pub progress: bool,

    /// Never show the progress display
    #[arg(help_heading = "Output", long, conflicts_with = "progress")]
    pub no_progress: bool,
}

/// What `--generate` writes to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// Bash completions (e.g. into /usr/share/bash-completion/completions/ftpsync)
    CompleteBash,
    /// Zsh completions (into a folder of $fpath, as _ftpsync)
    CompleteZsh,
    /// Fish completions (into ~/.config/fish/completions/ftpsync.fish)
    CompleteFish,
    /// PowerShell completions
    CompletePowershell,
    /// The man page, roff (man ./ftpsync.1)
    Man,
}

/// `--tls`: how an `ftp://` URL is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsMode {
    /// AUTH TLS on the normal port (as ftpes://)
    Explicit,
    /// TLS from the first byte, default port 990 (as ftps://)
    Implicit,
}

/// `--tls-version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsVersionArg {
    #[value(name = "1.2")]
    V1_2,
    #[value(name = "1.3")]
    V1_3,
}

/// The process's arguments with the options of the profile `--profile` names put first (see
/// [`crate::profile`]); a profile that cannot be used is reported as a usage error, exit 2.
pub fn with_profile(args: &[OsString]) -> Result<Vec<OsString>, ExitCode> {
    crate::profile::expand(args).map_err(|e| {
        let json = args.iter().skip(1).any(|a| a == "--json");
        let mode = OutputMode { quiet: false, json };
        Reporter::new(mode).fatal(&e.to_string(), ExitCode::Fatal);
        ExitCode::Fatal
    })
}

/// Handles a command line clap refused (`args` as given, for `--json` and for shortening):
/// `--help` and `--version` print as usual and exit 0; anything else is one line on stderr
/// (and a JSON error object on stdout with `--json`), exit code 2.
pub fn usage_error(error: &clap::Error, args: &[OsString]) -> ExitCode {
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        error.exit();
    }
    let json = args.iter().skip(1).any(|a| a == "--json");
    let mode = OutputMode { quiet: false, json };
    let message = report::shorten_arguments(&usage_error_line(error), args);
    Reporter::new(mode).fatal(&format!("{message}; see ftpsync --help"), ExitCode::Fatal);
    ExitCode::Fatal
}

/// clap's message on one line: its first line, then what it lists below (the missing
/// arguments, the possible values, a tip) in parentheses; without the usage and the "For more
/// information" footer.
fn usage_error_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let mut lines = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid command line");
    let mut line = first.strip_prefix("error: ").unwrap_or(first).to_owned();
    let details: Vec<&str> = lines
        .map(|l| l.trim_start_matches('[').trim_end_matches(']'))
        .map(|l| l.strip_prefix("tip: ").unwrap_or(l))
        .collect();
    if !details.is_empty() {
        if line.ends_with(':') {
            line.push(' ');
            line.push_str(&details.join(", "));
        } else {
            line.push_str(&format!(" ({})", details.join("; ")));
        }
    }
    line
}

/// `--max-depth`: 1 or more (0 would mean "not even the root's entries", a mirror of nothing).
fn parse_depth(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be 1 or more (1 = only the direct entries of LOCAL_DIR)".into()),
        Ok(depth) => Ok(depth),
        Err(e) => Err(e.to_string()),
    }
}

/// A duration as people write it: `30s`, `15m`, `1h30m`, `500ms`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let d =
        humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. 30s, 15m, 1h)"))?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn jobs_outside_1_to_64_are_rejected() {
        for bad in ["0", "65"] {
            assert!(Cli::try_parse_from(["ftpsync", "-j", bad, ".", "ftp://h/"]).is_err());
        }
        let cli = Cli::try_parse_from(["ftpsync", "-j", "64", ".", "ftp://h/"]).unwrap();
        assert_eq!(cli.jobs, 64);
    }

    #[test]
    fn durations_read_as_people_write_them() {
        let cli = Cli::try_parse_from(["ftpsync", "--every", "15m", ".", "ftp://h/"]).unwrap();
        assert_eq!(cli.every, Some(std::time::Duration::from_secs(900)));
        assert!(Cli::try_parse_from(["ftpsync", "--every", "soon", ".", "ftp://h/"]).is_err());
        assert!(Cli::try_parse_from(["ftpsync", "--every", "0s", ".", "ftp://h/"]).is_err());
    }

    fn usage_error(args: &[&str]) -> String {
        usage_error_line(&Cli::try_parse_from(args).expect_err("refused"))
    }

    #[test]
    fn bwlimit_takes_a_rate_and_refuses_what_is_not_one() {
        let cli = Cli::try_parse_from(["ftpsync", "--bwlimit", "2M", ".", "ftp://h/"]).unwrap();
        assert_eq!(cli.bwlimit, Some(2 << 20));
        assert_eq!(
            usage_error(&["ftpsync", "--bwlimit", "2X", ".", "ftp://h/"]),
            "invalid value '2X' for '--bwlimit <RATE>': not a rate; write it like 500K or 2M (bytes per second; 0 or off: no limit)"
        );
    }

    #[test]
    fn max_depth_0_is_refused() {
        let error = usage_error(&["ftpsync", "--max-depth", "0", ".", "ftp://h/"]);
        assert_eq!(
            error,
            "invalid value '0' for '--max-depth <N>': must be 1 or more (1 = only the direct entries of LOCAL_DIR)"
        );
        let cli = Cli::try_parse_from(["ftpsync", "--max-depth", "1", ".", "ftp://h/"]).unwrap();
        assert_eq!(cli.max_depth, Some(1));
    }

    #[test]
    fn a_bad_chmod_rule_is_a_usage_error_naming_it() {
        let error = usage_error(&["ftpsync", "--chmod", "D755,Fq644", ".", "ftp://h/"]);
        assert!(
            error.starts_with("invalid value 'D755,Fq644' for '--chmod <RULES>': rule \"Fq644\": "),
            "{error}"
        );
    }

    #[test]
    fn usage_errors_fit_on_one_line_with_their_details() {
        assert_eq!(
            usage_error(&["ftpsync", "."]),
            "the following required arguments were not provided: <REMOTE>"
        );
        assert_eq!(
            usage_error(&["ftpsync", "--dellete", ".", "ftp://h/"]),
            "unexpected argument '--dellete' found (a similar argument exists: '--delete')"
        );
        assert_eq!(
            usage_error(&["ftpsync", "--tls", "bogus", ".", "ftp://h/"]),
            "invalid value 'bogus' for '--tls <MODE>' (possible values: explicit, implicit)"
        );
        assert_eq!(
            usage_error(&["ftpsync"]),
            "the following required arguments were not provided: <LOCAL_DIR>, <REMOTE>"
        );
    }

    #[test]
    fn a_repeated_option_takes_its_last_value_and_counts_and_lists_add_up() {
        let cli = Cli::try_parse_from([
            "ftpsync", "-j", "8", "-v", "-x", "a", "-j", "2", "-v", "-x", "b", ".", "ftp://h/",
        ])
        .unwrap();
        assert_eq!(cli.jobs, 2, "the command line after a profile wins");
        assert_eq!(cli.verbose, 2);
        assert_eq!(cli.excludes, ["a", "b"]);
    }

    #[test]
    fn excludes_repeat() {
        let cli = Cli::try_parse_from([
            "ftpsync",
            "-x",
            "*.log",
            "--exclude",
            "cache/",
            ".",
            "ftp://h/",
        ])
        .unwrap();
        assert_eq!(cli.excludes, ["*.log", "cache/"]);
    }

    #[test]
    fn tls_options_parse_and_insecure_excludes_a_ca_file() {
        let cli = Cli::try_parse_from([
            "ftpsync",
            "--tls",
            "implicit",
            "--tls-version",
            "1.3",
            ".",
            "ftp://h/",
        ])
        .unwrap();
        assert_eq!(cli.tls, Some(TlsMode::Implicit));
        assert_eq!(cli.tls_version, Some(TlsVersionArg::V1_3));
        let both = ["ftpsync", "--insecure", "--ca-file", "x", ".", "ftps://h/"];
        assert!(Cli::try_parse_from(both).is_err());
        assert!(
            Cli::try_parse_from(["ftpsync", "--tls-version", "1.1", ".", "ftps://h/"]).is_err()
        );
    }
}
