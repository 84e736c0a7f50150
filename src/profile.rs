//! Profiles: named sets of options in `~/.config/ftpsync/config.toml` (`$XDG_CONFIG_HOME`), or
//! the file `--config` names, run with `--profile NAME`:
//!
//! ```toml
//! [profile.www]
//! local = "/var/www/site"
//! remote = "ftpes://deploy@example.com/www"   # no password here
//! password_file = "/etc/ftpsync/www.pw"       # or password_env = "WWW_PASSWORD"
//! delete = true
//! jobs = 8
//! exclude = ["*.log", "cache/"]
//!
//! [profile.backup]                           # pull = true: remote is mirrored into local
//! local = "/backup/www"
//! remote = "ftpes://deploy@example.com/www"
//! pull = true
//! ```
//!
//! A profile becomes command-line options put before the user's own, so that every option
//! means the same in both places and the command line wins (the last of a repeated option
//! counts; lists add up). `local` and `remote` are used when the command line gives none. A key
//! that is not an option is an error naming the key and the file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::cli::Cli;

/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Options a profile cannot set: they choose the profile, or are not about a sync.
const NOT_IN_A_PROFILE: [&str; 5] = ["profile", "config", "generate", "help", "version"];

/// Why a profile could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProfileError {
    #[error("cannot read the configuration file {}: {detail}; check --config, or create it", path.display())]
    Read { path: PathBuf, detail: String },
    #[error("{} is not valid TOML: {detail}", path.display())]
    Toml { path: PathBuf, detail: String },
    #[error("no profile {name:?} in {}: add a [profile.{name}] table", path.display())]
    Missing { name: String, path: PathBuf },
    #[error("unknown key {key:?} in profile {name:?} of {}: use the long option names (jobs, delete, exclude, ...) with _ or -", path.display())]
    UnknownKey {
        key: String,
        name: String,
        path: PathBuf,
    },
    #[error("key {key:?} in profile {name:?} of {}: {why}", path.display())]
    BadValue {
        key: String,
        name: String,
        path: PathBuf,
        why: &'static str,
    },
    #[error("--profile needs a configuration file: set $XDG_CONFIG_HOME or $HOME, or give --config FILE")]
    NoConfigFile,
}

/// `args` (the process's, program name first) with the options of the profile they name put
/// right after the program name; unchanged without `--profile`.
pub(crate) fn expand(args: &[OsString]) -> Result<Vec<OsString>, ProfileError> {
    let Some(name) = option_value(args, "--profile") else {
        return Ok(args.to_vec());
    };
    let path = match option_value(args, "--config") {
        Some(path) => PathBuf::from(path),
        None => default_path().ok_or(ProfileError::NoConfigFile)?,
    };
    let name = name.to_string_lossy().into_owned();
    let profile = read_profile(&path, &name)?;
    let mut expanded = args[..1].to_vec();
    expanded.extend(to_options(&profile, &name, &path)?);
    expanded.extend(args[1..].iter().cloned());
    Ok(expanded)
}

/// `$XDG_CONFIG_HOME/ftpsync/config.toml`, else `~/.config/ftpsync/config.toml`.
fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|home| home.join(".config")))?;
    Some(base.join("ftpsync").join("config.toml"))
}

/// The value of `--name VALUE` or `--name=VALUE` in `args` (the last one), before any `--`.
fn option_value(args: &[OsString], name: &str) -> Option<OsString> {
    let mut found = None;
    let mut args = args.iter().skip(1).take_while(|a| *a != "--");
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        if text == name {
            found = args.next().cloned();
        } else if let Some(value) = text.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            found = Some(OsString::from(value));
        }
    }
    found
}

/// The table `[profile.NAME]` of the file at `path`.
fn read_profile(path: &Path, name: &str) -> Result<toml::Table, ProfileError> {
    let read_error = |detail: String| ProfileError::Read {
        path: path.to_owned(),
        detail,
    };
    // Not a FIFO or a device: opening one could wait forever for a writer.
    let metadata = std::fs::metadata(path).map_err(|e| read_error(e.to_string()))?;
    if !metadata.is_file() {
        return Err(read_error("not a regular file".into()));
    }
    let mut text = String::new();
    let file = std::fs::File::open(path).map_err(|e| read_error(e.to_string()))?;
    std::io::Read::read_to_string(
        &mut std::io::Read::take(file, MAX_CONFIG_BYTES + 1),
        &mut text,
    )
    .map_err(|e| read_error(e.to_string()))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(read_error("larger than 1 MiB".into()));
    }
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ProfileError::Toml {
            path: path.to_owned(),
            detail: e.message().to_string(),
        })?;
    let profile = table.remove("profile").and_then(|profiles| match profiles {
        toml::Value::Table(mut profiles) => profiles.remove(name),
        _ => None,
    });
    match profile {
        Some(toml::Value::Table(profile)) => Ok(profile),
        _ => Err(ProfileError::Missing {
            name: name.to_string(),
            path: path.to_owned(),
        }),
    }
}

