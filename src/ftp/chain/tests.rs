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
