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
        link: None,
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
    assert_eq!(s.link, None);
    let slink = m("type=OS.unix=slink:/etc/passwd;size=11; x");
    assert_eq!(
        (slink.kind, slink.link.as_deref()),
        (Symlink, Some("/etc/passwd"))
    );
    assert_eq!(
        m("type=OS.unix=slink:;size=1; y").link,
        None,
        "pure-ftpd shows no target"
    );
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
    let mut expected = entry("my link", Symlink, 11, NOV26, Minute);
    expected.link = Some("a -> b".into());
    assert_eq!(s, expected);
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
    let text = "total 8\njunk\n-rw-r--r-- 1 a b 3 Jan 02 2020 x\nd--------- 1 a b 0 Jan 2 2020 ..";
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
    format!(
        "type=file;size={i};modify=20240102030405;UNIX.mode=0644;unique=803g{i}; file-{i:07}.jpg"
    )
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
