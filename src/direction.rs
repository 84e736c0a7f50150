//! Which way a run mirrors, read from the order of the two arguments as rsync and rclone read
//! it: source first, destination second. A URL first means a pull (the server's folder into the
//! local one); otherwise a push. Also the options a pull refuses, each with why.

use std::path::PathBuf;

use crate::cli::Cli;

/// Which way the files go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Direction {
    /// LOCAL_DIR to the server (`ftpsync LOCAL_DIR ftp://host/path`).
    #[default]
    Push,
    /// The server to LOCAL_DIR (`ftpsync ftp://host/path LOCAL_DIR`): the server is only read.
    Pull,
}

/// The arguments do not make a run in either direction, or ask a pull for what it cannot do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum DirectionError {
    #[error("both arguments are URLs; one must be a local folder (ftpsync LOCAL_DIR URL pushes, ftpsync URL LOCAL_DIR pulls)")]
    TwoUrls,
    #[error("--watch watches the local folder for changes, and a pull (URL first) copies the other way; use --every to pull on a clock")]
    WatchPull,
    #[error("{option} applies only to uploads (LOCAL_DIR first); a pull always downloads to a temporary file renamed into place")]
    UploadOnly { option: &'static str },
    #[error("{option} is about the server's copy, and a pull (URL first) never changes the server; leave it out")]
    ServerOnly { option: &'static str },
    #[error("{option} is not supported with a pull (URL first) yet; {what}")]
    NotYet {
        option: &'static str,
        what: &'static str,
    },
}

/// Whether `arg` is written as an FTP URL (`ftp://`, `ftps://`, `ftpes://`, any case).
pub(crate) fn is_url(arg: &str) -> bool {
    let lower = arg.trim_start().to_ascii_lowercase();
    ["ftp://", "ftps://", "ftpes://"]
        .iter()
        .any(|s| lower.starts_with(s))
}

/// The local folder, the remote URL and the direction, from the two arguments as given
/// (`first` is the one clap calls LOCAL_DIR).
pub(crate) fn settle(
    first: PathBuf,
    second: String,
) -> Result<(PathBuf, String, Direction), DirectionError> {
    let first_is_url = first.to_str().is_some_and(is_url);
    match (first_is_url, is_url(&second)) {
        (true, true) => Err(DirectionError::TwoUrls),
        (true, false) => {
            let url = first.to_str().expect("checked above").to_string();
            Ok((PathBuf::from(second), url, Direction::Pull))
        }
        (false, _) => Ok((first, second, Direction::Push)),
    }
}

/// Refuses the options a pull cannot honour, each with one line saying why.
pub(crate) fn check_pull_options(cli: &Cli) -> Result<(), DirectionError> {
    if cli.watch {
        return Err(DirectionError::WatchPull);
    }
    if cli.inplace {
        return Err(DirectionError::UploadOnly {
            option: "--inplace",
        });
    }
    if cli.backup_dir.is_some() {
        return Err(DirectionError::ServerOnly {
            option: "--backup-dir",
        });
    }
    if !cli.chmod.is_empty() || cli.perms {
        return Err(DirectionError::NotYet {
            option: "--chmod/--perms",
            what: "downloaded files get the modes new files get locally (your umask)",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settled(a: &str, b: &str) -> Result<(PathBuf, String, Direction), DirectionError> {
        settle(PathBuf::from(a), b.to_string())
    }

    #[test]
    fn a_url_first_is_a_pull_and_a_url_second_a_push() {
        assert_eq!(
            settled("ftp://h/site", "./backup").unwrap(),
            ("./backup".into(), "ftp://h/site".into(), Direction::Pull)
        );
        assert_eq!(
            settled("FTPES://h/x", "b").unwrap().2,
            Direction::Pull,
            "schemes in any case"
        );
        assert_eq!(
            settled("./site", "ftp://h/www").unwrap(),
            ("./site".into(), "ftp://h/www".into(), Direction::Push)
        );
        assert_eq!(
            settled("ftp://a/x", "ftps://b/y"),
            Err(DirectionError::TwoUrls)
        );
        // Neither a URL: a push, whose URL parser then says what is wrong with the second.
        assert_eq!(settled("a", "b").unwrap().2, Direction::Push);
    }

    #[test]
    fn a_pull_refuses_what_it_cannot_do_and_says_why() {
        let check = |args: &[&str]| {
            let all = [&["ftpsync"][..], args, &["ftp://h/x", "dir"]].concat();
            check_pull_options(&Cli::try_parse_from(all).unwrap())
        };
        assert_eq!(check(&["--watch"]), Err(DirectionError::WatchPull));
        assert!(check(&["--inplace"]).is_err());
        assert!(check(&["--perms"]).is_err());
        assert!(check(&["--chmod", "F600"]).is_err());
        assert_eq!(
            check(&["--backup-dir", "old"]),
            Err(DirectionError::ServerOnly {
                option: "--backup-dir"
            })
        );
        assert_eq!(
            check(&["--checksum"]),
            Ok(()),
            "compared by the server's hash"
        );
        assert_eq!(check(&["-L"]), Ok(()), "-L follows remote links");
        assert_eq!(check(&["--every", "1h", "--delete", "-j", "8"]), Ok(()));
        let watch = DirectionError::WatchPull.to_string();
        assert!(watch.contains("--every"), "{watch}");
        // --help names exactly the options refused.
        let help = crate::cli::AFTER_HELP.lines();
        let said = help
            .filter(|l| l.starts_with("A pull refuses"))
            .collect::<String>();
        for refused in ["--watch", "--inplace", "--backup-dir", "--chmod", "--perms"] {
            assert!(said.contains(refused), "{said}");
        }
        for taken in ["--checksum", "-L", "--delete"] {
            assert!(!said.contains(taken), "{said}");
        }
    }
}
