//! A worker's side of the upload chain (see [`crate::ftp::chain`]): which upload jobs can be links,
//! the one upload held between two jobs (its bytes on the server, its check and rename to travel
//! with the next upload's first commands), and what each link's outcome means for its job.

use super::{drop_if_broken, Event, Worker};
use crate::engine::job::{Job, JobError, Task};
use crate::engine::plan::Op;
use crate::engine::quirks::TimeSetting;
use crate::engine::upload::{finish_stored, local_version, settle, FileUpload, Tried, Version};
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
        {
            return None;
        }
        // Until this server's way of setting times is known, the first uploads find it out alone.
        let how = match ctx.quirks.time_setting() {
            TimeSetting::Unknown => return None,
            known => known.setter(),
        };
        let file = FileUpload {
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
        };
        Some((file, up))
    }

    /// Starts `up` while finishing the held upload, then holds `up`.
    pub(super) async fn chain(&mut self, task: Task, file: FileUpload, up: chain::Upload) -> bool {
        let link = Link {
            task,
            file,
            version: up.version,
        };
        let (prev_sent, prev) = match self.held.take() {
            Some(held) => (Some(held.sent), Some(held.link)),
            None => (None, None),
        };
        let conn = self.conn.as_mut().expect("chainable needs a connection");
        let early = self.ctx.quirks.early();
        let step = conn.chain_step(prev_sent, Some(up), early).await;
        self.ctx.quirks.learn_early_checks(&step);
        let next_breaks = matches!(
            &step.next,
            Some(Err(UploadError::Remote(e))) if e.breaks_connection()
        );
        if step.out_of_step || next_breaks {
            self.conn = None;
        }
        let ours = step.early_refused || step.next_untried;
        // A failed upload's conclusion may send commands (a retry, delete-then-rename): replies
        // still due to the next upload must not be in the way, so that one is finished first.
        let prev_failed = matches!(step.prev, Some(Err(_)));
        let next = match step.next.expect("a step with a next upload reports it") {
            Ok(sent) if prev_failed => Err(self.finish_alone(sent, &link.file).await),
            Ok(sent) => Ok(sent),
            Err(e) => Err(Err(e)),
        };
        if let (Some(prev), Some(result)) = (prev, step.prev) {
            if !self.conclude(prev, result, step.early_refused).await {
                self.hand_back([link.task]);
                return false;
            }
        }
        match next {
            Ok(sent) if self.conn.is_some() => {
                self.held = Some(Held { link, sent });
                true
            }
            // The connection went while the previous upload was concluded: start over.
            Ok(_) => self.execute_task(link.task, 1).await,
            Err(result) => self.conclude(link, result, ours).await,
        }
    }

    /// Finishes an upload whose bytes are on the server on its own: checks, time, rename.
    async fn finish_alone(
        &mut self,
        sent: chain::Sent,
        file: &FileUpload,
    ) -> Result<chain::Stored, UploadError> {
        match self.conn.as_mut() {
            Some(conn) => {
                let step = conn.chain_step(Some(sent), None, chain::Early::Off).await;
                if step.out_of_step {
                    self.conn = None;
                }
                step.prev.expect("a step with a previous upload reports it")
            }
            None => Err(UploadError::Remote(FtpError::Connection {
                operation: format!("STOR {}", file.remote),
                detail: "the connection was lost before the rename".into(),
            })),
        }
    }

    /// Finishes the held upload on its own (no next upload to share its round trips with).
    pub(super) async fn finish_held(&mut self) -> bool {
        let Some(held) = self.held.take() else {
            return true;
        };
        let result = self.finish_alone(held.sent, &held.link.file).await;
        self.conclude(held.link, result, false).await
    }

    /// Reports a chained upload's first try, or hands it to the retry loop. `ours`: the failure
    /// is not a try of this upload (never sent, or early checks the server mishandled).
    async fn conclude(
        &mut self,
        link: Link,
        result: Result<chain::Stored, UploadError>,
        ours: bool,
    ) -> bool {
        let Link {
            task,
            file,
            version,
        } = link;
        let temp = temp_path(&file.remote, &self.ctx.run_token);
        let conn = self.conn.as_mut();
        let outcome = finish_stored(&self.ctx, conn, &file, &temp, version, result).await;
        let mut attempt = 1;
        let tried = Tried {
            pipelined: true,
            attempt: &mut attempt,
        };
        let settled = settle(
            &self.ctx,
            self.conn.as_mut(),
            &file,
            &temp,
            version,
            outcome,
            tried,
        )
        .await;
        let result = match settled {
            Ok(Some(outcome)) => Ok(outcome),
            // Changed while it was sent: the retry loop sends it again.
            Ok(None) => return self.execute_task(task, 1).await,
            // A failure that is not a try of this upload (see `chain::Step::next_untried`) is
            // tried again from the start, unless the server is full.
            Err(JobError::Remote(e)) if ours && !e.is_storage_full() => {
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
        true
    }
}
