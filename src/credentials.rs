//! Finding the login for a target: the URL, then `--password-file`, then `FTPSYNC_PASSWORD`,
//! then the netrc file, then anonymous: what the command line names comes before what the
//! environment happens to hold.
//!
//! The netrc file is read the way ftp(1) and curl read it, because users share one file between
//! all three; like them, it is forgiving (unknown words are skipped, a missing or unreadable file
//! just gives nothing), whereas a `--password-file` the user named explicitly must be readable.
//! Like ftp(1), a netrc file that other users can access is refused when it would supply the
//! password; a password file that others can read only gets a warning (it was named on purpose).
//! Both files are read up to a bound, so naming `/dev/zero` or a huge file fails at once.
//! No password ever reaches a message or a `Debug` output.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::{fmt, fs, io};

use crate::ftp::target::Target;
use crate::ftp::Login;

/// One `machine` (or, with `machine: None`, the `default`) entry of a netrc file.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct NetrcEntry {
    pub(crate) machine: Option<String>,
    pub(crate) login: Option<String>,
    pub(crate) password: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CredentialError {
    #[error("cannot read password file \"{}\": {error}; check the file given with --password-file", path.display())]
    PasswordFile { path: PathBuf, error: io::Error },
    #[error("password file \"{}\" has no line end in its first {} KiB; it should hold only the password, on its first line", path.display(), MAX_PASSWORD_FILE_BYTES >> 10)]
    PasswordFileTooLarge { path: PathBuf },
    #[error("the password in \"{}\" is not valid UTF-8; save the file as UTF-8", path.display())]
    PasswordFileNotUtf8 { path: PathBuf },
    #[error("the {what} from {origin} contains a CR, LF or NUL character, which would corrupt FTP commands; remove it")]
    ControlCharacter { what: &'static str, origin: String },
    #[error("netrc file \"{path}\" can be read or changed by other users (mode {mode:03o}), so its password is not used (as ftp(1) refuses it); run: chmod 600 {path}", path = path.display())]
    NetrcMode { path: PathBuf, mode: u32 },
    #[error("no password for {user}@{host}: give it in the URL, --password-file, FTPSYNC_PASSWORD or ~/.netrc (an empty one: ftp://{user}:@{host}/...)")]
    NoPassword { user: String, host: String },
}

/// Most of a `--password-file` read: its first line is the password, and this is far beyond any
/// password, while naming `/dev/zero` or a huge file by mistake fails at once.
pub(crate) const MAX_PASSWORD_FILE_BYTES: usize = 64 << 10;

/// Most of a netrc file read; a larger one is skipped, as an unreadable one is.
const MAX_NETRC_BYTES: u64 = 1 << 20;

/// Permission bits for the group and others: a netrc with any of them set is refused when it
/// would supply the password, as ftp(1) does.
const NETRC_PRIVATE_MASK: u32 = 0o077;

/// Sources in order: the URL's user/password; then the first line of `password_file`; then the
/// password from `env_password` (FTPSYNC_PASSWORD, passed in by the caller; empty counts as
/// unset); then the netrc file at `netrc_path` (None skips it), matched by
/// machine = target host (and login = URL user if the URL has a user), falling back to `default`.
/// The user defaults to the netrc login, else "anonymous" with password "anonymous@" if nothing
/// else gives one. A named user without any password is an error (an empty password is given
/// as `user:@host` in the URL), rather than an empty PASS the server would refuse.
/// Later sources are only read when the earlier ones leave a gap.
pub(crate) fn resolve_login(
    target: &Target,
    env_password: Option<&str>,
    password_file: Option<&Path>,
    netrc_path: Option<&Path>,
) -> Result<Login, CredentialError> {
    // Each value travels with where it came from, so that an error can say which to fix.
    let origin = |name: &str| name.to_owned();
    // What the command line names beats what the environment happens to hold.
    let mut password = target.password.clone().map(|url| (url, origin("the URL")));
    if let (None, Some(path)) = (&password, password_file) {
        let from_file = read_password_file(path)?;
        password = Some((from_file, format!("password file \"{}\"", path.display())));
    }
    if let (None, Some(env)) = (&password, env_password.filter(|p| !p.is_empty())) {
        password = Some((env.to_owned(), origin("FTPSYNC_PASSWORD")));
    }
    let mut user = target.user.clone().map(|url| (url, origin("the URL")));
    if user.is_none() || password.is_none() {
        if let Some(path) = netrc_path {
            let netrc = format!("netrc file \"{}\"", path.display());
            let (entries, mode) = read_netrc(path);
            let entry = find_entry(entries, &target.host, target.user.as_deref());
            if let Some(entry) = entry {
                let login = entry.login.map(|login| (login, netrc.clone()));
                user = user.or(login);
                let anonymous = user
                    .as_ref()
                    .is_some_and(|(u, _)| u.eq_ignore_ascii_case("anonymous"));
                if let (None, Some(netrc_password)) = (&password, entry.password) {
                    if mode & NETRC_PRIVATE_MASK != 0 && !anonymous {
                        let path = path.to_owned();
                        return Err(CredentialError::NetrcMode { path, mode });
                    }
                    password = Some((netrc_password, netrc));
                }
            }
        }
    }
    let (user, user_origin) = user.unwrap_or(("anonymous".into(), origin("the default")));
    let anonymous = user.eq_ignore_ascii_case("anonymous");
    let (password, password_origin) = match password {
        Some(found) => found,
        None if anonymous => ("anonymous@".into(), origin("the default")),
        None => {
            return Err(CredentialError::NoPassword {
                user,
                host: target.host.clone(),
            })
        }
    };
    // The URL was checked when parsed; the other sources can still hold such characters.
    for (what, value, origin) in [
        ("user name", &user, user_origin),
        ("password", &password, password_origin),
    ] {
        if value.contains(['\r', '\n', '\0']) {
            return Err(CredentialError::ControlCharacter { what, origin });
        }
    }
    Ok(Login { user, password })
}

/// `$NETRC` if set, else `~/.netrc` (`~/_netrc` on Windows if only that one exists, as curl).
pub(crate) fn default_netrc_path() -> Option<PathBuf> {
    netrc_path_from(std::env::var_os("NETRC"), dirs::home_dir())
}

fn netrc_path_from(netrc_var: Option<OsString>, home: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(path) = netrc_var.filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let home = home?;
    let dotted = home.join(".netrc");
    let underscored = home.join("_netrc");
    let windows_fallback = cfg!(windows) && !dotted.exists() && underscored.exists();
    Some(if windows_fallback {
        underscored
    } else {
        dotted
    })
}

/// netrc parsing as ftp(1)/curl read it: tokens separated by any whitespace (entries may span
/// lines or share one), `machine NAME`, `default`, `login`, `password`, `account` (ignored),
/// `macdef NAME` followed by lines up to an empty line (skipped), double-quoted values with
/// backslash escapes, and `#` comments at line start. Unknown words are skipped.
pub(crate) fn parse_netrc(text: &str) -> Vec<NetrcEntry> {
    #[derive(Clone, Copy)]
    enum Value {
        Machine,
        Login,
        Password,
        Account,
    }
    let mut entries = Vec::new();
    let mut current: Option<NetrcEntry> = None;
    let mut pending: Option<Value> = None;
    let mut in_macro = false;
    for line in text.lines() {
        if in_macro {
            in_macro = !line.trim().is_empty();
            continue;
        }
        if line.trim_start().starts_with('#') {
            continue;
        }
        let mut rest = line;
        while let Some(token) = next_token(&mut rest) {
            let entry = current.as_mut();
            match (pending.take(), entry) {
                (Some(Value::Machine), _) => {
                    let machine = NetrcEntry {
                        machine: Some(token),
                        ..NetrcEntry::default()
                    };
                    entries.extend(current.replace(machine));
                }
                (Some(Value::Login), Some(entry)) => entry.login = Some(token),
                (Some(Value::Password), Some(entry)) => entry.password = Some(token),
                (Some(_), _) => {}
                (None, _) => match token.to_ascii_lowercase().as_str() {
                    "machine" => pending = Some(Value::Machine),
                    "login" => pending = Some(Value::Login),
                    "password" => pending = Some(Value::Password),
                    "account" => pending = Some(Value::Account),
                    "default" => entries.extend(current.replace(NetrcEntry::default())),
                    // The rest of this line is the macro's name; its body follows.
                    "macdef" => {
                        in_macro = true;
                        break;
                    }
                    _ => {}
                },
            }
        }
    }
    entries.extend(current);
    entries
}

/// Takes the next token off `line`. A token starting with `"` runs to the closing quote and may
/// hold spaces; inside it `\n`, `\r` and `\t` are control characters and `\x` is `x`, as in
/// curl. curl rejects the whole file over an unclosed quote; taking the line's rest is kinder.
fn next_token(line: &mut &str) -> Option<String> {
    let text = line.trim_start();
    if text.is_empty() {
        return None;
    }
    let Some(quoted) = text.strip_prefix('"') else {
        let end = text.find(char::is_whitespace).unwrap_or(text.len());
        *line = &text[end..];
        return Some(text[..end].to_owned());
    };
    let mut token = String::new();
    let mut chars = quoted.char_indices();
    *line = "";
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                *line = &quoted[i + 1..];
                break;
            }
            '\\' => match chars.next().map(|(_, escaped)| escaped) {
                Some('n') => token.push('\n'),
                Some('r') => token.push('\r'),
                Some('t') => token.push('\t'),
                Some(other) => token.push(other),
                None => {}
            },
            c => token.push(c),
        }
    }
    Some(token)
}

