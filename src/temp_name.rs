//! Temporary names of atomic uploads: `.NAME.TOKEN.ftpsync-tmp` beside the final name, where
//! TOKEN names the sync cycle that wrote it (its start time and a random part). A later run can
//! tell from the token whose leftover a temporary file is, and how old that cycle is, so it
//! never removes the file another run is uploading right now (see [`Leftover::is_removable`]).

use std::time::{SystemTime, UNIX_EPOCH};

/// Suffix of every temporary name.
pub(crate) const TEMP_SUFFIX: &str = ".ftpsync-tmp";

/// A temporary file whose cycle started longer ago than this is no live upload's: no sync
/// cycle runs for two days. Only leftovers of runs on other machines (or of runs this machine
/// no longer remembers) wait this long; this machine's own are removed once their cycle is over
/// (see [`crate::lock::cycle_is_over`]).
pub(crate) const STALE_AFTER_SECS: i64 = 2 * 24 * 3600;

/// The token of one sync cycle: hexadecimal start time (Unix seconds) and a random part.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RunToken(String);

impl RunToken {
    /// A token for a cycle starting now.
    pub(crate) fn new() -> RunToken {
        use std::hash::{BuildHasher, Hasher};
        let now = unix_now();
        // RandomState is seeded from the OS: different in every process and every call.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        let random = hasher.finish() as u32;
        RunToken(format!("{:08x}{random:08x}", now.max(0) as u32))
    }

    /// A token as found in a name or a record.
    pub(crate) fn parse(text: &str) -> Option<RunToken> {
        let valid = text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit());
        valid.then(|| RunToken(text.to_ascii_lowercase()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// When the cycle started (Unix seconds).
    pub(crate) fn started(&self) -> i64 {
        i64::from_str_radix(&self.0[..8], 16).unwrap_or(0)
    }
}

impl Default for RunToken {
    fn default() -> Self {
        RunToken::new()
    }
}

/// The temporary name an atomic upload of `remote` is stored under by the cycle `token`, in
/// the same folder.
pub(crate) fn temp_path(remote: &str, token: &RunToken) -> String {
    let (dir, name) = match remote.rsplit_once('/') {
        Some((dir, name)) => (Some(dir), name),
        None => (None, remote),
    };
    let temp = format!(".{name}.{}{TEMP_SUFFIX}", token.as_str());
    match dir {
        Some(dir) => format!("{dir}/{temp}"),
        None => temp,
    }
}

/// Whether a remote name is an atomic upload's temporary file (of any version of ftpsync).
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(TEMP_SUFFIX) && name.len() > TEMP_SUFFIX.len() + 1
}

/// A temporary file found on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Leftover {
    /// The cycle that wrote it; None for names of ftpsync versions before tokens.
    pub(crate) token: Option<RunToken>,
}

impl Leftover {
    /// What the temporary name `name` says of its writer; None when it is no temporary name.
    pub(crate) fn of(name: &str) -> Option<Leftover> {
        if !is_temp_name(name) {
            return None;
        }
        let stem = &name[..name.len() - TEMP_SUFFIX.len()];
        let token = stem.rsplit_once('.').and_then(|(_, t)| RunToken::parse(t));
        Some(Leftover { token })
    }

    /// Whether removing it cannot hurt a live upload: written by a cycle that is over
    /// (`is_over`, known for this machine's cycles), by a cycle that started more than
    /// [`STALE_AFTER_SECS`] ago, or by a version of ftpsync without tokens.
    pub(crate) fn is_removable(&self, is_over: impl Fn(&RunToken) -> bool, now: i64) -> bool {
        match &self.token {
            None => true,
            Some(token) => now - token.started() > STALE_AFTER_SECS || is_over(token),
        }
    }
}

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_carry_the_cycle_token_and_parse_back() {
        let token = RunToken::parse("6567a1b2deadbeef").unwrap();
        assert_eq!(
            temp_path("site/a b.html", &token),
            "site/.a b.html.6567a1b2deadbeef.ftpsync-tmp"
        );
        assert_eq!(temp_path("x", &token), ".x.6567a1b2deadbeef.ftpsync-tmp");
        let leftover = Leftover::of(".a b.html.6567a1b2deadbeef.ftpsync-tmp").unwrap();
        assert_eq!(leftover.token, Some(token.clone()));
        assert_eq!(token.started(), 0x6567a1b2);
        assert_eq!(Leftover::of(".old.ftpsync-tmp").unwrap().token, None);
        assert_eq!(Leftover::of("page.html"), None);
    }

    #[test]
    fn a_leftover_is_removable_only_when_no_live_upload_can_own_it() {
        let now = unix_now();
        let live = RunToken::new();
        let leftover = Leftover {
            token: Some(live.clone()),
        };
        let unknown = |_: &RunToken| false;
        assert!(
            !leftover.is_removable(unknown, now),
            "another run's, just started"
        );
        assert!(leftover.is_removable(|t| *t == live, now));
        assert!(leftover.is_removable(unknown, now + STALE_AFTER_SECS + 1));
        assert!(Leftover { token: None }.is_removable(unknown, now));
    }

    #[test]
    fn tokens_differ_between_cycles() {
        let a = RunToken::new();
        let b = RunToken::new();
        assert_ne!(a, b);
        assert!(RunToken::parse(a.as_str()).is_some());
    }
}
