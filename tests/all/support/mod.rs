//! Shared helpers for ftpsync's integration tests (`crate::support` in each test module).
//!
//! * [`FtpServer`] (`server.rs`): an in-process FTP server (libunftp + filesystem back end)
//!   serving a fresh temporary folder on `127.0.0.1` with an ephemeral port. It runs on its own
//!   thread with its own tokio runtime, so it works from plain `#[test]` and `#[tokio::test]`
//!   functions alike, and stops when dropped.
//! * [`real_servers`] (`real.rs`): the real FTP servers (vsftpd, pure-ftpd) named by
//!   `FTPSYNC_TEST_*` environment variables, with a per-test scratch folder on each.
//! * [`faults::FaultProxy`] (`faults/`): a proxy in front of either that injects faults.
//! * [`Tree`] (`tree.rs`): a temporary local folder with helpers to write, remove and re-date
//!   files.
//! * [`assert_mirror`], [`snapshot`] / [`changed_files`], [`tree_digest`] (`compare.rs`):
//!   checks on the result.
//! * [`ftpsync`] (`run.rs`): the binary under test, with an environment isolated from the
//!   machine's; [`sync`] runs it with `--json` and returns a [`Run`] (exit code, output, parsed
//!   summary).

mod compare;
pub mod faults;
mod real;
mod run;
mod server;
mod tree;

pub use compare::{
    assert_mirror, assert_mirror_except, changed_files, snapshot, tree_digest, Node,
};
pub use real::{host_port, real_servers, RealServer};
pub use run::{
    fake_home, ftpsync, isolate_env, run, spawn_until_first_upload, state_home, sync,
    sync_with_fresh_state, Run,
};
pub use server::FtpServer;
pub use tree::{mtime, set_mtime, Tree};