/// The first line of the password file, read no further than [`MAX_PASSWORD_FILE_BYTES`].
/// Warns when other users can read the file.
fn read_password_file(path: &Path) -> Result<String, CredentialError> {
    let unreadable = |error| CredentialError::PasswordFile {
        path: path.to_owned(),
        error,
    };
    let file = fs::File::open(path).map_err(unreadable)?;
    let metadata = file.metadata().map_err(unreadable)?;
    let mode = metadata.permissions().mode();
    // Devices and pipes (`<(pass show ftp)`) hold no password at rest.
    if metadata.is_file() && mode & 0o004 != 0 {
        let shown = path.display();
        tracing::warn!(
            "password file \"{shown}\" can be read by other users (mode {:03o}); run: chmod 600 {shown}",
            mode & 0o777
        );
    }
    let mut bytes = Vec::new();
    let limit = MAX_PASSWORD_FILE_BYTES as u64 + 1;
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    let line = match bytes.iter().position(|&b| b == b'\n') {
        Some(end) => &bytes[..end],
        None if bytes.len() > MAX_PASSWORD_FILE_BYTES => {
            return Err(CredentialError::PasswordFileTooLarge {
                path: path.to_owned(),
            })
        }
        None => &bytes[..],
    };
    let line = std::str::from_utf8(line).map_err(|_| CredentialError::PasswordFileNotUtf8 {
        path: path.to_owned(),
    })?;
    // Windows Notepad may start the file with a byte order mark; it is never part of a password.
    let line = line.trim_start_matches('\u{feff}');
    Ok(line.strip_suffix('\r').unwrap_or(line).to_owned())
}

