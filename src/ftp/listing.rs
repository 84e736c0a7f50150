//! Remote directory listings: turns the lines an FTP server sends for MLSD (RFC 3659) or LIST
//! (UNIX `ls -l` and DOS/IIS styles) into [`RemoteEntry`] values, and decides with
//! [`is_safe_name`] which server-supplied names may be used as local or remote path components.
//!
//! Parsing is per line and never panics: a line that cannot be understood becomes a
//! [`ParseError`] so the caller can warn and carry on with the rest of the directory.

use std::sync::atomic::{AtomicU64, Ordering};

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// Kind of a remote entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// How precise a listed modification time is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimePrecision {
    Second,
    Minute,
    Day,
}

impl TimePrecision {
    /// Length of the interval a time of this precision stands for.
    pub(crate) fn seconds(self) -> i64 {
        match self {
            TimePrecision::Second => 1,
            TimePrecision::Minute => 60,
            TimePrecision::Day => 86_400,
        }
    }
}

/// A modification time as a listing reported it: UTC seconds since the Unix epoch, and its
/// precision (the true time lies in `[unix, unix + precision.seconds())`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteTime {
    pub(crate) unix: i64,
    pub(crate) precision: TimePrecision,
}

/// One entry of a remote directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEntry {
    pub name: String,
    pub kind: EntryKind,
    pub(crate) size: u64,
    pub(crate) mtime: Option<RemoteTime>,
    /// A symbolic link's target as the listing shows it (None: not a link, or not shown).
    pub(crate) link: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListFormat {
    Mlsd,
    List,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unparsable listing line {line:?}: {reason}")]
pub struct ParseError {
    pub(crate) line: String,
    pub(crate) reason: &'static str,
}

type LineResult = Result<Option<RemoteEntry>, &'static str>;

/// Parses one MLSD line (`type=file;size=12;modify=20240102030405.123; name`).
///
/// Fact names and the `type` value are case-insensitive; `cdir`/`pdir` entries and the names
/// `.`/`..` yield `Ok(None)`; `OS.unix=symlink`/`OS.unix=slink:…` types are symlinks, and a
/// missing size is 0. The name is everything after the first space, so it may contain spaces
/// and `;`.
pub fn parse_mlsd_line(line: &str) -> Result<Option<RemoteEntry>, ParseError> {
    mlsd(strip_eol(line)).map_err(|reason| error(line, reason))
}

/// Parses one LIST line in UNIX (`ls -l`) or DOS/IIS format.
///
/// `now_unix` resolves the year of `Mon DD HH:MM` dates, which `ls` only prints for recent
/// files: the current year, unless that lies more than a day ahead (allowing for clock and
/// time-zone skew), in which case the previous one. Times are taken as UTC. `total N` lines,
/// blank lines and the names `.`/`..` yield `Ok(None)`; a symlink's `name -> target` is split
/// into the name and its target.
pub fn parse_list_line(line: &str, now_unix: i64) -> Result<Option<RemoteEntry>, ParseError> {
    list(strip_eol(line), now_unix).map_err(|reason| error(line, reason))
}

/// Parses a whole listing, skipping what the line parsers return `None` for; unparsable lines
/// are returned in the second vector so the caller can warn and go on.
#[cfg(test)]
pub(crate) fn parse_listing(
    lines: &[String],
    format: ListFormat,
    now_unix: i64,
) -> (Vec<RemoteEntry>, Vec<ParseError>) {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for line in lines {
        let parsed = match format {
            ListFormat::Mlsd => parse_mlsd_line(line),
            ListFormat::List => parse_list_line(line, now_unix),
        };
        match parsed {
            Ok(entry) => entries.extend(entry),
            Err(e) => errors.push(e),
        }
    }
    (entries, errors)
}

/// Most entries one folder's listing may have: the largest folder ftpsync promises to handle
/// (a million entries), with a margin. Lines that are not entries (`.`, unparsable) count too,
/// so an endless stream of them ends as well.
pub(crate) const MAX_ENTRIES: usize = 1_200_000;

/// Most memory one folder's parsed entries may take (by [`held_bytes`]): a million entries
/// with 40-byte names fit.
pub(crate) const MAX_HELD_BYTES: u64 = 200 << 20;

/// Most memory the remote entries of all listings may take together, in flight on every
/// connection and kept for the run alike (see [`Charge`]): with the program itself, the peak
/// stays under 300 MB whatever the server sends, on however many connections.
pub(crate) const MAX_HELD_TOTAL: u64 = 200 << 20;

/// Remote entries held by this process, by [`held_bytes`].
static HELD_TOTAL: AtomicU64 = AtomicU64::new(0);

/// A share of [`MAX_HELD_TOTAL`], given back when dropped: a listing's entries hold their
/// charge for as long as they are kept.
#[derive(Debug, Default)]
pub(crate) struct Charge(u64);

impl Charge {
    /// Adds `bytes`; false (and nothing added) when that would go past the total.
    fn add(&mut self, bytes: u64) -> bool {
        let before = HELD_TOTAL.fetch_add(bytes, Ordering::Relaxed);
        if before + bytes > MAX_HELD_TOTAL {
            HELD_TOTAL.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        self.0 += bytes;
        true
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        HELD_TOTAL.fetch_sub(self.0, Ordering::Relaxed);
    }
}

/// Longest line a listing may hold: a name is at most a few hundred bytes on any file system,
/// so a longer line is a server sending garbage (or a line that never ends).
pub(crate) const MAX_LINE_BYTES: usize = 64 << 10;

/// Unparsable lines kept to report, per folder; the rest are only counted.
const KEPT_ERRORS: usize = 100;

/// The caps a listing went past (see [`ListingParser`] and the listing's deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListingCap {
    Entries(usize),
    /// Memory the parsed entries take, in bytes.
    Bytes(u64),
    /// One line longer than this many bytes.
    LineBytes(usize),
    /// The whole listing took longer than this.
    Duration(std::time::Duration),
}

impl std::fmt::Display for ListingCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListingCap::Entries(n) => write!(f, "{n} entries"),
            ListingCap::Bytes(n) => write!(f, "{} MB", n >> 20),
            ListingCap::LineBytes(n) => write!(f, "{n} bytes in one line"),
            ListingCap::Duration(d) => write!(f, "{} s", d.as_secs()),
        }
    }
}

