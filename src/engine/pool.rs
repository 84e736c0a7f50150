//! The coordinator's side of the worker pool: spawns the workers, releases jobs on the high- and
//! low-priority channels, and turns worker events into job results. It keeps the books of the
//! syn/ack handshake: which workers announced themselves ready, and which acknowledged the end.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::job::{Job, JobError, Outcome, Task, WorkerContext};
use crate::engine::worker::{self, Event, Queues};
use crate::engine::SyncError;
use crate::ftp::FtpError;

/// Size of the low-priority channel per worker: small, so the coordinator keeps the ordering
/// decision (largest upload first) until a worker is about to take the job.
const LOW_SLOTS_PER_WORKER: usize = 1;

/// What the coordinator hears back.
#[derive(Debug)]
pub(crate) enum Report {
    /// A job ended, successfully or not (after the worker's retries).
    Done {
        id: usize,
        result: Result<Outcome, JobError>,
    },
    /// No worker is left: every one exited (stop, end of work, or lost connection).
    NoWorkers,
}

/// The pool of workers and the channels to it.
pub(crate) struct Dispatcher {
    high: Option<mpsc::UnboundedSender<Task>>,
    /// Low-priority sender; callers reserve a slot before picking which job to send.
    pub(crate) low: Option<mpsc::Sender<Task>>,
    /// Told to the workers when the channels close, so that one still logging in leaves.
    work_over: CancellationToken,
    /// The run's stop (the workers' [`WorkerContext::stop`]).
    stop: CancellationToken,
    events: mpsc::UnboundedReceiver<Event>,
    tracker: TaskTracker,
    next_id: usize,
    in_flight: HashMap<usize, Job>,
    live: usize,
    ready: usize,
    connect_errors: Vec<FtpError>,
}

impl Dispatcher {
    /// Spawns `jobs` workers; each connects and logs in on its own.
    pub(crate) fn start(ctx: Arc<WorkerContext>, jobs: usize) -> Dispatcher {
        let (high_tx, high_rx) = mpsc::unbounded_channel();
        let (low_tx, low_rx) = mpsc::channel(jobs * LOW_SLOTS_PER_WORKER);
        let (event_tx, events) = mpsc::unbounded_channel();
        let queues = Arc::new(Queues::new(high_rx, low_rx));
        let work_over = queues.work_over.clone();
        let stop = ctx.stop.clone();
        let tracker = TaskTracker::new();
        for id in 0..jobs {
            tracker.spawn(worker::run(
                id,
                Arc::clone(&ctx),
                Arc::clone(&queues),
                event_tx.clone(),
            ));
        }
        tracker.close();
        Dispatcher {
            high: Some(high_tx),
            low: Some(low_tx),
            work_over,
            stop,
            events,
            tracker,
            next_id: 0,
            in_flight: HashMap::new(),
            live: jobs,
            ready: 0,
            connect_errors: Vec::new(),
        }
    }

    /// Waits until one worker is ready (syn), or a stop: Ok then too, at once (workers still
    /// connecting give up), and the caller, which asked for the stop, finds its jobs
    /// interrupted. Err with the most telling connection error when none could connect.
    pub(crate) async fn first_ready(&mut self) -> Result<(), FtpError> {
        while self.ready == 0 {
            let event = tokio::select! {
                event = self.events.recv() => event,
                _ = self.stop.cancelled() => return Ok(()),
            };
            match event {
                Some(event) => {
                    self.book(event);
                }
                None => break,
            }
            if self.live == 0 && self.ready == 0 {
                break;
            }
        }
        if self.ready > 0 || self.stop.is_cancelled() {
            return Ok(());
        }
        let errors = std::mem::take(&mut self.connect_errors);
        // The most telling reason first: a certificate, then a refused login.
        let tls = errors.iter().find(|e| matches!(e, FtpError::Tls { .. }));
        let login = errors
            .iter()
            .find(|e| matches!(e, FtpError::LoginRefused { .. }));
        Err(tls
            .or(login)
            .or(errors.first())
            .cloned()
            .unwrap_or(FtpError::Unreachable {
                server: "the server".into(),
                detail: "no connection could be made".into(),
            }))
    }

    /// Workers that failed to connect, with why (reported once by the caller).
    pub(crate) fn take_connect_errors(&mut self) -> Vec<FtpError> {
        std::mem::take(&mut self.connect_errors)
    }

    /// Connected workers so far.
    pub(crate) fn ready_workers(&self) -> usize {
        self.ready
    }

    fn new_task(&mut self, job: Job) -> Task {
        let id = self.next_id;
        self.next_id += 1;
        self.in_flight.insert(id, job.clone());
        Task { id, job }
    }

    /// Releases a job on the high-priority channel.
    pub(crate) fn send_high(&mut self, job: Job) -> usize {
        let task = self.new_task(job);
        let id = task.id;
        if let Some(high) = &self.high {
            let _ = high.send(task);
        }
        id
    }

    /// Releases a job on a reserved low-priority slot.
    pub(crate) fn send_low(&mut self, permit: mpsc::OwnedPermit<Task>, job: Job) -> usize {
        let task = self.new_task(job);
        let id = task.id;
        permit.send(task);
        id
    }

    /// Releases `job` alone and waits for its result (other results that come meanwhile are
    /// dropped): Interrupted when every worker left on a stop, a lost connection (`operation`
    /// names the job) when they left otherwise.
    pub(crate) async fn run_one(
        &mut self,
        job: Job,
        stop: &CancellationToken,
        operation: String,
    ) -> Result<Result<Outcome, JobError>, SyncError> {
        let id = self.send_high(job);
        loop {
            match self.next().await {
                Report::Done { id: done, result } if done == id => return Ok(result),
                Report::Done { .. } => continue,
                Report::NoWorkers if stop.is_cancelled() => return Err(SyncError::Interrupted),
                Report::NoWorkers => {
                    return Err(SyncError::Connect(FtpError::Connection {
                        operation,
                        detail: "every connection to the server was lost".into(),
                    }))
                }
            }
        }
    }

    /// The next job result, or NoWorkers.
    pub(crate) async fn next(&mut self) -> Report {
        loop {
            if self.live == 0 {
                return Report::NoWorkers;
            }
            let Some(event) = self.events.recv().await else {
                return Report::NoWorkers;
            };
            if let Some(report) = self.book(event) {
                return report;
            }
        }
    }

    /// Updates the books for one event; returns what the caller must hear about.
    fn book(&mut self, event: Event) -> Option<Report> {
        match event {
            Event::Ready => self.ready += 1,
            Event::ConnectFailed { error, .. } => self.connect_errors.push(error),
            Event::Exited => self.live -= 1,
            Event::Returned { task } => {
                // Another worker takes it over; the high channel is never full.
                if let Some(high) = &self.high {
                    let _ = high.send(task);
                }
            }
            Event::Finished { id, result } => {
                self.in_flight.remove(&id)?;
                return Some(Report::Done { id, result });
            }
        }
        None
    }

    /// Ends the work (closing both channels), waits for every worker's acknowledgement, and
    /// returns the jobs that were released but never finished.
    pub(crate) async fn finish(mut self) -> Vec<Job> {
        self.high = None;
        self.low = None;
        self.work_over.cancel();
        while self.live > 0 {
            match self.events.recv().await {
                Some(event) => {
                    if let Some(Report::Done { .. }) = self.book(event) {
                        // A job that was running when the end came; it is done either way.
                    }
                }
                None => break,
            }
        }
        self.tracker.wait().await;
        self.in_flight.into_values().collect()
    }
}
