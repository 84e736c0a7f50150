//! The remote side of a sync: an `ftp://`, `ftpes://` or `ftps://` URL split into its parts.
//!
//! The URL is taken apart by hand rather than with `url::Url`, which normalises `.`/`..`
//! segments, silently drops tabs and newlines and treats `ftp` paths specially. Paths follow
//! curl's reading of FTP URLs instead: relative to the login directory unless they start with
//! `//` or `%2F`. Only host validation (IDNA, IP literals) is left to the `url` crate.
//! The password is never formatted anywhere: errors show the URL with it replaced by `***`.

use std::fmt;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::tls::TlsConfig;
use crate::report::shorten;

/// Escaped when a user name or path segment is written into a URL. More than strictly needed,
/// but then it surely parses back to the same text.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `ftp://`: plain FTP.
    Ftp,
    /// `ftpes://`: explicit TLS (`AUTH TLS` on the normal port).
    Ftpes,
    /// `ftps://`: implicit TLS from the first byte.
    Ftps,
}

impl Scheme {
    /// Whether connections use TLS.
    pub(crate) fn is_tls(self) -> bool {
        self != Scheme::Ftp
    }
}

impl Scheme {
    pub(crate) fn default_port(self) -> u16 {
        match self {
            Scheme::Ftp | Scheme::Ftpes => 21,
            Scheme::Ftps => 990,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scheme::Ftp => "ftp",
            Scheme::Ftpes => "ftpes",
            Scheme::Ftps => "ftps",
        }
    }

    fn from_name(name: &str) -> Option<Scheme> {
        [Scheme::Ftp, Scheme::Ftpes, Scheme::Ftps]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) scheme: Scheme,
    /// Without brackets for IPv6.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Percent-decoded.
    pub(crate) user: Option<String>,
    /// Percent-decoded. Never printed: `Debug` and every URL formatter leave it out.
    pub(crate) password: Option<String>,
    /// Remote root of the mirror: "" = the login directory; "a/b" relative to the login
    /// directory; "/a/b" absolute. Never a trailing slash (except the absolute root "/").
    pub(crate) path: String,
    /// How to verify the server on `ftpes://` and `ftps://`, loaded by `Config::from_cli`
    /// (None: the system's trust store, any TLS version).
    pub(crate) tls: Option<TlsConfig>,
}

