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
    pub fn seconds(self) -> i64 {
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
    pub unix: i64,
    pub precision: TimePrecision,
}

/// One entry of a remote directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEntry {
    pub name: String,
    pub kind: EntryKind,
    pub size: u64,
    pub mtime: Option<RemoteTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    Mlsd,
    List,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unparsable listing line {line:?}: {reason}")]
pub struct ParseError {
    pub line: String,
    pub reason: &'static str,
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
/// blank lines and the names `.`/`..` yield `Ok(None)`; a symlink's `name -> target` keeps only
/// the name.
pub fn parse_list_line(line: &str, now_unix: i64) -> Result<Option<RemoteEntry>, ParseError> {
    list(strip_eol(line), now_unix).map_err(|reason| error(line, reason))
}

/// Parses a whole listing, skipping what the line parsers return `None` for; unparsable lines
/// are returned in the second vector so the caller can warn and go on.
#[cfg(test)]
pub fn parse_listing(
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
pub const MAX_ENTRIES: usize = 1_200_000;

/// Most memory one folder's parsed entries may take (by [`held_bytes`]): a million entries
/// with 40-byte names fit.
pub const MAX_HELD_BYTES: u64 = 200 << 20;

/// Most memory the remote entries of all listings may take together, in flight on every
/// connection and kept for the run alike (see [`Charge`]): with the program itself, the peak
/// stays under 300 MB whatever the server sends, on however many connections.
pub const MAX_HELD_TOTAL: u64 = 200 << 20;

/// Remote entries held by this process, by [`held_bytes`].
static HELD_TOTAL: AtomicU64 = AtomicU64::new(0);

/// A share of [`MAX_HELD_TOTAL`], given back when dropped: a listing's entries hold their
/// charge for as long as they are kept.
#[derive(Debug, Default)]
pub struct Charge(u64);

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
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// Unparsable lines kept to report, per folder; the rest are only counted.
const KEPT_ERRORS: usize = 100;

/// The caps a listing went past (see [`ListingParser`] and the listing's deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListingCap {
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
pub struct Caps {
    pub entries: usize,
    pub bytes: u64,
    pub line_bytes: usize,
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
pub struct Parsed {
    pub entries: Vec<RemoteEntry>,
    /// Lines that could not be parsed (the first hundred; see `more_errors`).
    pub errors: Vec<ParseError>,
    /// Unparsable lines beyond those in `errors`.
    pub more_errors: usize,
    /// The entries' share of [`MAX_HELD_TOTAL`]: keep it as long as they are kept.
    pub charge: Charge,
}

/// What one entry costs in memory: the entry, its name, and the allocator's share, and once
/// more its name and a map node for the run's tree of remote paths.
pub fn held_bytes(entry: &RemoteEntry) -> u64 {
    (std::mem::size_of::<RemoteEntry>() + 2 * entry.name.len() + 64) as u64
}

/// Parses a listing line by line as it arrives, so that only entries are held (not the text),
/// and stops at the first cap it goes past: a listing is bounded whatever a server sends.
pub struct ListingParser {
    format: ListFormat,
    now_unix: i64,
    caps: Caps,
    parsed: Parsed,
    lines: usize,
    held: u64,
}

impl ListingParser {
    pub fn new(format: ListFormat, now_unix: i64, caps: Caps) -> Self {
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
    pub fn push(&mut self, line: &[u8]) -> Result<(), ListingCap> {
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
            Ok(None) => {}
            Err(e) if self.parsed.errors.len() < KEPT_ERRORS => self.parsed.errors.push(e),
            Err(_) => self.parsed.more_errors += 1,
        }
        Ok(())
    }

    /// Several lines at once, split at LF (for a listing that came in one piece, e.g. a STAT
    /// reply).
    #[cfg(test)]
    pub fn push_text(&mut self, text: &[u8]) -> Result<(), ListingCap> {
        text.split(|&b| b == b'\n')
            .try_for_each(|line| self.push(line))
    }

    pub fn finish(self) -> Parsed {
        self.parsed
    }
}

/// Whether a LIST-format listing tells the same as the MLSD listing of the same folder: the
/// same names with the same kinds, the same file sizes, and every MLSD time inside the interval
/// its LIST time stands for (so this server's LIST times are UTC and parsed right). None when
/// the folder is empty, so there is nothing to compare.
pub fn list_agrees_with_mlsd(list: &[RemoteEntry], mlsd: &[RemoteEntry]) -> Option<bool> {
    if list.is_empty() && mlsd.is_empty() {
        return None;
    }
    let by_name: std::collections::HashMap<&str, &RemoteEntry> =
        list.iter().map(|e| (e.name.as_str(), e)).collect();
    if by_name.len() != mlsd.len() {
        return Some(false);
    }
    let agree = mlsd.iter().all(|m| {
        let Some(l) = by_name.get(m.name.as_str()) else {
            return false;
        };
        let time_fits = match (l.mtime, m.mtime) {
            (Some(lt), Some(mt)) => {
                lt.unix <= mt.unix && mt.unix < lt.unix + lt.precision.seconds()
            }
            (None, None) => true,
            _ => false,
        };
        l.kind == m.kind && (m.kind != EntryKind::File || l.size == m.size) && time_fits
    });
    Some(agree)
}

/// True when `name` is a safe single path component to use under the sync target: not empty,
/// not `.` or `..`, and free of `/`, `\`, NUL and other control characters (C0, DEL, C1).
///
/// A hostile or broken server could otherwise steer deletions or downloads outside the target
/// (`../x`, `a/b`), or smuggle terminal escapes into our logs.
pub fn is_safe_name(name: &str) -> bool {
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
        })),
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
    for fact in facts.split(';').filter(|f| !f.is_empty()) {
        let (key, value) = fact.split_once('=').ok_or("malformed fact")?;
        match key.to_ascii_lowercase().as_str() {
            "type" => match value.to_ascii_lowercase().as_str() {
                "file" => kind = EntryKind::File,
                "dir" => kind = EntryKind::Dir,
                "cdir" | "pdir" => return Ok(None),
                v if v == "os.unix=symlink" || v.starts_with("os.unix=slink") => {
                    kind = EntryKind::Symlink;
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
    finish(name, kind, size, mtime)
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
    if kind == EntryKind::Symlink {
        // A name that itself contains " -> " cannot be told from the target; like other
        // clients, split at the first one.
        name = name.split_once(" -> ").map_or(name, |(link, _)| link);
    }
    finish(name, kind, size, Some(mtime))
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

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use EntryKind::*;
    use TimePrecision::*;

    /// 2024-01-02 03:04:05 UTC by hand: 1704067200 (2024-01-01) + 86400 + 3 * 3600 + 245.
    const T: i64 = 1_704_164_645;
    const NOW: i64 = datetime!(2024-12-01 12:00 UTC).unix_timestamp();
    const NOV26: i64 = datetime!(2024-11-26 17:56 UTC).unix_timestamp();
    const JAN2: i64 = datetime!(2020-01-02 0:00 UTC).unix_timestamp();

    fn entry(name: &str, kind: EntryKind, size: u64, unix: i64, p: TimePrecision) -> RemoteEntry {
        let mtime = Some(stamp(unix, p));
        let name = name.to_owned();
        RemoteEntry {
            name,
            kind,
            size,
            mtime,
        }
    }
    fn m(line: &str) -> RemoteEntry {
        parse_mlsd_line(line).unwrap().expect("an entry")
    }
    fn l(line: &str) -> RemoteEntry {
        parse_list_line(line, NOW).unwrap().expect("an entry")
    }
    fn skipped(line: &str) -> bool {
        parse_list_line(line, NOW) == Ok(None)
    }

    #[test]
    fn mlsd_pure_ftpd() {
        assert_eq!(T, datetime!(2024-01-02 03:04:05 UTC).unix_timestamp());
        let facts = "sizd=4096;modify=20240102030405;UNIX.mode=0755;UNIX.uid=1000;unique=803g2";
        for line in ["type=cdir;{} .", "type=pdir;{} ..", "type=cdir;{} /srv/ftp"] {
            let line = line.replace("{}", facts);
            assert_eq!(parse_mlsd_line(&line), Ok(None));
        }
        let f = m("type=file;size=1234;modify=20240102030405;UNIX.mode=0644; a.txt\r\n");
        assert_eq!(f, entry("a.txt", File, 1234, T, Second));
        let d = m(&format!("type=dir;{facts}; sub"));
        assert_eq!(d, entry("sub", Dir, 0, T, Second));
    }

    #[test]
    fn mlsd_proftpd_and_case() {
        let f = m("modify=20240102030405;perm=adfrw;size=9;type=file;UNIX.owner=1000; f");
        assert_eq!(f, entry("f", File, 9, T, Second));
        let s = m("modify=20240102030405;perm=adfrw;size=11;type=OS.unix=symlink; ln");
        assert_eq!(s, entry("ln", Symlink, 11, T, Second));
        assert_eq!(m("type=OS.unix=slink:/etc/passwd;size=11; x").kind, Symlink);
        let upper = m("Type=File;Size=3;Modify=20240102030405; Up.TXT");
        assert_eq!(upper, entry("Up.TXT", File, 3, T, Second));
        assert_eq!(m("type=OS.unix=chr-1/3;size=0; null").kind, Other);
        assert_eq!(parse_mlsd_line("type=dir; .."), Ok(None));
    }

    #[test]
    fn mlsd_libunftp_fractions_and_odd_names() {
        let e = m("type=file;size=5;modify=20240102030405; a b.txt");
        assert_eq!(e, entry("a b.txt", File, 5, T, Second));
        let fraction = m("type=file;size=5;modify=20240102030405.123; f");
        assert_eq!(fraction, entry("f", File, 5, T, Second));
        let odd = m("type=file;size=1; semi;colon  two=spaces ");
        assert_eq!(odd.name, "semi;colon  two=spaces ");
        let bare = m("type=file; nosize");
        assert_eq!((bare.size, bare.mtime), (0, None));
        assert_eq!(m(" no facts").name, "no facts");
        let leap = datetime!(2016-12-31 23:59:59 UTC).unix_timestamp();
        let leap_line = m("type=file;modify=20161231235960; l");
        assert_eq!(leap_line, entry("l", File, 0, leap, Second));
    }

    #[test]
    fn mlsd_errors() {
        for (line, reason) in [
            ("garbage", "missing space before name"),
            ("type=file;size=1; ", "missing name"),
            ("hello world", "malformed fact"),
            ("type=file;size=+1; x", "invalid size fact"),
            ("type=file;modify=2024; x", "invalid modify fact"),
            ("type=file;modify=20241302030405; x", "invalid modify fact"),
            ("type=file;modify=20240102030405.; x", "invalid modify fact"),
            ("type=file;modify=2024010203040é; x", "invalid modify fact"),
        ] {
            assert_eq!(parse_mlsd_line(line), Err(error(line, reason)));
        }
        let text = parse_mlsd_line("x").unwrap_err().to_string();
        let want = r#"unparsable listing line "x": missing space before name"#;
        assert_eq!(text, want);
    }

    #[test]
    fn list_unix_vsftpd() {
        let e = l("-rw-r--r--    1 1000     1000         1234 Nov 26 17:56 name with  two spaces");
        assert_eq!(e, entry("name with  two spaces", File, 1234, NOV26, Minute));
        let old = l("-rw-r--r--    1 1000     1000         1234 Jan 02  2020 old.txt");
        assert_eq!(old, entry("old.txt", File, 1234, JAN2, Day));
        let d = l("drwxr-xr-x    2 1000     1000         4096 Nov 26 17:56 sub dir");
        assert_eq!(d, entry("sub dir", Dir, 4096, NOV26, Minute));
        let s = l("lrwxrwxrwx    1 1000     1000           11 Nov 26 17:56 my link -> a -> b");
        assert_eq!(s, entry("my link", Symlink, 11, NOV26, Minute));
        let not_link = l("-rw-r--r--    1 1000     1000            1 Nov 26 17:56 a -> b");
        assert_eq!(not_link.name, "a -> b");
    }

    #[test]
    fn list_unix_column_variants() {
        let no_group = l("-rw-r--r-- 1 owner 1234 Jan 02 2020 x");
        assert_eq!(no_group, entry("x", File, 1234, JAN2, Day));
        let acl = l("-rw-r--r--+  1 ftp  ftp  42 mar 05 09:07 readme\r\n");
        let mar5 = datetime!(2024-03-05 09:07 UTC).unix_timestamp();
        assert_eq!(acl, entry("readme", File, 42, mar5, Minute));
        // A group called "jan" must not be mistaken for the date.
        let jan = l("-rw-r--r-- 1 owner jan 5 Jan 02 2020 y");
        assert_eq!(jan, entry("y", File, 5, JAN2, Day));
        let dev = l("crw-rw-rw-   1 root     root       1,   3 Jan 02  2020 null");
        assert_eq!(dev, entry("null", Other, 0, JAN2, Day));
        assert_eq!(l("prw-r--r-- 1 a b 0 Jan 02 2020 fifo").kind, Other);
        assert!(skipped("drwxr-xr-x 2 a b 9 Jan 02 2020 ."));
        assert!(skipped("drwxr-xr-x 9 a b 9 Nov 26 17:56 .."));
    }

    #[test]
    fn list_year_inference() {
        let new_year = datetime!(2024-01-01 00:30 UTC);
        let june = datetime!(2024-06-01 00:00 UTC);
        let after_leap = datetime!(2025-01-10 00:00 UTC);
        for (listed, now, want) in [
            ("Dec 31 23:00", new_year, datetime!(2023-12-31 23:00 UTC)),
            ("Jan 01 00:10", new_year, datetime!(2024-01-01 00:10 UTC)),
            // Up to a day ahead is clock skew; beyond that it is last year's file.
            ("Jun 01 20:00", june, datetime!(2024-06-01 20:00 UTC)),
            ("Jun 03 00:00", june, datetime!(2023-06-03 00:00 UTC)),
            ("Feb 29 12:00", after_leap, datetime!(2024-02-29 12:00 UTC)),
        ] {
            let line = format!("-rw-r--r-- 1 a b 1 {listed} f");
            let (now, want) = (now.unix_timestamp(), want.unix_timestamp());
            let e = parse_list_line(&line, now).unwrap().expect("an entry");
            assert_eq!(e, entry("f", File, 1, want, Minute), "{line}");
        }
    }

    #[test]
    fn list_dos() {
        let pm = datetime!(2024-01-02 15:04 UTC).unix_timestamp();
        let dir = l("01-02-24  03:04PM       <DIR>          folder name");
        assert_eq!(dir, entry("folder name", Dir, 0, pm, Minute));
        let file = l("01-02-2024  15:04  1234 file.txt");
        assert_eq!(file, entry("file.txt", File, 1234, pm, Minute));
        let midnight = datetime!(1999-12-31 00:00 UTC).unix_timestamp();
        let old = l("12-31-99  12:00AM   5 old  file");
        assert_eq!(old, entry("old  file", File, 5, midnight, Minute));
        let noon = l("12-31-99  12:30pm   5 n");
        assert_eq!(noon, entry("n", File, 5, midnight + 45_000, Minute));
        assert_eq!(l("01-02-24  03:04PM  <JUNCTION>  j").kind, Other);
        assert!(skipped("01-02-24  03:04PM  <DIR>  .."));
    }

    #[test]
    fn list_skips_and_errors() {
        for line in ["total 12", "total 0\r", "", "   ", "\r\n"] {
            assert!(skipped(line), "{line:?}");
        }
        for (line, reason) in [
            ("garbage here", "unrecognised permissions field"),
            ("total twelve", "unrecognised permissions field"),
            ("-rw-r--r-- 1 a b notasize Nov 26 17:56 x", "invalid size"),
            ("-rw-r--r-- 1 a b 12 Nov 26 17:56", "missing name"),
            ("-rw-r--r-- 1 a b 12 Feb 30 2020 x", "no date field"),
            ("13-45-24  10:00AM  1 x", "invalid date"),
            ("01-02-24  13:00PM  1 x", "invalid time"),
            ("01-02-24  10:00AM  big x", "invalid size"),
            ("01-02-24  10:00AM  1", "too few fields"),
        ] {
            assert_eq!(parse_list_line(line, NOW), Err(error(line, reason)));
        }
    }

    #[test]
    fn whole_listings() {
        let text =
            "total 8\njunk\n-rw-r--r-- 1 a b 3 Jan 02 2020 x\nd--------- 1 a b 0 Jan 2 2020 ..";
        let lines: Vec<String> = text.lines().map(String::from).collect();
        let (entries, errors) = parse_listing(&lines, ListFormat::List, NOW);
        assert_eq!(entries, [entry("x", File, 3, JAN2, Day)]);
        assert_eq!(errors, [error("junk", "unrecognised permissions field")]);
        let text = "type=cdir; .\ntype=file;size=1; a\nbad\ntype=dir; d";
        let lines: Vec<String> = text.lines().map(String::from).collect();
        let (entries, errors) = parse_listing(&lines, ListFormat::Mlsd, NOW);
        let names: Vec<_> = entries.iter().map(|e| (e.name.as_str(), e.kind)).collect();
        assert_eq!(names, [("a", File), ("d", Dir)]);
        assert_eq!(errors, [error("bad", "missing space before name")]);
    }

    #[test]
    fn safe_names_and_precision() {
        for bad in ["", ".", "..", "a/b", "a\\b", "x\u{0}", "\u{7f}", "\u{85}"] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
        assert!(!is_safe_name("tab\there") && !is_safe_name("new\nline"));
        for good in ["ok name", "héllo", "...", ".hidden", "a;b -> c"] {
            assert!(is_safe_name(good), "{good:?}");
        }
        let seconds = [Second, Minute, Day].map(TimePrecision::seconds);
        assert_eq!(seconds, [1, 60, 86_400]);
        assert!(Second < Minute && Minute < Day);
    }

    #[test]
    fn a_list_listing_agrees_with_mlsd_when_names_kinds_sizes_and_utc_times_match() {
        let minute = T - T % 60;
        let mlsd = [
            entry("a", File, 3, T, Second),
            entry("d", Dir, 0, T - 90, Second),
        ];
        let list = [
            entry("a", File, 3, minute, Minute),
            entry("d", Dir, 0, T - 90 - (T - 90) % 60, Minute),
        ];
        assert_eq!(list_agrees_with_mlsd(&list, &mlsd), Some(true));
        assert_eq!(list_agrees_with_mlsd(&[], &[]), None);
    }

    #[test]
    fn a_list_listing_disagrees_on_local_time_a_missing_name_a_size_or_a_kind() {
        let minute = T - T % 60;
        let mlsd = [entry("a", File, 3, T, Second)];
        let an_hour_off = [entry("a", File, 3, minute + 3600, Minute)];
        let other_name = [entry("b", File, 3, minute, Minute)];
        let other_size = [entry("a", File, 4, minute, Minute)];
        let other_kind = [entry("a", Dir, 3, minute, Minute)];
        let extra = [
            entry("a", File, 3, minute, Minute),
            entry(".x", File, 1, minute, Minute),
        ];
        for list in [
            &an_hour_off[..],
            &other_name,
            &other_size,
            &other_kind,
            &extra,
            &[],
        ] {
            assert_eq!(list_agrees_with_mlsd(list, &mlsd), Some(false), "{list:?}");
        }
    }

    #[test]
    fn a_unix_name_starting_with_spaces_keeps_them() {
        let lead = l("-rw-r--r--    1 1000     1000            5 Nov 26 17:56  lead");
        assert_eq!(lead, entry(" lead", File, 5, NOV26, Minute));
        let two = l("-rw-r--r--    1 1000     1000            5 Jan 02  2020   two");
        assert_eq!(two, entry("  two", File, 5, JAN2, Day));
        let dir = l("drwxr-xr-x 2 a b 4096 Nov 26 17:56  spaced dir ");
        assert_eq!(dir, entry(" spaced dir ", Dir, 4096, NOV26, Minute));
        let link = l("lrwxrwxrwx 1 a b 1 Nov 26 17:56  ln -> x");
        assert_eq!(link.name, " ln");
        // DOS listings pad the name column: their names still start at the first non-blank.
        assert_eq!(l("01-02-24  03:04PM   5    padded").name, "padded");
    }

    fn mlsd_line(i: usize) -> String {
        format!("type=file;size={i};modify=20240102030405;UNIX.mode=0644;unique=803g{i}; file-{i:07}.jpg")
    }

    #[test]
    fn a_folder_of_a_million_entries_parses_within_the_caps() {
        let mut parser = ListingParser::new(ListFormat::Mlsd, NOW, Caps::default());
        for i in 0..1_000_000 {
            parser
                .push(mlsd_line(i).as_bytes())
                .expect("within the caps");
        }
        let parsed = parser.finish();
        assert_eq!(parsed.entries.len(), 1_000_000);
        assert_eq!(parsed.entries[999_999].name, "file-0999999.jpg");
        assert!(parsed.errors.is_empty());
    }

    #[test]
    fn a_listing_past_a_cap_is_an_error_naming_the_cap() {
        let caps = Caps {
            entries: 10,
            bytes: 10 * held_bytes(&m(&mlsd_line(0))),
            line_bytes: 100,
        };
        let mut parser = ListingParser::new(ListFormat::Mlsd, NOW, caps);
        for i in 0..10 {
            parser.push(mlsd_line(i).as_bytes()).unwrap();
        }
        assert_eq!(
            parser.push(mlsd_line(10).as_bytes()),
            Err(ListingCap::Entries(10))
        );

        // Unparsable lines count as entries: an endless stream of them ends too.
        let mut parser = ListingParser::new(ListFormat::Mlsd, NOW, caps);
        let junk = (0..=10).map(|_| parser.push(b"junk")).last();
        assert_eq!(junk, Some(Err(ListingCap::Entries(10))));
        assert_eq!(parser.finish().errors.len(), 10);

        let long = format!("type=file;size=1; {}", "n".repeat(100));
        let mut parser = ListingParser::new(ListFormat::Mlsd, NOW, caps);
        assert_eq!(
            parser.push(long.as_bytes()),
            Err(ListingCap::LineBytes(100))
        );

        let big_names = Caps {
            bytes: 2 * held_bytes(&m(&mlsd_line(0))),
            ..caps
        };
        let mut parser = ListingParser::new(ListFormat::Mlsd, NOW, big_names);
        let pushed: Vec<_> = (0..3)
            .map(|i| parser.push(mlsd_line(i).as_bytes()))
            .collect();
        assert_eq!(pushed[2], Err(ListingCap::Bytes(big_names.bytes)));
        assert_eq!(ListingCap::Bytes(200 << 20).to_string(), "200 MB");
    }

    #[test]
    fn unparsable_lines_beyond_a_hundred_are_only_counted() {
        let mut parser = ListingParser::new(ListFormat::List, NOW, Caps::default());
        parser.push_text(&b"junk\r\n".repeat(150)).unwrap();
        let parsed = parser.finish();
        assert_eq!((parsed.errors.len(), parsed.more_errors), (100, 50));
    }
}
