//! One job on a worker's connection, with its retries: a fresh connection when the old one
//! broke, a pause doubling between tries, a refusal final; and the one try itself, by kind of
//! job.

use super::{drop_if_broken, open, stoppable, RETRY_BACKOFF};
use crate::engine::job::{Job, JobError, Outcome, WorkerContext};
use crate::engine::plan::Op;
use crate::engine::{backup, checksum, perms, pull, upload};
use crate::ftp::{Connection, FtpError};

/// Runs `job` with retries. None means this worker cannot reach the server any more.
pub(super) async fn execute(
    ctx: &WorkerContext,
    conn: &mut Option<Connection>,
    job: &Job,
    first: u32,
) -> Option<Result<Outcome, JobError>> {
    let mut last: Option<FtpError> = None;
    // Whether the last try failed to even connect: then this worker gives the job back.
    let mut cannot_connect = false;
    let mut attempt = first;
    while attempt <= ctx.retries.max(first) {
        if attempt > 1 {
            let pause = RETRY_BACKOFF * 2u32.pow(attempt - 2);
            tokio::select! {
                _ = ctx.stop.cancelled() => return Some(Err(JobError::Interrupted)),
                _ = tokio::time::sleep(pause) => {}
            }
        }
        let c = match conn {
            Some(c) => c,
            None => match open(ctx).await {
                Some(Ok(fresh)) => conn.insert(fresh),
                None => return Some(Err(JobError::Interrupted)),
                Some(Err(e)) => {
                    // A refused login or certificate will not change on the next try.
                    let permanent = e.is_permanent() && !e.is_connection_limit();
                    last = Some(e);
                    cannot_connect = true;
                    if permanent {
                        break;
                    }
                    attempt += 1;
                    continue;
                }
            },
        };
        cannot_connect = false;
        let tried = if matches!(job, Job::List(_)) {
            // Nothing is in flight while listing: a stop ends it at once.
            match stoppable(&ctx.stop, attempt_job(ctx, c, job, &mut attempt)).await {
                Some(tried) => tried,
                None => {
                    *conn = None;
                    return Some(Err(JobError::Interrupted));
                }
            }
        } else {
            attempt_job(ctx, c, job, &mut attempt).await
        };
        match tried {
            Ok(outcome) => return Some(Ok(outcome)),
            Err(JobError::Remote(e)) => {
                tracing::debug!(attempt, error = %e, "job failed");
                drop_if_broken(conn, &e);
                // A retry after a broken exchange may find the first try did succeed.
                if attempt > 1 && e.code() == Some(550) && already_done(ctx, job) {
                    return Some(Ok(Outcome::Done {
                        bytes: 0,
                        time_set: false,
                    }));
                }
                // A listing past its caps would only go past them again.
                if e.is_permanent() || e.is_listing_cap() {
                    return Some(Err(JobError::Remote(e)));
                }
                last = Some(e);
            }
            Err(other) => return Some(Err(other)),
        }
        attempt += 1;
    }
    match last {
        _ if cannot_connect => None,
        Some(e) => Some(Err(JobError::Remote(e))),
        None => Some(Err(JobError::Interrupted)),
    }
}

/// Jobs whose 550 on a retry means the previous, interrupted try took effect (not a move into
/// `--backup-dir`: a refused RNTO says 550 too, with the file still there).
fn already_done(ctx: &WorkerContext, job: &Job) -> bool {
    let deletes = ctx.backup.is_none() && matches!(job, Job::Run(Op::DeleteFile(_)));
    deletes
        || matches!(
            job,
            Job::Run(Op::Mkdir(_) | Op::RemoveDir(_) | Op::Cleanup(_))
        )
}

/// One try at `job` (uploads may take two, see [`upload::upload_job`]: `attempt` counts them).
async fn attempt_job(
    ctx: &WorkerContext,
    conn: &mut Connection,
    job: &Job,
    attempt: &mut u32,
) -> Result<Outcome, JobError> {
    let done = Outcome::Done {
        bytes: 0,
        time_set: false,
    };
    let path = |rel: &str| ctx.target.remote_path(rel);
    match job {
        Job::List(rel) => {
            let allow_stat = ctx.quirks.stat_listing();
            let mlsd_stat = ctx.quirks.stat_for_mlsd();
            let listing = match conn.list(&path(rel), allow_stat, mlsd_stat).await {
                Ok(listing) => listing,
                // A listing too large for one STAT reply leaves the connection out of step:
                // list over data connections from now on, on a fresh one, within this try.
                Err(FtpError::ReplyTooLarge { .. }) if allow_stat => {
                    ctx.quirks.stop_stat_listing();
                    *conn = Connection::open(&ctx.target, &ctx.login, ctx.timeout).await?;
                    conn.list(&path(rel), false, mlsd_stat).await?
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(agreed) = listing.stat_verdict {
                ctx.quirks.judge_stat_listings(agreed);
            }
            Ok(Outcome::Listed(listing.parsed))
        }
        Job::Run(op) => {
            // Every variant by name: a new operation must not become a DELE by default.
            let done_remotely = match op {
                Op::MakeRoot => conn.mkdir_all(&path("")).await,
                Op::Mkdir(rel) => perms::mkdir(ctx, conn, rel).await,
                Op::RemoveDir(rel) => conn.rmdir(&path(rel)).await,
                Op::DeleteFile(rel) => backup::delete(ctx, conn, rel).await,
                Op::Cleanup(rel) => conn.delete(&path(rel)).await,
                Op::Upload { rel, size, mtime } => {
                    return upload::upload_job(ctx, conn, rel, *size, *mtime, attempt).await;
                }
            };
            done_remotely.map(|_| done).map_err(Into::into)
        }
        Job::Fetch(path) => {
            let bytes = checksum::io::fetch(ctx, conn, path).await?;
            let server_hash = conn.features.hash;
            Ok(Outcome::Fetched { bytes, server_hash })
        }
        Job::Put { path, bytes } => {
            checksum::io::put(ctx, conn, path, bytes).await?;
            Ok(done)
        }
        Job::Hash(rel) => Ok(Outcome::Hashed(checksum::io::hash(conn, &path(rel)).await?)),
        Job::Download(file) => pull::download::download_job(ctx, conn, file).await,
    }
}
