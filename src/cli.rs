//! The command line as the user types it (clap). Turned into a settled [`crate::config::Config`]
//! by `Config::from_cli`; nothing past that point sees clap types.

use std::path::PathBuf;

use clap::{ArgAction, Parser};

use crate::exit_codes::EXIT_CODES_HELP;

const AFTER_HELP: &str = "\
The remote is a URL: ftp://[user[:password]@]host[:port]/path. The path is relative to the login
directory, as in curl; a leading %2F or a double slash (ftp://host//srv/www) makes it absolute.
The remote directory and its parents are created when missing.

Password, first found: the URL, $FTPSYNC_PASSWORD, --password-file, ~/.netrc (or $NETRC).
Passwords are never printed.

Examples:
  ftpsync ./site ftp://deploy@example.com/www --delete
  FTPSYNC_PASSWORD=... ftpsync -j 8 --exclude '*.log' ./exports ftp://backup@nas/exports
  ftpsync --dry-run --delete ./site ftp://deploy@example.com/www

";

/// Mirror a local directory tree to an FTP server, over several connections at once.
#[derive(Debug, Parser)]
#[command(name = "ftpsync", version, after_help = format!("{AFTER_HELP}{EXIT_CODES_HELP}"))]
pub struct Cli {
    /// Local directory to mirror (never modified)
    pub local_dir: PathBuf,

    /// Remote directory, as ftp://[user[:password]@]host[:port]/path
    pub remote: String,

    /// Parallel workers, each with its own FTP connection
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,

    /// Remove remote files and folders that no longer exist locally
    #[arg(long)]
    pub delete: bool,

    /// Print what would be done; change nothing on the server
    #[arg(short = 'n', long)]
    pub dry_run: bool,

    /// Descend at most N levels below LOCAL_DIR (1 = only its direct entries)
    #[arg(long, value_name = "N")]
    pub max_depth: Option<usize>,

    /// Skip paths matching GLOB ('*.log', 'cache/', '**/tmp'); excluded remote paths are never deleted
    #[arg(short = 'x', long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,

    /// Read exclude globs from FILE, one per line ('#' starts a comment)
    #[arg(long, value_name = "FILE")]
    pub exclude_from: Vec<PathBuf>,

    /// Read the password from the first line of FILE
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Seconds to wait for any network operation before giving up on it
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,

    /// Tries for each failed operation (reconnecting when the connection broke)
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub retries: u32,

    /// Upload straight to the final name instead of a temporary name renamed into place
    #[arg(long)]
    pub inplace: bool,

    /// Refuse to delete more than N remote entries (the rest of the sync still runs; exit 1)
    #[arg(long, value_name = "N")]
    pub max_delete: Option<u64>,

    /// Allow --delete even when the local folder is empty (which would empty the remote one)
    #[arg(long)]
    pub force: bool,

    /// Follow symbolic links and upload what they point at (loops are detected and skipped)
    #[arg(short = 'L', long)]
    pub follow_symlinks: bool,

    /// Print the final summary as one JSON object on stdout (change lines go to stderr)
    #[arg(long)]
    pub json: bool,

    /// More detail (-v: each FTP operation, -vv: protocol debugging)
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Print only errors and the exit status
    #[arg(short, long)]
    pub quiet: bool,
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
}
