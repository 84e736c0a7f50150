//! A worker: owns one FTP connection for the whole run and executes the jobs the coordinator
//! releases, one at a time, retrying failures (on a fresh connection when the old one broke).
//! Workers announce themselves ready once logged in (syn) and acknowledge the end of work with
//! their exit (ack), so the coordinator's summary is exactly what happened on the server.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::engine::job::{Job, JobError, Outcome, Task, WorkerContext};
use crate::engine::perms;
use crate::ftp::{Connection, FtpError, PathCommand};

mod attempt;
mod batch;
mod chained;
mod pulling;

use attempt::execute;
use batch::{gather, path_command};

/// First pause before retrying a failed job; doubled on each further try.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// What workers tell the coordinator.
#[derive(Debug)]
pub(crate) enum Event {
    /// Connected and logged in: ready for work (syn).
    Ready,
    /// Could not connect or log in; this worker is gone.
    ConnectFailed { error: FtpError },
    /// A job ended.
    Finished {
        id: usize,
        result: Result<Outcome, JobError>,
    },
    /// The worker lost its connection for good and hands the job back to others.
    Returned { task: Task },
    /// The worker saw the end of work (or a stop), logged out and exited (ack).
    Exited,
}

/// The two job channels, high priority first, shared by all workers.
pub(crate) struct Queues {
    receivers: tokio::sync::Mutex<(mpsc::UnboundedReceiver<Task>, mpsc::Receiver<Task>)>,
    /// Cancelled when the channels close: nothing more will come.
    pub(crate) work_over: CancellationToken,
}

impl Queues {
    pub(crate) fn new(high: mpsc::UnboundedReceiver<Task>, low: mpsc::Receiver<Task>) -> Self {
        Queues {
            receivers: tokio::sync::Mutex::new((high, low)),
            work_over: CancellationToken::new(),
        }
    }

    /// The next job, high priority first; None once both channels are closed and drained, or
    /// when stopping.
    async fn next(&self, stop: &CancellationToken) -> Option<Task> {
        let mut guard = tokio::select! {
            _ = stop.cancelled() => return None,
            guard = self.receivers.lock() => guard,
        };
        let (high, low) = &mut *guard;
        // `else` fires only once both channels are closed; the stop branch must stay outside,
        // since a branch that never completes would keep `else` from ever firing.
        let either = async {
            tokio::select! {
                biased;
                Some(task) = high.recv() => Some(task),
                Some(task) = low.recv() => Some(task),
                else => None,
            }
        };
        tokio::select! {
            biased;
            _ = stop.cancelled() => None,
            task = either => task,
        }
    }
}

impl Queues {
    /// A job that is waiting right now, if any (never waits).
    fn try_next(&self, stop: &CancellationToken) -> Option<Task> {
        if stop.is_cancelled() {
            return None;
        }
        let mut guard = self.receivers.try_lock().ok()?;
        let (high, low) = &mut *guard;
        high.try_recv().or_else(|_| low.try_recv()).ok()
    }
}

/// Whether a worker goes on taking jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    /// This worker lost the server for good: the jobs it had not done were handed back.
    Stop,
}

/// What a worker carries between jobs.
struct Worker {
    ctx: Arc<WorkerContext>,
    events: mpsc::UnboundedSender<Event>,
    conn: Option<Connection>,
    held: Option<chained::Held>,
    /// A download sent ahead (see [`pulling`]): its replies are the next due on the connection.
    ahead: Option<Task>,
    /// Downloads being put in place, each reporting its job once done.
    placing: tokio::task::JoinSet<()>,
}

