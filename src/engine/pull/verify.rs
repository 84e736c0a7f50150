//! `--checksum` for a pull: a file of the same size on both sides is compared by content, the
//! server's hash (HASH, XSHA256, XSHA1, XMD5 or XCRC, see [`crate::ftp::digest`]) against the
//! local file's with the same algorithm, instead of by time. A server without a hash command
//! cannot compare: the run is refused before anything is written.

use super::plan::PullPlan;
use crate::engine::job::{Job, JobError, Outcome};
use crate::engine::pool::Dispatcher;
use crate::engine::{Run, SyncError};

impl Run<'_> {
    /// Decides the files of `plan.verify`: the same hash on both sides is unchanged, another
    /// hash (or one either side could not compute) a download.
    pub(super) async fn verify_by_hash(
        &mut self,
        pool: &mut Dispatcher,
        plan: &mut PullPlan,
    ) -> Result<(), SyncError> {
        let candidates = std::mem::take(&mut plan.verify);
        let Some(first) = candidates.first() else {
            return Ok(());
        };
        // One file first: whether the server hashes at all, and with which algorithm.
        let operation = format!("hash of {}", first.rel);
        let probe = pool.run_one(Job::Hash(first.rel.clone()), &self.stop, operation);
        let algorithm = match probe.await? {
            Ok(Outcome::Hashed(Some((algorithm, _)))) => Some(algorithm),
            Ok(_) => return Err(SyncError::NoServerHash),
            Err(JobError::Interrupted) => return Err(SyncError::Interrupted),
            Err(e) => {
                self.reporter.notice(&format!(
                    "the server would not hash {}: {e}; files of the same size are downloaded",
                    first.rel
                ));
                None
            }
        };
        let rels = candidates.iter().map(|d| d.rel.clone()).collect();
        let verdicts = match algorithm {
            Some(algorithm) => self.hash_verdicts(pool, algorithm, rels).await,
            None => Default::default(),
        };
        for d in candidates {
            match verdicts.get(&d.rel) {
                Some(true) => plan.unchanged.push(d.rel),
                _ => plan.downloads.push(d),
            }
        }
        Ok(())
    }
}
