//! A worker's side of the download chain (see [`crate::ftp::download::Behind`]): which
//! downloads may be links, the one sent ahead (its `PASV` and `RETR` behind the current
//! transfer, taken from the queue only once the server showed it keeps commands for after a
//! transfer), and what a link's failure means: a connection whose replies may be out of step
//! goes, a try the server's handling spoilt is not counted, and nothing is retried while the
//! replies to a download sent ahead are still due.

use super::{Event, Flow, Queues, Worker};
use crate::engine::job::{Job, JobError, Outcome, Task, WorkerContext};
use crate::engine::pull::download::{chainable, download_link, Linked};
use crate::ftp::chain::Early;
use crate::ftp::download::Behind;

/// Whether `task` is a download that may be a link of a chain, on a connection that can
/// pipeline commands or not (`pipelining`).
fn link(ctx: &WorkerContext, pipelining: bool, task: &Task) -> bool {
    let Job::Download(file) = &task.job else {
        return false;
    };
    let quirks = &ctx.quirks;
    chainable(file) && pipelining && quirks.pipelining() && quirks.early() != Early::Off
}

impl Worker {
    /// Whether `task` is a download this connection may take as a link of a chain.
    pub(super) fn pull_chainable(&self, task: &Task) -> bool {
        let pipelining = self.conn.as_ref().is_some_and(|c| c.can_pipeline());
        link(&self.ctx, pipelining, task)
    }

    /// Downloads `task` as a link of a chain (`sent`: its `PASV` and `RETR` went out behind the
    /// previous link), and reports it or hands it to the retry loop.
    pub(super) async fn pull_link(
        &mut self,
        task: Task,
        sent: bool,
        queues: &Queues,
        next: &mut Option<Task>,
    ) -> Flow {
        let Job::Download(file) = &task.job else {
            unreachable!("only downloads are chained")
        };
        let Worker {
            ctx, conn, ahead, ..
        } = self;
        let Some(c) = conn.as_mut() else {
            unreachable!("a chainable download has a connection")
        };
        let (pipelining, two) = (c.can_pipeline(), c.can_pipeline_two());
        // A probe while the server is being found out, then the next download waiting in the
        // queue (sent ahead); a job of another kind taken from the queue runs next.
        let behind = || match ctx.quirks.early() {
            Early::Probe => Behind::Probe,
            Early::On if next.is_none() && two => match queues.try_next(&ctx.stop) {
                Some(task) if link(ctx, pipelining, &task) => {
                    let Job::Download(file) = &task.job else {
                        unreachable!("a link is a download")
                    };
                    let path = ctx.target.remote_path(&file.rel);
                    *ahead = Some(task);
                    Behind::Next(path)
                }
                other => {
                    *next = other;
                    Behind::Nothing
                }
            },
            Early::On | Early::Off => Behind::Nothing,
        };
        let Linked {
            result,
            signs,
            next_sent,
            untried,
        } = download_link(ctx, c, file, sent, behind).await;
        self.ctx.quirks.learn_early_checks(&signs);
        if signs.out_of_step {
            self.conn = None;
        }
        let retry = match &result {
            Err(JobError::Remote(e)) if untried => Some((e.clone(), 1)),
            Err(JobError::Remote(e)) if !e.is_permanent() && self.ctx.retries > 1 => {
                Some((e.clone(), 2))
            }
            _ => None,
        };
        // A download sent ahead is the next on this connection, unless the connection went
        // or this one is tried again first (its replies would be in the way: the connection
        // logs out, and the one sent ahead starts afresh).
        if !next_sent || self.conn.is_none() || retry.is_some() {
            if let Some(conn) = self.conn.take_if(|_| next_sent) {
                conn.abandon_sent_ahead().await;
            }
            if let Some(ahead) = self.ahead.take() {
                debug_assert!(next.is_none(), "a job is sent ahead only when none is next");
                *next = Some(ahead);
            }
        }
        match (retry, result) {
            (Some((e, first)), _) => {
                tracing::debug!(attempt = 1, error = %e, untried, "download failed");
                self.execute_task(task, first).await
            }
            (None, Ok(Outcome::Finishing(placing))) => {
                self.report_when_placed(task.id, placing);
                Flow::Continue
            }
            (None, result) => {
                let _ = self.events.send(Event::Finished {
                    id: task.id,
                    result,
                });
                Flow::Continue
            }
        }
    }
}
