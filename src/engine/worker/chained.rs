//! A worker's side of the upload chain (see [`crate::ftp::chain`]): which upload jobs can be links,
//! the one upload held between two jobs (its bytes on the server, its check and rename to travel
//! with the next upload's first commands), and what each link's outcome means for its job.

use super::{drop_if_broken, Event, Flow, Worker};
use crate::engine::job::{Job, JobError, Task};
use crate::engine::perms;
use crate::engine::plan::Op;
use crate::engine::quirks::TimeSetting;
use crate::engine::upload::{
    job_result, local_version, stored_outcome, FileUpload, Tried, Version,
};
use crate::ftp::chain;
use crate::ftp::{FtpError, UploadError};
use crate::temp_name::temp_path;

/// An upload job in a chain: the task, the file, and the local version its upload began with.
pub(super) struct Link {
    task: Task,
    file: FileUpload,
    version: Version,
}

/// The upload held between two jobs: bytes on the server under the temporary name, 226 read.
pub(super) struct Held {
    link: Link,
    sent: chain::Sent,
}

impl Worker {
    /// The upload `task` as the next link of a chain, when this connection and server allow.
    pub(super) fn chainable(&self, task: &Task) -> Option<(FileUpload, chain::Upload)> {
        let Job::Run(Op::Upload { rel, size, mtime }) = &task.job else {
            return None;
        };
        let ctx = &self.ctx;
        let conn = self.conn.as_ref()?;
        if !ctx.atomic
            || !conn.can_pipeline()
            || !ctx.quirks.pipelining()
            || ctx.quirks.storage_full()
            || ctx.backup.is_some()
        {
            return None;
        }
        // Until this server's way of setting times is known, the first uploads find it out alone.
        let how = match ctx.quirks.time_setting() {
            TimeSetting::Unknown => return None,
            known => known.setter(),
        };
        let file = FileUpload {
            rel: rel.clone(),
            remote: ctx.target.remote_path(rel),
            local: ctx.local_root.join(rel),
            size: *size,
            mtime: *mtime,
        };
        let version = local_version(&file.local).ok()?;
        let temp = temp_path(&file.remote, &ctx.run_token);
        let up = chain::Upload {
            set_time: how.map(|how| how.command(file.mtime, &temp)),
            temp,
            target: file.remote.clone(),
            local: file.local.clone(),
            offset: 0,
            expect_size: conn.features.size.then_some(version.0),
            version,
            chmod: perms::file_mode(ctx, &file.local),
            progress: ctx.sending(rel, 0),
            limit: ctx.bwlimit.clone(),
        };
        Some((file, up))
    }

    /// Starts `up` (while finishing the held upload, if any), then holds `up`.
    pub(super) async fn chain(&mut self, task: Task, file: FileUpload, up: chain::Upload) -> Flow {
        let link = Link {
            task,
            file,
            version: up.version,
        };
        let conn = self.conn.as_mut().expect("chainable needs a connection");
        let early = self.ctx.quirks.early();
        let (previous, started) = match self.held.take() {
            None => (None, conn.chain_start(up, early).await),
            Some(held) => {
                let handover = conn.chain_finish_and_start(held.sent, up, early).await;
                (Some((held.link, handover.stored)), handover.started)
            }
        };
        let signs = started.signs;
        self.ctx.quirks.learn_early_checks(&signs);
        let next_breaks = matches!(
            &started.sent,
            Err(UploadError::Remote(e)) if e.breaks_connection()
        );
        if signs.out_of_step || next_breaks {
            self.conn = None;
        }
        let not_a_try = signs.early_refused || started.untried;
        // A failed upload's report may send commands (a retry, delete-then-rename): replies
        // still due to the next upload must not be in the way, so that one is finished first.
        let previous_failed = matches!(previous, Some((_, Err(_))));
        let next = match started.sent {
            Ok(sent) if previous_failed => NextLink::Ended(self.finish(sent, &link.file).await),
            Ok(sent) => NextLink::Hold(sent),
            Err(e) => NextLink::Ended(Err(e)),
        };
        if let Some((previous, stored)) = previous {
            let not_a_try = signs.early_refused;
            if self.report_or_retry(previous, stored, not_a_try).await == Flow::Stop {
                self.hand_back([link.task]);
                return Flow::Stop;
            }
        }
        match next {
            NextLink::Hold(sent) if self.conn.is_some() => {
                self.held = Some(Held { link, sent });
                Flow::Continue
            }
            // The connection went while the previous upload was reported: start over.
            NextLink::Hold(_) => self.execute_task(link.task, 1).await,
            NextLink::Ended(stored) => self.report_or_retry(link, stored, not_a_try).await,
        }
    }