/// The caps on one folder's listing (the deadline is the network side's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caps {
    pub(crate) entries: usize,
    pub(crate) bytes: u64,
    pub(crate) line_bytes: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            entries: MAX_ENTRIES,
            bytes: MAX_HELD_BYTES,
            line_bytes: MAX_LINE_BYTES,
        }
    }
}

/// A folder's listing, parsed.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) entries: Vec<RemoteEntry>,
    /// Lines that could not be parsed (the first hundred; see `more_errors`).
    pub(crate) errors: Vec<ParseError>,
    /// Unparsable lines beyond those in `errors`.
    pub(crate) more_errors: usize,
    /// The entries' share of [`MAX_HELD_TOTAL`]: keep it as long as they are kept.
    pub(crate) charge: Charge,
    /// The last line came without its line end: the listing may have been cut mid-line.
    pub(crate) unterminated: bool,
    /// The listed folder's own time, from its `.` (LIST) or `cdir` (MLSD) line, if it had one.
    pub(crate) own_time: Option<RemoteTime>,
}

impl Parsed {
    /// Whether every line of the listing was understood: otherwise some entry may be missing
    /// or misread, and the folder does not count as fully listed.
    pub(crate) fn is_complete(&self) -> bool {
        self.errors.is_empty() && self.more_errors == 0 && !self.unterminated
    }
}

/// What one entry costs in memory: the entry, its name, and the allocator's share, and once
/// more its name and a map node for the run's tree of remote paths.
pub(crate) fn held_bytes(entry: &RemoteEntry) -> u64 {
    (std::mem::size_of::<RemoteEntry>() + 2 * entry.name.len() + 64) as u64
}

/// Parses a listing line by line as it arrives, so that only entries are held (not the text),
/// and stops at the first cap it goes past: a listing is bounded whatever a server sends.
pub(crate) struct ListingParser {
    format: ListFormat,
    now_unix: i64,
    caps: Caps,
    parsed: Parsed,
    lines: usize,
    held: u64,
}

impl ListingParser {
    pub(crate) fn new(format: ListFormat, now_unix: i64, caps: Caps) -> Self {
        ListingParser {
            format,
            now_unix,
            caps,
            parsed: Parsed::default(),
            lines: 0,
            held: 0,
        }
    }

