//! Profiles: `--profile NAME` runs `[profile.NAME]` of the configuration file (`--config`, or
//! `$XDG_CONFIG_HOME/ftpsync/config.toml`); the command line wins; an unknown key is an error
//! naming it and the file.

use crate::support::{assert_mirror, ftpsync, FtpServer, Tree};

use super::one_line_error;

#[test]
fn a_profile_runs_with_its_folders_and_options_and_the_command_line_wins() {
    let server = FtpServer::start_with_auth("alice", "profile-secret");
    let tree = Tree::new();
    tree.write("index.html", "home");
    tree.write("debug.log", "noise");
    let config = tempfile::tempdir().unwrap();
    let file = config.path().join("ftpsync").join("config.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let remote = server.url_with("alice", None, "www");
    std::fs::write(
        &file,
        format!(
            "[profile.www]\nlocal = {:?}\nremote = {remote:?}\npassword_env = \"WWW_PW\"\n\
             exclude = [\"*.log\"]\njobs = 2\n",
            tree.path().to_str().unwrap()
        ),
    )
    .unwrap();
    // From the default place, with a dry run asked on the command line: nothing changes.
    let dry = ftpsync()
        .env("XDG_CONFIG_HOME", config.path())
        .env("WWW_PW", "profile-secret")
        .args(["--profile", "www", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(
        !server.remote_dir("www").exists(),
        "a dry run changed the server"
    );
    let run = ftpsync()
        .env("WWW_PW", "profile-secret")
        .arg("--config")
        .arg(&file)
        .args(["--profile", "www"])
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        !server.remote_dir("www/debug.log").exists(),
        "the profile's exclude"
    );
    assert!(server.remote_dir("www/index.html").exists());
    std::fs::remove_file(tree.join("debug.log")).unwrap();
    assert_mirror(tree.path(), &server.remote_dir("www"));
}

#[test]
fn an_unknown_key_exits_2_naming_it_and_the_file() {
    let config = tempfile::tempdir().unwrap();
    let file = config.path().join("config.toml");
    std::fs::write(&file, "[profile.www]\nlocal = \"/x\"\ndelte = true\n").unwrap();
    let out = ftpsync()
        .arg("--config")
        .arg(&file)
        .args(["--profile", "www"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = one_line_error(&stderr);
    assert!(
        line.contains("unknown key \"delte\" in profile \"www\""),
        "{line}"
    );
    assert!(line.contains(file.to_str().unwrap()), "{line}");
}

#[test]
fn a_profile_with_pull_mirrors_its_remote_into_its_local_folder() {
    let server = FtpServer::start();
    let site = server.remote_dir("www");
    std::fs::create_dir_all(site.join("css")).unwrap();
    std::fs::write(site.join("index.html"), "home").unwrap();
    std::fs::write(site.join("css/a.css"), "a{}").unwrap();
    let backup = Tree::new();
    let config = tempfile::tempdir().unwrap();
    let file = config.path().join("config.toml");
    std::fs::write(
        &file,
        format!(
            "[profile.backup]\nlocal = {:?}\nremote = {:?}\npull = true\ndelete = true\n",
            backup.path().to_str().unwrap(),
            server.url("www")
        ),
    )
    .unwrap();
    let run = ftpsync()
        .arg("--config")
        .arg(&file)
        .args(["--profile", "backup", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let summary: serde_json::Value =
        serde_json::from_slice(run.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(summary["direction"], "pull", "{summary}");
    assert_mirror(&site, backup.path());
}
