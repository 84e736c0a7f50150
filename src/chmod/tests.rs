use super::*;

const UMASK: u32 = 0o022;

/// `rules` applied to a file (or folder) of mode `mode`.
fn tweak(rules: &str, mode: u32, folder: bool) -> u32 {
    let ChmodRules(rules) = parse_rules(rules).unwrap_or_else(|e| panic!("{rules}: {e}"));
    apply(&rules, mode, folder, UMASK)
}

#[test]
fn rules_apply_in_order_to_the_local_mode_as_rsync_does() {
    // (rules, local mode, folder, expected), as rsync 3.2.7 gives them (umask 022, as root).
    let table = [
        ("644", 0o755, false, 0o644),
        ("0644", 0o600, false, 0o644),
        ("D755,F644", 0o700, true, 0o755),
        ("D755,F644", 0o700, false, 0o644),
        ("F600", 0o755, true, 0o755),
        ("F600", 0o664, false, 0o600),
        ("Fg-w", 0o664, false, 0o644),
        ("Dg-w", 0o664, false, 0o664),
        ("g-w", 0o775, true, 0o755),
        ("u+rwx,go=rx", 0o600, false, 0o755),
        ("go=", 0o777, false, 0o700),
        ("a+X", 0o644, false, 0o644),
        ("a+X", 0o744, false, 0o755),
        ("a+X", 0o600, true, 0o711),
        ("a-x,a+X", 0o755, false, 0o755),
        ("ug+rw,o-rwx", 0o604, false, 0o660),
        ("a=r", 0o777, false, 0o444),
        ("u+s", 0o755, false, 0o4755),
        ("g+s", 0o755, true, 0o2755),
        ("+t", 0o777, true, 0o1777),
        ("u-s", 0o4755, false, 0o755),
        ("4750", 0o644, false, 0o4750),
        ("F644,Fo-r", 0o777, false, 0o640),
        ("F600,D700", 0o755, true, 0o700),
        // Without u, g, o or a: the umask's bits are left alone, as chmod(1) does.
        ("+w", 0o444, false, 0o644),
        ("-w", 0o666, false, 0o466),
        ("=rw", 0o777, false, 0o644),
        // The file type and anything past 7777 never reach the result.
        ("g-w", 0o100_664, false, 0o644),
    ];
    for (rules, mode, folder, expected) in table {
        let got = tweak(rules, mode, folder);
        assert_eq!(
            got, expected,
            "{rules} on {mode:o} (folder: {folder}): {got:o}, not {expected:o}"
        );
    }
}

#[test]
fn bad_rules_are_errors_naming_the_rule() {
    let table = [
        ("D755,Fq644", "Fq644"),
        ("", ""),
        ("D", "D"),
        ("755,", ""),
        ("8", "8"),
        ("17777", "17777"),
        ("u644", "u644"),
        ("u+r-w", "u+r-w"),
        ("g+y", "g+y"),
        ("ug", "ug"),
        ("DF755", "DF755"),
        ("x+r", "x+r"),
    ];
    for (text, rule) in table {
        let error = parse_rules(text).expect_err(text);
        assert_eq!(error.rule, rule, "{text}: {error}");
        assert!(
            error.to_string().starts_with(&format!("rule {rule:?}: ")),
            "{error}"
        );
    }
}

#[test]
fn a_mode_is_sent_with_perms_or_when_a_rule_is_for_that_kind_of_entry() {
    let rules = |text: &str| vec![parse_rules(text).unwrap()];
    assert_eq!(Modes::new(false, vec![], UMASK), None, "neither option");

    let files_only = Modes::new(false, rules("F600"), UMASK).unwrap();
    assert_eq!(files_only.mode(0o644, false), Some(0o600));
    assert_eq!(files_only.mode(0o755, true), None, "no rule for folders");

    let perms = Modes::new(true, vec![], UMASK).unwrap();
    assert_eq!(perms.mode(0o640, false), Some(0o640));
    assert_eq!(perms.mode(0o40_750, true), Some(0o750));

    let both = Modes::new(true, rules("F600"), UMASK).unwrap();
    assert_eq!(both.mode(0o755, true), Some(0o755), "--perms for folders");
    assert_eq!(both.mode(0o755, false), Some(0o600), "rules on top");

    let repeated = Modes::new(false, [rules("F600"), rules("Fg+r")].concat(), UMASK).unwrap();
    assert_eq!(repeated.mode(0o644, false), Some(0o640), "options in order");
}

#[test]
fn the_local_mode_is_read_from_the_file_or_folder() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o604)).unwrap();
    let modes = Modes::new(true, vec![parse_rules("Dg-x").unwrap()], UMASK).unwrap();
    assert_eq!(modes.mode_of(&file), Some(0o604));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o751)).unwrap();
    assert_eq!(modes.mode_of(dir.path()), Some(0o741));
    assert_eq!(modes.mode_of(&dir.path().join("missing")), None);
}

#[test]
fn the_umask_is_read_from_the_process() {
    // Cargo runs tests with the shell's umask; whatever it is, only permission bits.
    assert_eq!(process_umask() & !0o777, 0);
}
