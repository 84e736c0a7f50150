//! ftpsync's integration tests, as one test binary (one compile and link instead of one per
//! file). Each module is one subject; `support` holds the helpers they share.

mod backup_dir;
mod bwlimit;
mod checksum;
mod cli;
mod faults;
mod faults_selftest;
mod ftps;
mod interrupt;
mod modes;
mod periodic;
mod progress;
mod pull;
mod real_servers;
mod safety;
mod support;
mod support_selftest;
mod sync_inprocess;