/// The entries of the netrc file and its permission bits; nothing if it is missing, unreadable
/// or larger than [`MAX_NETRC_BYTES`] (with a warning for the last two).
fn read_netrc(path: &Path) -> (Vec<NetrcEntry>, u32) {
    let read = || -> io::Result<(String, u32)> {
        let file = fs::File::open(path)?;
        let mode = file.metadata()?.permissions().mode() & 0o777;
        let mut text = String::new();
        file.take(MAX_NETRC_BYTES + 1).read_to_string(&mut text)?;
        if text.len() as u64 > MAX_NETRC_BYTES {
            let limit = MAX_NETRC_BYTES >> 20;
            let message = format!("larger than {limit} MiB; is it the right file?");
            return Err(io::Error::new(io::ErrorKind::FileTooLarge, message));
        }
        Ok((text, mode))
    };
    match read() {
        Ok((text, mode)) => (parse_netrc(&text), mode),
        Err(error) if error.kind() == io::ErrorKind::NotFound => (Vec::new(), 0),
        Err(error) => {
            tracing::warn!("ignoring netrc file \"{}\": {error}", path.display());
            (Vec::new(), 0)
        }
    }
}

/// The first entry for `host` whose login is `user` (any login if no user is given), else the
/// first such `default` entry.
fn find_entry(mut entries: Vec<NetrcEntry>, host: &str, user: Option<&str>) -> Option<NetrcEntry> {
    let fits = |e: &NetrcEntry| user.is_none_or(|u| e.login.as_deref() == Some(u));
    let for_host = |e: &NetrcEntry| {
        e.machine
            .as_ref()
            .is_some_and(|m| m.eq_ignore_ascii_case(host))
    };
    let index = (entries.iter().position(|e| for_host(e) && fits(e)))
        .or_else(|| entries.iter().position(|e| e.machine.is_none() && fits(e)))?;
    Some(entries.swap_remove(index))
}