/// One worker's whole life: connect, announce, work, log out, acknowledge.
#[tracing::instrument(skip_all, fields(worker = id))]
pub(crate) async fn run(
    id: usize,
    ctx: Arc<WorkerContext>,
    queues: Arc<Queues>,
    events: mpsc::UnboundedSender<Event>,
) {
    // A worker still logging in when the work is over (a small sync that the faster workers
    // finished) leaves at once rather than finish its login for nothing; so does one told to
    // stop.
    let opened = tokio::select! {
        opened = first_connection(&ctx) => opened,
        _ = queues.work_over.cancelled() => None,
    };
    let Some(opened) = opened else {
        let _ = events.send(Event::Exited);
        return;
    };
    let conn = match opened {
        Ok(conn) => conn,
        Err(error) => {
            let _ = events.send(Event::ConnectFailed { error });
            let _ = events.send(Event::Exited);
            return;
        }
    };
    let mut conn = conn;
    // One connection says where they all lead, for the lock on the remote folder; the others
    // wait for its answer rather than ask again.
    ctx.whereabouts.get_or_init(|| conn.whereabouts()).await;
    tracing::debug!("connected");
    let _ = events.send(Event::Ready);
    let mut worker = Worker {
        ctx,
        events,
        conn: Some(conn),
        held: None,
        ahead: None,
        placing: tokio::task::JoinSet::new(),
    };
    worker.work(&queues).await;
    if let Some(conn) = worker.conn.take() {
        conn.quit().await;
    }
    // Every job reported before the acknowledgement.
    while worker.placing.join_next().await.is_some() {}
    let _ = worker.events.send(Event::Exited);
}

/// The worker's first connection: tried again (up to `--retries` tries) only when the server
/// failed in a way a fresh connection usually mends (vsftpd's `500 OOPS`). None on a stop.
async fn first_connection(ctx: &WorkerContext) -> Option<Result<Connection, FtpError>> {
    let mut attempt = 1;
    loop {
        match open(ctx).await? {
            Err(e @ FtpError::ServerFault { .. }) if attempt < ctx.retries => {
                tracing::debug!(attempt, error = %e, "connecting failed");
                let pause = RETRY_BACKOFF * 2u32.pow(attempt - 1);
                stoppable(&ctx.stop, tokio::time::sleep(pause)).await?;
                attempt += 1;
            }
            opened => return Some(opened),
        }
    }
}

impl Worker {
    /// Takes jobs until the queues close, a stop, or [`Flow::Stop`] (this worker lost the
    /// server for good; its job was handed back).
    async fn work(&mut self, queues: &Queues) {
        // A job taken while gathering listings, to run next.
        let mut next: Option<Task> = None;
        let backing_up = self.ctx.backup.is_some();
        let batchable = move |job: &Job| path_command(job, backing_up);
        loop {
            if let Some(task) = self.ahead.take() {
                // Sent ahead but not begun: on a stop, another run (or worker) has it.
                if self.ctx.stop.is_cancelled() {
                    self.ahead = Some(task);
                    self.hand_back_unstarted(next.take()).await;
                    break;
                }
                if self.pull_link(task, true, queues, &mut next).await == Flow::Stop {
                    self.hand_back_unstarted(next).await;
                    return;
                }
                continue;
            }
            // A held upload waits for the next job only if one is there already.
            let task = match (next.take(), &self.held) {
                (Some(task), _) => Some(task),
                (None, Some(_)) => match queues.try_next(&self.ctx.stop) {
                    Some(task) => Some(task),
                    None => {
                        if self.finish_held().await == Flow::Stop {
                            return;
                        }
                        queues.next(&self.ctx.stop).await
                    }
                },
                (None, None) => queues.next(&self.ctx.stop).await,
            };
            let Some(task) = task else { break };
            let listing = |job: &Job| matches!(job, Job::List(_)).then_some(());
            let flow = if let Some(kind) = listing(&task.job) {
                // Listings waiting right now go together (see Connection::list_many).
                let batch = gather(queues, &self.ctx.stop, (task, kind), listing, &mut next);
                let listings: Vec<Task> = batch.into_iter().map(|(task, ())| task).collect();
                if self.finish_held().await == Flow::Continue {
                    self.list(listings).await
                } else {
                    self.hand_back(listings);
                    Flow::Stop
                }
            } else if let Some(command) = batchable(&task.job) {
                // So do folders to create and files or folders to delete (see run_many).
                let batch = gather(
                    queues,
                    &self.ctx.stop,
                    (task, command),
                    batchable,
                    &mut next,
                );
                if self.finish_held().await == Flow::Continue {
                    self.run_batch(batch).await
                } else {
                    self.hand_back(batch.into_iter().map(|(task, _)| task));
                    Flow::Stop
                }
            } else if self.pull_chainable(&task) {
                self.pull_link(task, false, queues, &mut next).await
            } else {
                match self.chainable(&task) {
                    Some((file, up)) => self.chain(task, file, up).await,
                    None if self.finish_held().await == Flow::Continue => {
                        self.execute_task(task, 1).await
                    }
                    None => {
                        self.hand_back([task]);
                        Flow::Stop
                    }
                }
            };
            if flow == Flow::Stop {
                // Not started: another worker takes it.
                self.hand_back_unstarted(next).await;
                return;
            }
        }
        // In flight: the held upload is finished even when stopping.
        self.finish_held().await;
    }

