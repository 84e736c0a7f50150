use super::*;

#[test]
fn checks_ask_the_size_then_set_the_time_of_the_temporary_file() {
    let up = Upload {
        temp: "/d/.a.ftpsync-tmp".into(),
        target: "/d/a".into(),
        local: "a".into(),
        offset: 0,
        expect_size: Some(3),
        set_time: Some("MFMT 20240102030405 /d/.a.ftpsync-tmp".into()),
        version: (3, None),
        chmod: None,
        progress: None,
        limit: None,
    };
    assert_eq!(
        checks(&up),
        "SIZE /d/.a.ftpsync-tmp\r\nMFMT 20240102030405 /d/.a.ftpsync-tmp\r\n"
    );
    let bare = Upload {
        expect_size: None,
        set_time: None,
        ..up
    };
    assert_eq!(checks(&bare), "");
}

#[test]
fn the_mode_is_set_on_the_temporary_file_right_before_the_rename() {
    let up = Upload {
        temp: "/d/.a.ftpsync-tmp".into(),
        target: "/d/a".into(),
        local: "a".into(),
        offset: 0,
        expect_size: None,
        set_time: None,
        version: (3, None),
        chmod: Some(0o640),
        progress: None,
        limit: None,
    };
    assert_eq!(
        renames(&up),
        "SITE CHMOD 640 /d/.a.ftpsync-tmp\r\nRNFR /d/.a.ftpsync-tmp\r\nRNTO /d/a\r\n"
    );
    let plain = Upload { chmod: None, ..up };
    assert_eq!(
        renames(&plain),
        "RNFR /d/.a.ftpsync-tmp\r\nRNTO /d/a\r\n",
        "nothing more on the wire without --chmod or --perms"
    );
}