/// Every message has the form `invalid remote URL "<url>": <problem>; <fix>`, where `<url>`
/// has its password replaced by `***`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum TargetError {
    #[error("invalid remote URL {url:?}: no scheme; write it as ftp://host/path, ftpes://host/path or ftps://host/path")]
    MissingScheme { url: String },
    #[error("invalid remote URL {url:?}: unsupported scheme {scheme:?}; use ftp://, ftpes:// or ftps://")]
    UnsupportedScheme { url: String, scheme: String },
    #[error("invalid remote URL {url:?}: no host name; write it as {scheme}://host/path")]
    MissingHost { url: String, scheme: &'static str },
    #[error("invalid remote URL {url:?}: invalid host {host:?}; use a host name, an IPv4 address or an IPv6 address in brackets like [::1]")]
    InvalidHost { url: String, host: String },
    #[error("invalid remote URL {url:?}: invalid port {port:?}; use a number from 1 to 65535")]
    InvalidPort { url: String, port: String },
    #[error("invalid remote URL {url:?}: unencoded \"@\" after the host; percent-encode \"/\", \"?\", \"#\" and \"@\" in the user name and password (\"/\" is %2F) and \"@\" in the path as %40")]
    UnencodedAt { url: String },
    #[error("invalid remote URL {url:?}: query strings (?) and fragments (#) are not supported; percent-encode \"?\" as %3F and \"#\" as %23 if they are part of a name")]
    QueryOrFragment { url: String },
    #[error("invalid remote URL {url:?}: the path contains a \"..\" segment; name the remote directory without \"..\" (start the path with // or %2F to make it absolute)")]
    DotDotSegment { url: String },
    #[error("invalid remote URL {url:?}: the {part} contains a control character (CR, LF, NUL, ...) that would corrupt FTP commands; remove it")]
    ControlCharacter { url: String, part: &'static str },
    #[error("invalid remote URL {url:?}: the {part} is not valid UTF-8 once percent-decoded; percent-encode names as UTF-8")]
    NotUtf8 { url: String, part: &'static str },
    #[error("invalid remote URL {url:?}: {scheme}:// conflicts with --tls {mode}; give --tls only with ftp://, or use ftpes:// (explicit) or ftps:// (implicit) alone")]
    TlsConflict {
        url: String,
        scheme: &'static str,
        mode: &'static str,
    },
}

impl Target {
    /// Parses an `ftp://`, `ftpes://` or `ftps://` URL.
    pub(crate) fn parse(url: &str) -> Result<Target, TargetError> {
        Self::parse_as(url, None)
    }

    /// Like [`Target::parse`], for a URL given with `--tls` (`tls` is `Ftpes` for explicit,
    /// `Ftps` for implicit): an `ftp://` URL takes that scheme, and without a port its default
    /// port; an `ftpes://` or `ftps://` URL must already agree.
    pub(crate) fn parse_with_tls(url: &str, tls: Scheme) -> Result<Target, TargetError> {
        Self::parse_as(url, Some(tls))
    }

    fn parse_as(url: &str, forced: Option<Scheme>) -> Result<Target, TargetError> {
        let input = url.trim();
        // Shortened: an error repeating a 100,000-character URL would bury what it says.
        let shown = shorten(&redact(input)).into_owned();
        macro_rules! fail {
            ($kind:ident $(, $field:ident: $value:expr)*) => {
                TargetError::$kind { url: shown.clone() $(, $field: $value)* }
            };
        }
        let decode = |raw: &str, part: &'static str| {
            let bytes: Vec<u8> = percent_decode_str(raw).collect();
            let text = String::from_utf8(bytes).map_err(|_| fail!(NotUtf8, part: part))?;
            // These would let a crafted URL smuggle extra commands onto the control channel.
            if text.contains(['\r', '\n', '\0']) {
                return Err(fail!(ControlCharacter, part: part));
            }
            Ok(text)
        };

        if input.contains(char::is_control) {
            return Err(fail!(ControlCharacter, part: "URL"));
        }
        let (scheme_name, rest) = split_scheme(input).ok_or_else(|| fail!(MissingScheme))?;
        let scheme = Scheme::from_name(scheme_name)
            .ok_or_else(|| fail!(UnsupportedScheme, scheme: shorten(scheme_name).into_owned()))?;
        let scheme = match (scheme, forced) {
            (given, None) => given,
            (Scheme::Ftp, Some(tls)) => tls,
            (given, Some(tls)) if given == tls => given,
            (given, Some(tls)) => {
                let mode = if tls == Scheme::Ftps {
                    "implicit"
                } else {
                    "explicit"
                };
                return Err(fail!(TlsConflict, scheme: given.as_str(), mode: mode));
            }
        };
        let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        // Most likely a password with a raw '/', '?' or '#' that cut the authority short;
        // parsing on would send the rest of that password as the host or the path.
        if tail.contains('@') {
            return Err(fail!(UnencodedAt));
        }
        if tail.contains(['?', '#']) {
            return Err(fail!(QueryOrFragment));
        }

        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let (user, password) = match userinfo.map(|info| info.split_once(':').ok_or(info)) {
            None => (None, None),
            Some(Err(user)) => (Some(decode(user, "user name")?), None),
            Some(Ok((user, password))) => (
                Some(decode(user, "user name")?),
                Some(decode(password, "password")?),
            ),
        };
        let user = user.filter(|u| !u.is_empty());

        let invalid_host = |host: &str| fail!(InvalidHost, host: shorten(host).into_owned());
        let (host, port) = split_host_port(host_port).ok_or_else(|| invalid_host(host_port))?;
        if host.is_empty() {
            return Err(fail!(MissingHost, scheme: scheme.as_str()));
        }
        let host = match url::Host::parse(host).map_err(|_| invalid_host(host))? {
            url::Host::Ipv6(addr) => addr.to_string(), // unlike `Host`'s Display, unbracketed
            other => other.to_string(),
        };
        let port = match port {
            None | Some("") => scheme.default_port(),
            Some(digits) => match digits.parse() {
                Ok(port) if port != 0 && digits.bytes().all(|b| b.is_ascii_digit()) => port,
                _ => return Err(fail!(InvalidPort, port: shorten(digits).into_owned())),
            },
        };

        // Decoding before splitting makes a leading %2F count as a second slash, as in curl.
        let decoded = decode(tail.strip_prefix('/').unwrap_or(tail), "path")?;
        let segments: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).collect();
        if segments.contains(&"..") {
            return Err(fail!(DotDotSegment));
        }
        let root = if decoded.starts_with('/') { "/" } else { "" };
        let path = format!("{root}{}", segments.join("/"));
        Ok(Target {
            scheme,
            host,
            port,
            user,
            password,
            path,
            tls: None,
        })
    }

    /// The URL without the password (user kept), e.g. "ftp://bob@example.com:2121/site" — safe
    /// for logs. The default port is left out; an absolute path shows as `//abs/dir`.
    pub(crate) fn display_url(&self) -> String {
        self.format_url(false)
    }

    /// Remote path of `rel` (a '/'-separated relative path, "" for the root itself) under the root:
    /// root "" + "a/b" -> "a/b"; root "site" + "a" -> "site/a"; root "/" + "a" -> "/a";
    /// root "/x" + "" -> "/x"; root "" + "" -> "" (meaning the login dir).
    pub(crate) fn remote_path(&self, rel: &str) -> String {
        // A stray leading '/' would turn the result absolute and escape the mirror root.
        let rel = rel.trim_matches('/');
        match (self.path.as_str(), rel) {
            (root, "") => root.to_owned(),
            ("", rel) => rel.to_owned(),
            ("/", rel) => format!("/{rel}"),
            (root, rel) => format!("{root}/{rel}"),
        }
    }

    /// Like [`Target::display_url`] but always with the port, so that `ftp://h/` and
    /// `ftp://h:21/` key the same local state.
    pub(crate) fn state_key(&self) -> String {
        self.format_url(true)
    }

    fn format_url(&self, always_port: bool) -> String {
        let user = self
            .user
            .as_ref()
            .map(|u| format!("{}@", utf8_percent_encode(u, ESCAPED)));
        let bracketed = self.host.contains(':');
        let host = bracketed.then(|| format!("[{}]", self.host));
        let show_port = always_port || self.port != self.scheme.default_port();
        let port = show_port.then(|| format!(":{}", self.port));
        let path: Vec<String> = self
            .path
            .split('/')
            .map(|s| utf8_percent_encode(s, ESCAPED).to_string())
            .collect();
        format!(
            "{}://{}{}{}/{}",
            self.scheme.as_str(),
            user.unwrap_or_default(),
            host.as_ref().unwrap_or(&self.host),
            port.unwrap_or_default(),
            path.join("/")
        )
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_url())
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("path", &self.path)
            .field("tls", &self.tls)
            .finish()
    }
}