    /// Lists the folders of `tasks` together, and reports each; a listing that failed goes
    /// through the retry loop on its own.
    async fn list(&mut self, tasks: Vec<Task>) -> Flow {
        let conn = match self.conn.as_mut() {
            Some(conn) if tasks.len() > 1 => conn,
            _ => return self.execute_each(tasks).await,
        };
        let ctx = &self.ctx;
        let paths: Vec<String> = tasks
            .iter()
            .map(|task| match &task.job {
                Job::List(rel) => ctx.target.remote_path(rel),
                _ => unreachable!("only listings are gathered"),
            })
            .collect();
        let allow_stat = ctx.quirks.stat_listing();
        let mlsd_stat = ctx.quirks.stat_for_mlsd();
        // Nothing is in flight while listing: a stop ends it at once.
        let Some(results) =
            stoppable(&ctx.stop, conn.list_many(&paths, allow_stat, mlsd_stat)).await
        else {
            self.conn = None;
            for task in tasks {
                let _ = self.events.send(Event::Finished {
                    id: task.id,
                    result: Err(JobError::Interrupted),
                });
            }
            return Flow::Stop;
        };
        let mut retry = Vec::new();
        for (task, result) in tasks.into_iter().zip(results) {
            match result {
                Ok(listing) => {
                    if let Some(agreed) = listing.stat_verdict {
                        ctx.quirks.judge_stat_listings(agreed);
                    }
                    let _ = self.events.send(Event::Finished {
                        id: task.id,
                        result: Ok(Outcome::Listed(listing.parsed)),
                    });
                }
                Err(e) => {
                    drop_if_broken(&mut self.conn, &e);
                    retry.push(task);
                }
            }
        }
        self.execute_each(retry).await
    }

