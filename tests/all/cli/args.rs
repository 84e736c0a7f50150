//! Argument errors: one short line each, naming the cause once, never echoing a huge argument
//! in full; exclude files read no further than their limits; `--help` and `--version` in full.

use crate::support::{ftpsync, Tree};

use super::one_line_error;

#[test]
fn max_depth_0_is_refused_in_one_line() {
    let out = ftpsync()
        .args(["--max-depth", "0", ".", "ftp://h/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(one_line_error(&stderr).contains("--max-depth"), "{stderr}");
}

#[test]
fn argument_errors_are_one_short_line_each() {
    for args in [
        &["-j", "0", ".", "ftp://h/"][..],
        &["--dellete", ".", "ftp://h/"],
        &["."],
        &[],
        &["--tls", "bogus", ".", "ftp://h/"],
        &["--insecure", "--ca-file", "x", ".", "ftps://h/"],
        &["--debounce", "1s", ".", "ftp://h/"],
        &["--every", "soon", ".", "ftp://h/"],
    ] {
        let out = ftpsync().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = one_line_error(&stderr);
        assert!(line.ends_with("; see ftpsync --help"), "{line}");
        assert!(!line.contains("error: "), "{line}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn help_and_version_still_print_in_full_and_exit_0() {
    let help = ftpsync().arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).lines().count() > 20);
    let version = ftpsync().arg("--version").output().unwrap();
    assert_eq!(version.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&version.stdout);
    assert_eq!(
        stdout.trim(),
        format!("ftpsync {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_missing_exclude_file_names_its_cause_once() {
    let tree = Tree::new();
    let out = ftpsync()
        .args(["--exclude-from", "/no/such/excludes"])
        .arg(tree.path())
        .arg("ftp://h/")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = one_line_error(&stderr);
    assert_eq!(
        line.matches("No such file or directory").count(),
        1,
        "{line}"
    );
}

#[test]
fn a_huge_host_or_argument_is_not_echoed_in_full() {
    let tree = Tree::new();
    let host = "h".repeat(100_000);
    let long_dir = format!("/no/such/{}", "d".repeat(100_000));
    for (local, url) in [
        (
            tree.path().to_str().unwrap(),
            format!("ftp://{host}:99999/"),
        ),
        (tree.path().to_str().unwrap(), format!("http://{host}/")),
        (long_dir.as_str(), "ftp://u:p@127.0.0.1:1/".to_owned()),
    ] {
        let out = ftpsync().arg(local).arg(&url).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = one_line_error(&stderr);
        assert!(
            line.len() < 400,
            "{} characters: {}…",
            line.len(),
            &line[..200]
        );
        assert!(line.contains('…'), "{line}");
    }
    let out = ftpsync()
        .args(["--tls", &host, ".", "ftp://h/"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = one_line_error(&stderr);
    assert!(line.len() < 400, "{} characters", line.len());
}

#[test]
fn an_exclude_file_that_never_ends_is_refused_at_once() {
    let out = ftpsync()
        .args(["--exclude-from", "/dev/zero", ".", "ftp://h/"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        one_line_error(&stderr).contains("larger than 4 MiB"),
        "{stderr}"
    );
}

#[test]
fn an_exclude_file_with_too_many_patterns_is_refused_with_the_count() {
    let tree = Tree::new();
    let excludes = tree.path().join("excludes");
    let lines: String = (0..20_000).map(|i| format!("*.e{i}\n")).collect();
    std::fs::write(&excludes, lines).unwrap();
    let out = ftpsync()
        .arg("--exclude-from")
        .arg(&excludes)
        .args([".", "ftp://h/"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        one_line_error(&stderr),
        format!(
            "ftpsync: --exclude-from {} has 20000 patterns; at most 1000 are supported",
            excludes.display()
        )
    );
    // The cap counts the command line and the files together.
    let lines: String = (0..1000).map(|i| format!("*.e{i}\n")).collect();
    std::fs::write(&excludes, lines).unwrap();
    let out = ftpsync()
        .args(["--exclude", "*.tmp", "--exclude-from"])
        .arg(&excludes)
        .args([".", "ftp://h/"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        one_line_error(&stderr)
            .ends_with("has 1000 patterns, with 1 before it; at most 1000 are supported"),
        "{stderr}"
    );
}