/// `("ftp", "host/path")` for `ftp://host/path`; `None` unless the part before `://` is a
/// plausible scheme name, so that a password can never be mistaken for (and echoed as) one.
fn split_scheme(input: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = input.split_once("://")?;
    let mut chars = scheme.chars();
    let plausible = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    plausible.then_some((scheme, rest))
}

/// `("[::1]", Some("21"))` for `[::1]:21`, `("h", None)` for `h`; `None` for unbalanced
/// brackets or an IPv6 address without them.
fn split_host_port(host_port: &str) -> Option<(&str, Option<&str>)> {
    let host_end = if host_port.starts_with('[') {
        host_port.find(']')? + 1
    } else {
        host_port.find(':').unwrap_or(host_port.len())
    };
    let (host, after) = host_port.split_at(host_end);
    match after {
        "" => Some((host, None)),
        _ => after
            .strip_prefix(':')
            .filter(|p| !p.contains(':'))
            .map(|p| (host, Some(p))),
    }
}

/// `input` with everything between the first ':' of the user info and the last '@' replaced by
/// `***`. The last '@' of the whole URL is used, not of the authority, because a password with
/// a raw '/', '?' or '#' splits the authority early; that may hide more than the password, but
/// such URLs are rejected anyway, and never a byte of the password is shown.
fn redact(input: &str) -> String {
    let start = split_scheme(input).map_or(0, |(scheme, _)| scheme.len() + 3);
    let rest = &input[start..];
    match rest
        .rfind('@')
        .and_then(|at| Some((rest[..at].find(':')?, at)))
    {
        Some((colon, at)) => format!("{}{}:***{}", &input[..start], &rest[..colon], &rest[at..]),
        None => input.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Target {
        Target::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn error(url: &str) -> String {
        Target::parse(url).expect_err(url).to_string()
    }

    #[test]
    fn a_url_is_split_into_its_decoded_parts() {
        let t = parse("FTP://bob%40corp:p%3Aw%2F@Example.COM:2121/my%20site/caf%C3%A9/");
        let expected = r#"Target { scheme: Ftp, host: "example.com", port: 2121, user: Some("bob@corp"), password: Some("***"), path: "my site/café", tls: None }"#;
        assert_eq!(format!("{t:?}"), expected, "Debug must hide the password");
        assert_eq!(t.password.as_deref(), Some("p:w/"));
        assert_eq!(parse("ftp://bob:@h").password.as_deref(), Some(""));
        assert_eq!(parse("ftp://bob@h").password, None);
        assert_eq!(parse("ftp://b:p@ss@h").password.unwrap(), "p@ss");
    }

    #[test]
    fn each_scheme_has_its_default_port() {
        for (url, scheme, port) in [
            ("ftp://h", Scheme::Ftp, 21),
            ("ftpes://h:/", Scheme::Ftpes, 21),
            ("ftps://h", Scheme::Ftps, 990),
        ] {
            let t = parse(url);
            assert_eq!((t.scheme, t.port), (scheme, port), "{url}");
        }
    }

    #[test]
    fn tls_option_turns_ftp_into_the_chosen_scheme_and_must_agree_with_the_others() {
        let with = |url: &str, tls| Target::parse_with_tls(url, tls);
        let t = with("ftp://h/x", Scheme::Ftps).unwrap();
        assert_eq!((t.scheme, t.port), (Scheme::Ftps, 990));
        let t = with("ftp://h:2121/x", Scheme::Ftps).unwrap();
        assert_eq!((t.scheme, t.port), (Scheme::Ftps, 2121));
        let t = with("ftp://h/x", Scheme::Ftpes).unwrap();
        assert_eq!((t.scheme, t.port), (Scheme::Ftpes, 21));
        assert_eq!(t.display_url(), "ftpes://h/x");
        assert_eq!(
            with("ftpes://h", Scheme::Ftpes).unwrap().scheme,
            Scheme::Ftpes
        );
        let err = with("ftps://bob:pw@h/x", Scheme::Ftpes)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            r#"invalid remote URL "ftps://bob:***@h/x": ftps:// conflicts with --tls explicit; give --tls only with ftp://, or use ftpes:// (explicit) or ftps:// (implicit) alone"#
        );
    }

    #[test]
    fn path_is_relative_unless_it_starts_with_a_double_slash_or_2f() {
        for (url, path) in [
            ("ftp://h", ""),
            ("ftp://h/", ""),
            ("ftp://h/a/b/", "a/b"),
            ("ftp://h/a//b", "a/b"),
            ("ftp://h/a/./b", "a/./b"),
            ("ftp://h//abs/dir/", "/abs/dir"),
            ("ftp://h/%2Fabs/dir", "/abs/dir"),
            ("ftp://h/%2fabs", "/abs"),
            ("ftp://h//", "/"),
            ("ftp://h/%2F", "/"),
            ("ftp://h/a%40b%3F%23", "a@b?#"),
        ] {
            assert_eq!(parse(url).path, path, "{url}");
        }
    }

    #[test]
    fn ipv6_hosts_need_brackets_in_the_url_only() {
        let t = parse("ftp://[::1]:2121/x");
        assert_eq!((t.host.as_str(), t.port), ("::1", 2121));
        assert_eq!(t.display_url(), "ftp://[::1]:2121/x");
        for url in ["ftp://::1/x", "ftp://[::1/x", "ftp://[::1]x/"] {
            assert!(error(url).contains("invalid host"), "{url}");
        }
    }

    #[test]
    fn errors_are_one_line_and_name_the_problem_and_the_fix() {
        assert_eq!(
            error("http://x"),
            r#"invalid remote URL "http://x": unsupported scheme "http"; use ftp://, ftpes:// or ftps://"#
        );
        for (url, problem) in [
            ("h/site", "no scheme; write it as ftp://"),
            ("ftps://bob@:21/x", "no host name; write it"),
            ("ftp://a b/", "invalid host \"a b\"; use"),
            ("ftp://h:0/", "invalid port \"0\"; use"),
            ("ftp://h:65536/", "invalid port \"65536\""),
            ("ftp://h:+21/", "invalid port \"+21\""),
            ("ftp://h:ab/", "invalid port \"ab\""),
            ("ftp://h/a/../b", "a \"..\" segment; name"),
            ("ftp://h/%2E%2E/b", "a \"..\" segment"),
            ("ftp://h/x?type=i", "query strings (?) and"),
            ("ftp://h/x#top", "fragments (#) are not"),
            ("ftp://h/a@b", "unencoded \"@\" after the"),
            ("ftp://h/%FF", "path is not valid UTF-8"),
        ] {
            let message = error(url);
            let prefix = format!("invalid remote URL {url:?}: ");
            assert!(message.starts_with(&prefix), "{message}");
            assert!(message.contains(problem), "{message}");
        }
    }

    #[test]
    fn cr_lf_and_nul_are_rejected_against_command_injection() {
        for (url, part) in [
            ("ftp://h/a%0D%0ADELE%20x", "path"),
            ("ftp://h/a%00", "path"),
            ("ftp://bob%0A:pw@h", "user name"),
            ("ftp://bob:pw%0D%0AQUIT@h", "password"),
            ("ftp://h/a\tb", "URL"),
        ] {
            let expected = format!("the {part} contains a control");
            assert!(error(url).contains(&expected), "{url:?}");
        }
    }

    #[test]
    fn errors_mask_the_password_and_never_echo_any_of_it() {
        assert_eq!(
            error("ftp://bob:pw@h:99999/"),
            r#"invalid remote URL "ftp://bob:***@h:99999/": invalid port "99999"; use a number from 1 to 65535"#
        );
        // Every password here is made of "pw" pieces, so none of it may show.
        for url in [
            "http://bob:pwpw@h/",
            "ftp://bob:pwpw@/x",
            "ftp://bob:pwpw@h/a/../b",
            "ftp://bob:pwpw@h/x?y",
            "ftp://bob:pw/pw@h/x",
            "ftp://bob:pw?pw@h",
            "ftp://bob:pw#pw@h",
            "ftp://bob:pw@pw/pw@h/x",
            "ftp://bob:pwpw%0A@h",
            "ftp://bob:pw%FF@h",
            "ftp://bob:pwpw@h/a\nb",
            "ftp:/bob:pwpw@h",
            "bob:pwpw@h/x",
        ] {
            let message = error(url);
            assert!(!message.contains("pw"), "{message}");
            assert!(message.contains("***"), "{message}");
        }
    }

    #[test]
    fn display_url_and_state_key_keep_the_user_but_not_the_password() {
        let t = parse("ftp://bob:pw@example.com:2121/site/");
        assert_eq!(t.display_url(), "ftp://bob@example.com:2121/site");
        assert_eq!(t.to_string(), t.display_url());
        let t = parse("ftpes://bob:pw@example.com//var/www");
        assert_eq!(t.display_url(), "ftpes://bob@example.com//var/www");
        assert_eq!(t.state_key(), "ftpes://bob@example.com:21//var/www");
        let (a, b) = (parse("ftp://h"), parse("ftp://h:21/"));
        assert_eq!(a.state_key(), b.state_key());
    }

    #[test]
    fn display_url_parses_back_to_the_same_target() {
        for url in [
            "ftps://a%40b@h:2121/my%20site/caf%C3%A9/x%3F",
            "ftp://[::1]//%25d",
            "ftp://h",
        ] {
            let t = parse(url);
            assert_eq!(parse(&t.display_url()), t, "{url}");
        }
    }

    #[test]
    fn remote_paths_are_joined_under_the_root() {
        for (root, rel, expected) in [
            ("", "a/b", "a/b"),
            ("", "", ""),
            ("site", "a", "site/a"),
            ("/", "a", "/a"),
            ("/", "", "/"),
            ("/x", "", "/x"),
            ("/x", "a/b", "/x/a/b"),
            ("", "/a/", "a"),
        ] {
            let mut t = parse("ftp://h");
            t.path = root.to_owned();
            assert_eq!(t.remote_path(rel), expected, "{root:?} + {rel:?}");
        }
    }

    #[test]
    fn a_huge_url_is_not_repeated_whole_in_its_error() {
        let host = "h".repeat(100_000);
        let message = error(&format!("ftp://{host}:99999/"));
        assert!(message.len() < 400, "{} characters", message.len());
        assert!(message.contains("hhh…"), "{message}");
        assert!(message.contains("invalid port \"99999\""), "{message}");
    }
}