    /// One line, without its line end (a trailing CR is dropped; empty lines are skipped).
    pub(crate) fn push(&mut self, line: &[u8]) -> Result<(), ListingCap> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Ok(());
        }
        if line.len() > self.caps.line_bytes {
            return Err(ListingCap::LineBytes(self.caps.line_bytes));
        }
        self.lines += 1;
        if self.lines > self.caps.entries {
            return Err(ListingCap::Entries(self.caps.entries));
        }
        let line = String::from_utf8_lossy(line);
        let parsed = match self.format {
            ListFormat::Mlsd => parse_mlsd_line(&line),
            ListFormat::List => parse_list_line(&line, self.now_unix),
        };
        match parsed {
            Ok(Some(entry)) => {
                let bytes = held_bytes(&entry);
                self.held += bytes;
                if self.held > self.caps.bytes {
                    return Err(ListingCap::Bytes(self.caps.bytes));
                }
                if !self.parsed.charge.add(bytes) {
                    return Err(ListingCap::Bytes(MAX_HELD_TOTAL));
                }
                self.parsed.entries.push(entry);
            }
            Ok(None) => {
                let own = &mut self.parsed.own_time;
                *own = own.or_else(|| own::time(&line, self.format, self.now_unix));
            }
            Err(e) if self.parsed.errors.len() < KEPT_ERRORS => self.parsed.errors.push(e),
            Err(_) => self.parsed.more_errors += 1,
        }
        Ok(())
    }

    /// Several lines at once, split at LF (for a listing that came in one piece, e.g. a STAT
    /// reply).
    #[cfg(test)]
    pub(crate) fn push_text(&mut self, text: &[u8]) -> Result<(), ListingCap> {
        text.split(|&b| b == b'\n')
            .try_for_each(|line| self.push(line))
    }

    pub(crate) fn finish(self) -> Parsed {
        self.parsed
    }
}

/// True when `name` is a safe single path component to use under the sync target: not empty,
/// not `.` or `..`, and free of `/`, `\`, NUL and other control characters (C0, DEL, C1).
///
/// A hostile or broken server could otherwise steer deletions or downloads outside the target
/// (`../x`, `a/b`), or smuggle terminal escapes into our logs.
pub(crate) fn is_safe_name(name: &str) -> bool {
    let bad_char = |c: char| c == '/' || c == '\\' || c.is_control();
    !matches!(name, "" | "." | "..") && !name.contains(bad_char)
}

fn error(line: &str, reason: &'static str) -> ParseError {
    ParseError {
        line: line.to_owned(),
        reason,
    }
}

