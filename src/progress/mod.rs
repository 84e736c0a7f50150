//! Progress of one run's uploads, for the live display on a terminal ([`display`]): the totals
//! (set once the plan is known), the files and bytes done (as the coordinator counts them), and
//! the uploads in flight, each with a counter that the protocol layer adds to as its bytes go
//! ([`crate::ftp::Sent`]).
//!
//! Cheap by construction: a worker takes the lock once per upload it starts, the coordinator
//! once per upload it counts, the display once per redraw; the bytes themselves only touch an
//! atomic counter. Without a display there is no tracker at all.

pub(crate) mod display;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::ftp::Sent;

/// The uploads of one run: what is planned, done and in flight.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    files_total: u64,
    bytes_total: u64,
    files_done: u64,
    bytes_done: u64,
    /// Uploads neither done nor failed yet, and their planned sizes.
    pending: HashMap<String, u64>,
    /// Uploads whose bytes are going out, in the order they started.
    in_flight: Vec<InFlight>,
}

#[derive(Debug)]
struct InFlight {
    rel: String,
    size: u64,
    sent: Sent,
}

/// One upload in flight, as the display shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sending {
    pub(crate) rel: String,
    pub(crate) sent: u64,
    pub(crate) size: u64,
}

/// The tracker at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) files_done: u64,
    pub(crate) files_total: u64,
    /// Bytes of the uploads done, and those sent so far of the uploads in flight.
    pub(crate) bytes_done: u64,
    pub(crate) bytes_total: u64,
    /// The uploads in flight of at least the size asked for.
    pub(crate) large: Vec<Sending>,
}

impl Tracker {
    fn state(&self) -> MutexGuard<'_, State> {
        // The state is plain counters: a panic elsewhere leaves it usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The uploads the plan holds (path relative to the root, size): the totals.
    pub(crate) fn plan(&self, uploads: impl IntoIterator<Item = (String, u64)>) {
        let mut state = self.state();
        for (rel, size) in uploads {
            state.files_total += 1;
            state.bytes_total += size;
            state.pending.insert(rel, size);
        }
    }

    /// Takes `uploads` as the totals and shows the display, until [`display::Shown::end`].
    pub(crate) fn show(
        self: Arc<Self>,
        uploads: impl IntoIterator<Item = (String, u64)>,
    ) -> display::Shown {
        self.plan(uploads);
        display::show(self)
    }

    /// A try at uploading `rel` begins (from byte `offset`: what a resumed upload already has on
    /// the server counts as sent): the counter its bytes are to be added to. A later try of the
    /// same file starts over with a new counter.
    pub(crate) fn sending(&self, rel: &str, offset: u64) -> Sent {
        let sent = Arc::new(AtomicU64::new(offset));
        let mut state = self.state();
        let size = state.pending.get(rel).copied().unwrap_or(0);
        state.in_flight.retain(|f| f.rel != rel);
        state.in_flight.push(InFlight {
            rel: rel.to_string(),
            size,
            sent: Arc::clone(&sent),
        });
        sent
    }

    /// `rel` is uploaded, `sent` bytes in all: done, and no longer in flight.
    pub(crate) fn done(&self, rel: &str, sent: u64) {
        let mut state = self.state();
        state.in_flight.retain(|f| f.rel != rel);
        let Some(size) = state.pending.remove(rel) else {
            return;
        };
        state.files_done += 1;
        state.bytes_done += sent;
        // A file that changed size since the plan counts as sent.
        state.bytes_total = state.bytes_total - size + sent;
    }

    /// `rel` failed or will not be done: out of the totals, and no longer in flight.
    pub(crate) fn dropped(&self, rel: &str) {
        let mut state = self.state();
        state.in_flight.retain(|f| f.rel != rel);
        if let Some(size) = state.pending.remove(rel) {
            state.files_total -= 1;
            state.bytes_total -= size;
        }
    }

    /// Where the run stands; the uploads in flight of `large_min` bytes or more are listed.
    pub(crate) fn snapshot(&self, large_min: u64) -> Snapshot {
        let state = self.state();
        let mut snapshot = Snapshot {
            files_done: state.files_done,
            files_total: state.files_total,
            bytes_done: state.bytes_done,
            bytes_total: state.bytes_total,
            large: Vec::new(),
        };
        for f in &state.in_flight {
            let sent = f.sent.load(Ordering::Relaxed).min(f.size);
            snapshot.bytes_done += sent;
            if f.size >= large_min {
                snapshot.large.push(Sending {
                    rel: f.rel.clone(),
                    sent,
                    size: f.size,
                });
            }
        }
        snapshot.bytes_done = snapshot.bytes_done.min(snapshot.bytes_total);
        snapshot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> Tracker {
        let t = Tracker::default();
        t.plan([("big".to_string(), 100), ("small".to_string(), 10)]);
        t
    }

    #[test]
    fn bytes_in_flight_count_as_the_protocol_adds_them() {
        let t = tracker();
        let sent = t.sending("big", 0);
        sent.fetch_add(40, Ordering::Relaxed);
        let s = t.snapshot(50);
        assert_eq!((s.files_done, s.files_total), (0, 2));
        assert_eq!((s.bytes_done, s.bytes_total), (40, 110));
        let big = Sending {
            rel: "big".into(),
            sent: 40,
            size: 100,
        };
        assert_eq!(s.large, vec![big]);
        assert!(t.snapshot(101).large.is_empty(), "only large files listed");
    }

    #[test]
    fn a_done_upload_leaves_the_flight_and_counts_once() {
        let t = tracker();
        t.sending("big", 0).fetch_add(100, Ordering::Relaxed);
        t.done("big", 100);
        let s = t.snapshot(0);
        assert_eq!((s.files_done, s.bytes_done, s.bytes_total), (1, 100, 110));
        assert!(s.large.is_empty());
        t.done("big", 100);
        assert_eq!(t.snapshot(0).files_done, 1, "counted twice");
    }

    #[test]
    fn a_retry_starts_its_counter_over_and_a_resume_from_its_offset() {
        let t = tracker();
        t.sending("big", 0).fetch_add(70, Ordering::Relaxed);
        let again = t.sending("big", 30);
        assert_eq!(t.snapshot(0).bytes_done, 30);
        again.fetch_add(5, Ordering::Relaxed);
        assert_eq!(t.snapshot(0).bytes_done, 35);
    }

    #[test]
    fn a_failed_upload_leaves_the_totals() {
        let t = tracker();
        t.sending("small", 0).fetch_add(4, Ordering::Relaxed);
        t.dropped("small");
        t.dropped("not an upload");
        let s = t.snapshot(0);
        assert_eq!((s.files_total, s.bytes_total, s.bytes_done), (1, 100, 0));
    }

    #[test]
    fn a_file_that_grew_never_shows_more_than_the_total() {
        let t = tracker();
        t.sending("small", 0).fetch_add(25, Ordering::Relaxed);
        assert_eq!(t.snapshot(0).bytes_done, 10);
        t.done("small", 25);
        let s = t.snapshot(0);
        assert_eq!((s.bytes_done, s.bytes_total), (25, 125));
    }
}