/// The profile's keys as command-line options, checked against the options ftpsync has.
fn to_options(
    profile: &toml::Table,
    name: &str,
    path: &Path,
) -> Result<Vec<OsString>, ProfileError> {
    let command = Cli::command();
    let mut options = Vec::new();
    for (key, value) in profile {
        let long = match key.replace('_', "-").as_str() {
            "local" => "profile-local".to_string(),
            "remote" => "profile-remote".to_string(),
            "pull" => "profile-pull".to_string(),
            other => other.to_string(),
        };
        let known = command
            .get_arguments()
            .any(|arg| arg.get_long() == Some(long.as_str()));
        if !known || NOT_IN_A_PROFILE.contains(&long.as_str()) {
            return Err(ProfileError::UnknownKey {
                key: key.clone(),
                name: name.to_string(),
                path: path.to_owned(),
            });
        }
        let bad = |why| ProfileError::BadValue {
            key: key.clone(),
            name: name.to_string(),
            path: path.to_owned(),
            why,
        };
        let flag = format!("--{long}");
        let values = match value {
            toml::Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        for value in values {
            match value {
                toml::Value::Boolean(true) => options.push(OsString::from(&flag)),
                toml::Value::Boolean(false) => {}
                toml::Value::String(text) => {
                    options.push(OsString::from(format!("{flag}={text}")));
                }
                toml::Value::Integer(n) => options.push(OsString::from(format!("{flag}={n}"))),
                _ => return Err(bad("give true/false, a number, a string or a list of them")),
            }
        }
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_profile_becomes_options_before_the_command_line() {
        let (_dir, path) = config(
            "[profile.www]\nlocal = \"/srv/site\"\nremote = \"ftp://u@h/www\"\njobs = 8\n\
             delete = true\nforce = false\nexclude = [\"*.log\", \"cache/\"]\n",
        );
        let path = path.to_str().unwrap();
        let expanded = expand(&args(&[
            "ftpsync",
            "--config",
            path,
            "--profile",
            "www",
            "-j",
            "2",
        ]))
        .unwrap();
        let text: Vec<String> = expanded
            .iter()
            .map(|a| a.to_string_lossy().into())
            .collect();
        assert_eq!(text[0], "ftpsync");
        for option in [
            "--profile-local=/srv/site",
            "--profile-remote=ftp://u@h/www",
            "--jobs=8",
            "--delete",
            "--exclude=*.log",
            "--exclude=cache/",
        ] {
            assert!(text.contains(&option.to_string()), "{option} in {text:?}");
        }
        assert!(!text.iter().any(|a| a.starts_with("--force")), "{text:?}");
        assert_eq!(
            &text[text.len() - 2..],
            ["-j", "2"],
            "the command line last"
        );
    }

    #[test]
    fn unknown_keys_and_missing_profiles_are_errors_naming_them() {
        let (_dir, path) = config("[profile.www]\njbos = 8\n");
        let cli = |name: &str| {
            expand(&args(&[
                "ftpsync",
                "--config",
                path.to_str().unwrap(),
                "--profile",
                name,
            ]))
        };
        let unknown = cli("www").unwrap_err().to_string();
        assert!(
            unknown.starts_with("unknown key \"jbos\" in profile \"www\" of "),
            "{unknown}"
        );
        let missing = cli("ftp").unwrap_err().to_string();
        assert!(missing.contains("add a [profile.ftp] table"), "{missing}");
        let (_dir2, bad) = config("[profile.www]\ngenerate = \"man\"\n");
        let refused = expand(&args(&[
            "ftpsync",
            "--config",
            bad.to_str().unwrap(),
            "--profile=www",
        ]));
        assert!(
            matches!(refused, Err(ProfileError::UnknownKey { .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn a_configuration_that_is_not_a_regular_file_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        for path in [fifo.as_path(), dir.path()] {
            let cli = args(&[
                "ftpsync",
                "--config",
                path.to_str().unwrap(),
                "--profile",
                "www",
            ]);
            let error = expand(&cli).unwrap_err().to_string();
            assert!(error.contains("not a regular file"), "{error}");
        }
    }

    /// The command line `ftpsync --config FILE --profile www [extra...] . ftp://h/` parses to,
    /// FILE holding `[profile.www]` with `keys`.
    fn with_profile(keys: &str, extra: &[&str]) -> (Vec<OsString>, Cli) {
        use clap::Parser;
        let (_dir, path) = config(&format!("[profile.www]\n{keys}"));
        let head = [
            "ftpsync",
            "--config",
            path.to_str().unwrap(),
            "--profile",
            "www",
        ];
        let line = [&head[..], extra, &[".", "ftp://h/"]].concat();
        let expanded = expand(&args(&line)).unwrap();
        let cli = Cli::try_parse_from(&expanded).unwrap();
        (expanded, cli)
    }

    #[test]
    fn a_bwlimit_key_limits_the_profile_s_runs() {
        let (_, cli) = with_profile("bwlimit = \"2M\"\n", &[]);
        assert_eq!(cli.bwlimit, Some(2 << 20));
    }

    #[test]
    fn a_profile_sets_the_backup_dir() {
        let (_, cli) = with_profile("backup_dir = \"www-backups\"\n", &[]);
        assert_eq!(cli.backup_dir.as_deref(), Some("www-backups"));
    }

    #[test]
    fn chmod_and_perms_are_profile_keys() {
        let keys = "chmod = \"D755,F644\"\nperms = true\n";
        let (expanded, cli) = with_profile(keys, &["--chmod", "Fg-w"]);
        assert!(
            expanded.contains(&"--chmod=D755,F644".into()),
            "{expanded:?}"
        );
        assert!(cli.perms);
        let rules = |text| crate::chmod::parse_rules(text).unwrap();
        assert_eq!(
            cli.chmod,
            [rules("D755,F644"), rules("Fg-w")],
            "lists add up"
        );
    }

    #[test]
    fn without_profile_the_command_line_is_untouched() {
        let plain = args(&["ftpsync", "-j", "2", ".", "ftp://h/"]);
        assert_eq!(expand(&plain).unwrap(), plain);
    }
}