impl fmt::Debug for NetrcEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetrcEntry")
            .field("machine", &self.machine)
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NETRC: &str = "machine h login netrc_user password netrc_pw\n";

    /// Resolves the login for `url` with a password file and a netrc file holding the given
    /// texts (None: no password file / a netrc path where there is no file).
    fn try_login(
        url: &str,
        env: Option<&str>,
        file: Option<&str>,
        netrc: Option<&str>,
    ) -> Result<Login, CredentialError> {
        let dir = tempfile::tempdir().unwrap();
        let (file_path, netrc_path) = (dir.path().join("pw"), dir.path().join("netrc"));
        for (path, text) in [(&file_path, file), (&netrc_path, netrc)] {
            if let Some(text) = text {
                fs::write(path, text).unwrap();
                fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
        let target = Target::parse(url).unwrap();
        let file_path = file.map(|_| file_path.as_path());
        resolve_login(&target, env, file_path, Some(&netrc_path))
    }

    /// `(user, password)` that `url` logs in with.
    fn login(
        url: &str,
        env: Option<&str>,
        file: Option<&str>,
        netrc: Option<&str>,
    ) -> (String, String) {
        let login = try_login(url, env, file, netrc).unwrap();
        (login.user, login.password)
    }

    fn up(user: &str, password: &str) -> (String, String) {
        (user.to_owned(), password.to_owned())
    }

    fn entry(machine: Option<&str>, login: &str, password: &str) -> NetrcEntry {
        let machine = machine.map(str::to_owned);
        let (login, password) = (Some(login.to_owned()), Some(password.to_owned()));
        NetrcEntry {
            machine,
            login,
            password,
        }
    }

    #[test]
    fn sources_take_precedence_in_order_url_file_env_netrc() {
        let all = |url| login(url, Some("env_pw"), Some("file_pw\n"), Some(NETRC));
        assert_eq!(all("ftp://bob:url_pw@h"), up("bob", "url_pw"));
        assert_eq!(
            all("ftp://bob@h"),
            up("bob", "file_pw"),
            "the flag beats the environment"
        );
        assert_eq!(all("ftp://h"), up("netrc_user", "file_pw"));
        let env = |url| login(url, Some("env_pw"), None, Some(NETRC));
        assert_eq!(env("ftp://h"), up("netrc_user", "env_pw"));
        let file = |text| login("ftp://h", Some(""), Some(text), Some(NETRC));
        assert_eq!(
            file("file_pw\r\n"),
            up("netrc_user", "file_pw"),
            "empty env = unset"
        );
        assert_eq!(file("\u{feff}file_pw\nmore"), up("netrc_user", "file_pw"));
        assert_eq!(
            login("ftp://h", None, None, Some(NETRC)),
            up("netrc_user", "netrc_pw")
        );
    }

    #[test]
    fn without_any_source_the_login_is_anonymous() {
        let of = |url, netrc| login(url, None, None, netrc);
        assert_eq!(of("ftp://h", None), up("anonymous", "anonymous@"));
        assert_eq!(of("ftp://anonymous@h", None), up("anonymous", "anonymous@"));
        let other_host = Some("machine x login a password b\n");
        assert_eq!(of("ftp://h", other_host), up("anonymous", "anonymous@"));
        let named = try_login("ftp://bob@h", None, None, None).unwrap_err();
        assert_eq!(
            named.to_string(),
            "no password for bob@h: give it in the URL, --password-file, FTPSYNC_PASSWORD or \
             ~/.netrc (an empty one: ftp://bob:@h/...)",
            "a named user gets no default"
        );
        assert_eq!(
            of("ftp://bob:@h", None),
            up("bob", ""),
            "unless given empty"
        );
    }

    #[test]
    fn netrc_entries_must_match_the_url_user_else_default_applies() {
        let netrc = "machine H login alice password a\nmachine h login bob password b\n\
                     default login carol password c\n";
        let of = |url| login(url, None, None, Some(netrc));
        assert_eq!(of("ftp://h"), up("alice", "a"), "machine names ignore case");
        assert_eq!(of("ftp://bob@h"), up("bob", "b"));
        assert_eq!(of("ftp://carol@h"), up("carol", "c"));
        assert!(try_login("ftp://dave@h", None, None, Some(netrc)).is_err());
        assert_eq!(of("ftp://other"), up("carol", "c"));
    }

    #[test]
    fn an_unreadable_netrc_is_skipped_but_a_missing_password_file_is_an_error() {
        let target = Target::parse("ftp://h").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let netrc_is_a_dir = resolve_login(&target, None, None, Some(dir.path())).unwrap();
        assert_eq!(netrc_is_a_dir.user, "anonymous");
        let missing = dir.path().join("nope");
        let error = resolve_login(&target, None, Some(&missing), None).unwrap_err();
        let start = format!("cannot read password file \"{}\": ", missing.display());
        let end = "; check the file given with --password-file";
        let message = error.to_string();
        assert!(
            message.starts_with(&start) && message.ends_with(end),
            "{message}"
        );
        let in_url = Target::parse("ftp://bob:url_pw@h").unwrap();
        let url_first = resolve_login(&in_url, Some("env_pw"), Some(&missing), None);
        assert_eq!(
            url_first.unwrap().password,
            "url_pw",
            "later sources are read only if needed"
        );
        // A flag that names a file is never silently outranked by the environment.
        assert!(resolve_login(&target, Some("env_pw"), Some(&missing), None).is_err());
    }

    #[test]
    fn control_characters_are_refused_without_echoing_the_password() {
        let error = try_login("ftp://bob@h", Some("se\ncret"), None, None).unwrap_err();
        let message = error.to_string();
        let expected = "the password from FTPSYNC_PASSWORD contains a CR, LF or NUL character";
        assert!(
            message.starts_with(expected) && !message.contains("cret"),
            "{message}"
        );
        let netrc = Some("machine h login \"a\\rb\" password p");
        let error = try_login("ftp://h", None, None, netrc).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("the user name from netrc file"),
            "{error}"
        );
    }

    #[test]
    fn netrc_tokens_may_share_a_line_or_spread_over_lines() {
        let text = "machine a login la password pa machine b login lb password pb\n\
                    machine\nc\n  login lc\n\tpassword   pc account acct\n\
                    # machine commented login x password x\n";
        let a = entry(Some("a"), "la", "pa");
        let b = entry(Some("b"), "lb", "pb");
        assert_eq!(parse_netrc(text), [a, b, entry(Some("c"), "lc", "pc")]);
    }

    #[test]
    fn netrc_default_quoted_values_and_macdef_are_understood() {
        let text = "machine a login la password \"p w\\\"d\\\\\"\n\
                    macdef init\ncd /tmp\nmachine evil login x password y\n\n\
                    default login anonymous password me@\n";
        let quoted = entry(Some("a"), "la", "p w\"d\\");
        assert_eq!(parse_netrc(text), [quoted, entry(None, "anonymous", "me@")]);
    }

    #[test]
    fn debug_output_hides_passwords() {
        let (user, password) = up("bob", "hunter2");
        let shown = format!("{:?}", Login { user, password });
        assert_eq!(shown, r#"Login { user: "bob", password: "***" }"#);
        let shown = format!("{:?}", entry(Some("h"), "bob", "hunter2"));
        assert!(shown.contains(r#"password: Some("***")"#) && !shown.contains("hunter2"));
    }

    #[test]
    fn netrc_path_is_the_netrc_variable_else_home_dot_netrc() {
        let home = || Some(PathBuf::from("/home/u"));
        let from_var = netrc_path_from(Some("/etc/n".into()), home());
        assert_eq!(from_var, Some(PathBuf::from("/etc/n")));
        let empty_var = netrc_path_from(Some("".into()), home());
        assert_eq!(empty_var, Some(PathBuf::from("/home/u/.netrc")));
        assert_eq!(netrc_path_from(None, None), None);
    }

    #[test]
    fn a_netrc_others_can_read_is_refused_only_when_it_supplies_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let netrc = dir.path().join("netrc");
        fs::write(
            &netrc,
            "machine h login bob password hunter2sekrit\ndefault login anonymous password me@\n",
        )
        .unwrap();
        fs::set_permissions(&netrc, fs::Permissions::from_mode(0o644)).unwrap();
        let of =
            |url: &str, env| resolve_login(&Target::parse(url).unwrap(), env, None, Some(&netrc));
        let message = of("ftp://h", None).unwrap_err().to_string();
        let fix = format!("run: chmod 600 {}", netrc.display());
        assert!(
            message.contains("(mode 644)") && message.ends_with(&fix),
            "{message}"
        );
        // (A distinctive password: a random temporary folder's name may hold any short one.)
        assert!(!message.contains("hunter2sekrit"), "{message}");
        assert_eq!(of("ftp://h", Some("env_pw")).unwrap().password, "env_pw");
        assert_eq!(
            of("ftp://other", None).unwrap().password,
            "me@",
            "anonymous, as ftp(1)"
        );
        fs::set_permissions(&netrc, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(of("ftp://h", None).unwrap().password, "hunter2sekrit");
    }

    #[test]
    fn a_password_file_is_read_no_further_than_its_limit() {
        let target = Target::parse("ftp://bob@h").unwrap();
        let of = |path: &Path| resolve_login(&target, None, Some(path), None);
        let message = of(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(
            message.contains("no line end in its first 64 KiB"),
            "{message}"
        );
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("long");
        fs::write(&long, "a".repeat(MAX_PASSWORD_FILE_BYTES + 1)).unwrap();
        assert!(matches!(
            of(&long),
            Err(CredentialError::PasswordFileTooLarge { .. })
        ));
        let first_line = dir.path().join("first-line");
        fs::write(&first_line, format!("pw\n{}", "b".repeat(1 << 20))).unwrap();
        assert_eq!(of(&first_line).unwrap().password, "pw");
    }
}