/// Callers may hand us raw protocol lines; CR/LF is never part of a name.
fn strip_eol(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// Every parser ends here: `.` and `..` are the listed directory and its parent, not entries.
fn finish(name: &str, kind: EntryKind, size: u64, mtime: Option<RemoteTime>) -> LineResult {
    match name {
        "" => Err("missing name"),
        "." | ".." => Ok(None),
        _ => Ok(Some(RemoteEntry {
            name: name.to_owned(),
            kind,
            size,
            mtime,
            link: None,
        })),
    }
}

/// `entry` with its link's target (an empty one is none).
fn linked(entry: RemoteEntry, link: Option<String>) -> RemoteEntry {
    RemoteEntry {
        link: link.filter(|t| !t.is_empty()),
        ..entry
    }
}

fn stamp(unix: i64, precision: TimePrecision) -> RemoteTime {
    RemoteTime { unix, precision }
}

fn mlsd(line: &str) -> LineResult {
    // RFC 3659: facts, one SP, pathname. Fact values never contain spaces, so the first space
    // ends the facts whatever the name contains.
    let (facts, name) = line.split_once(' ').ok_or("missing space before name")?;
    let mut kind = EntryKind::Other;
    let mut size = 0;
    let mut mtime = None;
    let mut link = None;
    for fact in facts.split(';').filter(|f| !f.is_empty()) {
        let (key, value) = fact.split_once('=').ok_or("malformed fact")?;
        match key.to_ascii_lowercase().as_str() {
            "type" => match value.to_ascii_lowercase().as_str() {
                "file" => kind = EntryKind::File,
                "dir" => kind = EntryKind::Dir,
                "cdir" | "pdir" => return Ok(None),
                v if v == "os.unix=symlink" || v.starts_with("os.unix=slink") => {
                    kind = EntryKind::Symlink;
                    link = v
                        .starts_with("os.unix=slink:")
                        .then(|| value["os.unix=slink:".len()..].to_string());
                }
                _ => kind = EntryKind::Other,
            },
            "size" => size = number(value).ok_or("invalid size fact")?,
            "modify" => {
                let unix = mlsd_time(value).ok_or("invalid modify fact")?;
                mtime = Some(stamp(unix, TimePrecision::Second));
            }
            _ => {}
        }
    }
    finish(name, kind, size, mtime).map(|e| e.map(|e| linked(e, link)))
}

/// `YYYYMMDDHHMMSS[.sss]`, always UTC per RFC 3659.
fn mlsd_time(value: &str) -> Option<i64> {
    let (main, fraction) = value.split_once('.').unwrap_or((value, "0"));
    if main.len() != 14 || number::<u64>(main).is_none() || number::<u64>(fraction).is_none() {
        return None;
    }
    // All ASCII digits from here on, so byte slicing is safe.
    let two = |at: usize| number::<u8>(&main[at..at + 2]);
    let month = Month::try_from(two(4)?).ok()?;
    // RFC 3659 allows a leap second (60), which `time` cannot represent.
    let second = two(12)?.min(59);
    let year = number(&main[..4])?;
    utc(year, month, two(6)?, two(8)?, two(10)?, second)
}

fn list(line: &str, now_unix: i64) -> LineResult {
    let total = line.strip_prefix("total ").map(str::trim);
    if line.trim().is_empty() || total.and_then(number::<u64>).is_some() {
        return Ok(None);
    }
    let fields = fields(line);
    if line.starts_with(|c: char| c.is_ascii_digit()) {
        dos(line, &fields)
    } else {
        unix(line, &fields, now_unix)
    }
}

/// Whitespace-separated fields with the byte offset where each ends, so the name can be cut
/// out of the original line with its inner spacing intact.
fn fields(line: &str) -> Vec<(&str, usize)> {
    let mut end = 0;
    line.split([' ', '\t'])
        .filter_map(|field| {
            // Each piece but the last is followed by a one-byte separator.
            end += field.len() + 1;
            (!field.is_empty()).then_some((field, end - 1))
        })
        .collect()
}

/// The name starts at the first non-blank after `end` (DOS/IIS listings pad the column before
/// the name, so a name that really starts with a space cannot be told apart from padding).
fn name_after(line: &str, end: usize) -> &str {
    line[end..].trim_start_matches([' ', '\t'])
}

/// In a UNIX listing the name starts exactly one blank after the time (or year) field: `ls -l`,
/// vsftpd, pure-ftpd and proftpd all put one there, so further blanks belong to the name
/// (" lead"). Trimming them would list a name that is not on the server.
fn name_after_time(line: &str, end: usize) -> &str {
    let rest = &line[end..];
    rest.strip_prefix([' ', '\t']).unwrap_or(rest)
}

fn unix(line: &str, fields: &[(&str, usize)], now_unix: i64) -> LineResult {
    let mode = fields.first().ok_or("empty line")?.0.as_bytes();
    if mode.len() < 10 || !mode[1..10].iter().all(|b| b"rwxsStTlL-".contains(b)) {
        return Err("unrecognised permissions field");
    }
    let kind = match mode[0] {
        b'-' => EntryKind::File,
        b'd' => EntryKind::Dir,
        b'l' => EntryKind::Symlink,
        _ => EntryKind::Other,
    };
    // Owner, group and even the link count vary between servers (numeric or textual owners,
    // no group column, "major, minor" in place of a size), so anchor on the date instead: the
    // first "Mon DD HH:MM|YYYY" run, which cannot start before the fourth field.
    let (at, mtime) = (3..fields.len().saturating_sub(2))
        .find_map(|i| {
            let date = unix_time(fields[i].0, fields[i + 1].0, fields[i + 2].0, now_unix);
            Some((i, date?))
        })
        .ok_or("no date field")?;
    let size = match kind {
        // Devices show "major, minor" here; pipes and sockets have no meaningful size.
        EntryKind::Other => 0,
        _ => number(fields[at - 1].0).ok_or("invalid size")?,
    };
    let mut name = name_after_time(line, fields[at + 2].1);
    let mut link = None;
    if kind == EntryKind::Symlink {
        // A name that itself contains " -> " cannot be told from the target; like other
        // clients, split at the first one.
        if let Some((named, target)) = name.split_once(" -> ") {
            (name, link) = (named, Some(target.to_string()));
        }
    }
    finish(name, kind, size, Some(mtime)).map(|e| e.map(|e| linked(e, link)))
}

fn unix_time(mon: &str, day: &str, time_or_year: &str, now_unix: i64) -> Option<RemoteTime> {
    let (month, day) = (month(mon)?, number(day)?);
    if let Some((hour, minute)) = hh_mm(time_or_year) {
        let year = OffsetDateTime::from_unix_timestamp(now_unix).map_or(1970, |t| t.year());
        // The previous year is also the fallback for Feb 29 seen in a non-leap current year.
        let unix = [year, year - 1]
            .into_iter()
            .filter_map(|y| utc(y, month, day, hour, minute, 0))
            .find(|&t| t <= now_unix.saturating_add(86_400))?;
        return Some(stamp(unix, TimePrecision::Minute));
    }
    let unix = utc(number(time_or_year)?, month, day, 0, 0, 0)?;
    Some(stamp(unix, TimePrecision::Day))
}

/// IIS style: `MM-DD-YY[YY]  HH:MM[AM|PM]  <DIR>|size  name`.
fn dos(line: &str, fields: &[(&str, usize)]) -> LineResult {
    if fields.len() < 4 {
        return Err("too few fields");
    }
    let date: Vec<&str> = fields[0].0.split('-').collect();
    let [mm, dd, yy] = date[..] else {
        return Err("invalid date");
    };
    let year = match (number::<i32>(yy), yy.len()) {
        (Some(year), 4) => year,
        // IIS's own two-digit window: 70-99 are 19xx.
        (Some(year), 2) => year + if year < 70 { 2000 } else { 1900 },
        _ => return Err("invalid date"),
    };
    let clock = fields[1].0.to_ascii_uppercase();
    let bare = clock.strip_suffix("AM").or(clock.strip_suffix("PM"));
    let (hour, minute) = hh_mm(bare.unwrap_or(&clock)).ok_or("invalid time")?;
    let hour = match bare {
        None => hour,
        Some(_) if !(1..=12).contains(&hour) => return Err("invalid time"),
        // 12AM is midnight and 12PM noon.
        Some(_) => hour % 12 + if clock.ends_with("PM") { 12 } else { 0 },
    };
    let month = number::<u8>(mm).and_then(|m| Month::try_from(m).ok());
    let unix = month
        .zip(number(dd))
        .and_then(|(month, day)| utc(year, month, day, hour, minute, 0))
        .ok_or("invalid date")?;
    let (kind, size) = match fields[2].0 {
        d if d.eq_ignore_ascii_case("<DIR>") => (EntryKind::Dir, 0),
        // Junctions and the like: neither a file to mirror nor a directory to descend into.
        d if d.starts_with('<') && d.ends_with('>') => (EntryKind::Other, 0),
        d => (EntryKind::File, number(d).ok_or("invalid size")?),
    };
    let mtime = stamp(unix, TimePrecision::Minute);
    finish(name_after(line, fields[2].1), kind, size, Some(mtime))
}

/// Unsigned decimal only: `str::parse` would also accept a leading `+`.
fn number<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn month(name: &str) -> Option<Month> {
    const NAMES: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let index = NAMES.iter().position(|m| name.eq_ignore_ascii_case(m))?;
    Month::try_from(index as u8 + 1).ok()
}

fn hh_mm(s: &str) -> Option<(u8, u8)> {
    let (h, m) = s.split_once(':')?;
    if h.len() > 2 || m.len() != 2 {
        return None;
    }
    Some((number(h)?, number(m)?))
}

fn utc(year: i32, month: Month, day: u8, hour: u8, minute: u8, second: u8) -> Option<i64> {
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    let utc = PrimitiveDateTime::new(date, time).assume_utc();
    Some(utc.unix_timestamp())
}

mod compare;
mod own;

pub(crate) use compare::list_agrees_with_mlsd;

#[cfg(test)]
mod tests;