    /// Finishes an upload whose bytes are on the server, with no next one: checks, time,
    /// rename.
    async fn finish(
        &mut self,
        sent: chain::Sent,
        file: &FileUpload,
    ) -> Result<chain::Stored, UploadError> {
        match self.conn.as_mut() {
            Some(conn) => {
                let finished = conn.chain_finish(sent).await;
                if finished.signs.out_of_step {
                    self.conn = None;
                }
                finished.stored
            }
            None => Err(UploadError::Remote(FtpError::Connection {
                operation: format!("STOR {}", file.remote),
                detail: "the connection was lost before the rename".into(),
            })),
        }
    }

    /// Finishes the held upload on its own (no next upload to share its round trips with).
    pub(super) async fn finish_held(&mut self) -> Flow {
        let Some(held) = self.held.take() else {
            return Flow::Continue;
        };
        let stored = self.finish(held.sent, &held.link.file).await;
        self.report_or_retry(held.link, stored, false).await
    }

    /// Reports a chained upload's first try, or hands it to the retry loop. `not_a_try`: the
    /// failure does not count as a try of this upload (never sent, or early checks the server
    /// mishandled).
    async fn report_or_retry(
        &mut self,
        link: Link,
        stored: Result<chain::Stored, UploadError>,
        not_a_try: bool,
    ) -> Flow {
        let Link {
            task,
            file,
            version,
        } = link;
        let temp = temp_path(&file.remote, &self.ctx.run_token);
        let conn = self.conn.as_mut();
        let outcome = stored_outcome(&self.ctx, conn, &file, &temp, version, stored).await;
        let mut attempt = 1;
        let tried = Tried {
            pipelined: true,
            attempt: &mut attempt,
        };
        let judged = job_result(
            &self.ctx,
            self.conn.as_mut(),
            &file,
            &temp,
            version,
            outcome,
            tried,
        )
        .await;
        let result = match judged {
            Ok(Some(outcome)) => Ok(outcome),
            // Changed while it was sent: the retry loop sends it again.
            Ok(None) => return self.execute_task(task, 1).await,
            // A failure that is not a try of this upload (see `chain::Started::untried`) is
            // tried again from the start, unless the server is full.
            Err(JobError::Remote(e)) if not_a_try && !e.is_storage_full() => {
                tracing::debug!(error = %e, "upload not tried; trying again");
                drop_if_broken(&mut self.conn, &e);
                return self.execute_task(task, 1).await;
            }
            Err(JobError::Remote(e)) if !e.is_permanent() && attempt < self.ctx.retries => {
                tracing::debug!(attempt, error = %e, "job failed");
                drop_if_broken(&mut self.conn, &e);
                return self.execute_task(task, attempt + 1).await;
            }
            Err(e) => {
                if let JobError::Remote(e) = &e {
                    drop_if_broken(&mut self.conn, e);
                }
                Err(e)
            }
        };
        let _ = self.events.send(Event::Finished {
            id: task.id,
            result,
        });
        Flow::Continue
    }
}

/// The next upload after a chain call.
enum NextLink {
    /// Its bytes on the server under the temporary name, 226 read: held for the next job.
    Hold(chain::Sent),
    /// Its end: it failed to start, or was finished on its own.
    Ended(Result<chain::Stored, UploadError>),
}
