//! A listed folder's own time: its `.` line in a LIST-format listing (vsftpd's `LIST -a` and
//! `STAT -a`), its `cdir` line in an MLSD one. The line parsers skip such lines (they are not
//! entries); this reads only their time, for a pull to give the local folder.

use super::{list, mlsd_time, stamp, EntryKind, ListFormat, RemoteTime, TimePrecision};

/// The time `line` gives the listed folder itself, when it is that folder's line.
pub(super) fn time(line: &str, format: ListFormat, now_unix: i64) -> Option<RemoteTime> {
    match format {
        ListFormat::Mlsd => {
            let (facts, _) = line.split_once(' ')?;
            let facts: Vec<(&str, &str)> = facts
                .split(';')
                .filter_map(|fact| fact.split_once('='))
                .collect();
            let is = |key: &str, value: &str| {
                facts
                    .iter()
                    .any(|(k, v)| k.eq_ignore_ascii_case(key) && v.eq_ignore_ascii_case(value))
            };
            let modify = facts.iter().find(|(k, _)| k.eq_ignore_ascii_case("modify"));
            let unix = mlsd_time(modify?.1)?;
            is("type", "cdir").then(|| stamp(unix, TimePrecision::Second))
        }
        ListFormat::List => {
            // Read as an entry of another name: the columns before it are what tell the time.
            let columns = line.strip_suffix(" .")?;
            let entry = list(&format!("{columns} x"), now_unix).ok()??;
            let own = entry.name == "x" && entry.kind == EntryKind::Dir;
            entry.mtime.filter(|_| own)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listed_folders_own_line_gives_its_time_and_no_other_line_does() {
        let now = 1_800_000_000;
        let mlsd = |line| time(line, ListFormat::Mlsd, now).map(|t| (t.unix, t.precision));
        let at = (1_700_000_000, TimePrecision::Second);
        assert_eq!(
            mlsd("type=cdir;modify=20231114221320;UNIX.mode=0755; ."),
            Some(at)
        );
        assert_eq!(
            mlsd("Type=CDir;Modify=20231114221320; /srv/ftp/site"),
            Some(at)
        );
        assert_eq!(mlsd("type=pdir;modify=20231114221320; .."), None);
        assert_eq!(mlsd("type=dir;modify=20231114221320; sub"), None);
        assert_eq!(mlsd("type=cdir; ."), None);
        let list = |line| time(line, ListFormat::List, now).map(|t| t.unix);
        let dot = list("drwxr-xr-x    3 1000     1000         4096 Nov 14  2023 .");
        assert_eq!(
            dot,
            Some(1_699_920_000),
            "day precision: the start of the day"
        );
        assert_eq!(list("drwxr-xr-x 3 0 0 4096 Nov 14  2023 .."), None);
        assert_eq!(
            list("drwxr-xr-x 3 0 0 4096 Nov 14  2023 a ."),
            None,
            "a folder named 'a .'"
        );
        assert_eq!(
            list("-rw-r--r-- 1 0 0 12 Nov 14  2023 ."),
            None,
            "not a folder"
        );
        assert_eq!(list("total 12"), None);
    }
}