    /// Runs the simple commands of `batch` together (see [`Connection::run_many`]) and reports
    /// each; one that failed goes through the retry loop on its own, the batch counting as its
    /// first try.
    async fn run_batch(&mut self, batch: Vec<(Task, (PathCommand, String))>) -> Flow {
        let conn = match self.conn.as_mut() {
            Some(conn) if batch.len() > 1 => conn,
            _ => {
                return self
                    .execute_each(batch.into_iter().map(|(task, _)| task).collect())
                    .await
            }
        };
        let target = &self.ctx.target;
        let commands: Vec<(PathCommand, String)> = batch
            .iter()
            .map(|(_, (command, rel))| (*command, target.remote_path(rel)))
            .collect();
        let results = conn.run_many(&commands).await;
        perms::folders_made(&self.ctx, conn, batch.iter().map(|(_, c)| c).zip(&results)).await;
        let mut retry = Vec::new();
        for ((task, _), result) in batch.into_iter().zip(results) {
            match result {
                Ok(()) => {
                    let _ = self.events.send(Event::Finished {
                        id: task.id,
                        result: Ok(Outcome::Done {
                            bytes: 0,
                            time_set: false,
                        }),
                    });
                }
                // As in `execute`: a refusal is final; a broken connection or a passing
                // trouble earns the next try.
                Err(e) if e.is_permanent() && !e.breaks_connection() => {
                    let _ = self.events.send(Event::Finished {
                        id: task.id,
                        result: Err(JobError::Remote(e)),
                    });
                }
                Err(e) => {
                    tracing::debug!(attempt = 1, error = %e, "job failed");
                    drop_if_broken(&mut self.conn, &e);
                    retry.push(task);
                }
            }
        }
        for (i, task) in retry.iter().enumerate() {
            if self.execute_task(task.clone(), 2).await == Flow::Stop {
                self.hand_back(retry.into_iter().skip(i + 1));
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// Runs `tasks` one after the other; if this worker loses the server, the ones not started
    /// are handed back with the one that failed.
    async fn execute_each(&mut self, tasks: Vec<Task>) -> Flow {
        let mut tasks = tasks.into_iter();
        while let Some(task) = tasks.next() {
            if self.execute_task(task, 1).await == Flow::Stop {
                self.hand_back(tasks);
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// Runs a job with retries from try `first` on and reports it; [`Flow::Stop`] when the job
    /// was handed back.
    async fn execute_task(&mut self, task: Task, first: u32) -> Flow {
        match execute(&self.ctx, &mut self.conn, &task.job, first).await {
            Some(Ok(Outcome::Finishing(placing))) => {
                self.report_when_placed(task.id, placing);
                Flow::Continue
            }
            Some(result) => {
                let _ = self.events.send(Event::Finished {
                    id: task.id,
                    result,
                });
                Flow::Continue
            }
            None => {
                tracing::warn!(
                    "connection lost and could not be re-established; handing back the job"
                );
                let _ = self.events.send(Event::Returned { task });
                Flow::Stop
            }
        }
    }

    /// Reports the download `id` once its file is in place (see [`Outcome::Finishing`]).
    fn report_when_placed(
        &mut self,
        id: usize,
        placing: tokio::task::JoinHandle<Result<Outcome, JobError>>,
    ) {
        while self.placing.try_join_next().is_some() {}
        let events = self.events.clone();
        self.placing.spawn(async move {
            let result = placing.await.unwrap_or_else(|e| {
                Err(JobError::Local(format!(
                    "putting the file in place failed: {e}"
                )))
            });
            let _ = events.send(Event::Finished { id, result });
        });
    }

    /// Gives back the download sent ahead, if any (its connection logs out: its replies are
    /// due), and the job `next` that was to run next.
    async fn hand_back_unstarted(&mut self, next: Option<Task>) {
        if let Some(ahead) = self.ahead.take() {
            if let Some(conn) = self.conn.take() {
                conn.abandon_sent_ahead().await;
            }
            self.hand_back([ahead]);
        }
        self.hand_back(next);
    }

    /// Gives tasks not started back to the coordinator, for other workers.
    fn hand_back(&self, tasks: impl IntoIterator<Item = Task>) {
        for task in tasks {
            let _ = self.events.send(Event::Returned { task });
        }
    }
}

/// `work` unless `stop` comes first (None): what it was doing is dropped half-way, so a
/// connection it used must be dropped too.
async fn stoppable<T>(
    stop: &CancellationToken,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        _ = stop.cancelled() => None,
        done = work => Some(done),
    }
}

/// A fresh connection; None when a stop came first.
async fn open(ctx: &WorkerContext) -> Option<Result<Connection, FtpError>> {
    stoppable(
        &ctx.stop,
        Connection::open(&ctx.target, &ctx.login, ctx.timeout),
    )
    .await
}

/// Drops the connection when `error` broke it (a fresh one is opened for the next try).
fn drop_if_broken(conn: &mut Option<Connection>, error: &FtpError) {
    if error.breaks_connection() {
        *conn = None;
    }
}
