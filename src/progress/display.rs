//! The live progress display on stderr (indicatif): one line for the run (files and bytes done
//! of the total, percentage, rate, time left), and one per upload in flight of at least
//! [`LARGE_FILE`], redrawn every [`REDRAW`] from the [`Tracker`]'s counters, never per chunk.
//!
//! While it is up, everything else printed (change lines, notices, the log) goes through
//! [`above`], which takes the bars off, prints, and puts them back: the lines scroll above the
//! display instead of through it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::{Snapshot, Tracker};
use crate::report::escape_controls;

/// How often the display is redrawn: often enough to look live, seldom enough to cost nothing.
const REDRAW: Duration = Duration::from_millis(150);

/// Uploads in flight at least this large get a line of their own; smaller ones are over before
/// a line would be read.
pub(crate) const LARGE_FILE: u64 = 8 << 20;

/// The longest path shown on a file's line, in characters (the end of it is kept).
const PATH_CHARS: usize = 40;

/// The display up, if any: what [`above`] prints around. `SHOWN` spares the lock when none is.
static ACTIVE: Mutex<Option<MultiProgress>> = Mutex::new(None);
static SHOWN: AtomicBool = AtomicBool::new(false);

/// Runs `print` (a write to stdout or stderr) with the display, if one is up, taken off the
/// terminal meanwhile. `print` must not print through `above` itself.
pub(crate) fn above<R>(print: impl FnOnce() -> R) -> R {
    if !SHOWN.load(Ordering::Relaxed) {
        return print();
    }
    let multi = ACTIVE.lock().ok().and_then(|active| active.clone());
    match multi {
        Some(multi) => multi.suspend(print),
        None => print(),
    }
}

/// The display, redrawn on a timer until [`Shown::end`].
pub(crate) struct Shown {
    stop: CancellationToken,
    redraw: tokio::task::JoinHandle<Bars>,
}

/// Shows the progress of `tracker` on stderr, terminal or not (the caller decided it is
/// wanted), from now until [`Shown::end`]. Drawn once at once, then every [`REDRAW`].
pub(crate) fn show(tracker: Arc<Tracker>) -> Shown {
    let target = ProgressDrawTarget::term_like(Box::new(console::Term::stderr()));
    let multi = MultiProgress::with_draw_target(target);
    let run = multi.add(ProgressBar::new(0).with_style(run_style()));
    let mut bars = Bars {
        multi: multi.clone(),
        run,
        files: HashMap::new(),
        tracker,
    };
    bars.update();
    if let Ok(mut active) = ACTIVE.lock() {
        *active = Some(multi);
        SHOWN.store(true, Ordering::Relaxed);
    }
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let redraw = tokio::spawn(async move {
        let mut timer = tokio::time::interval(REDRAW);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = timer.tick() => bars.update(),
                _ = stopped.cancelled() => return bars,
            }
        }
    });
    Shown { stop, redraw }
}

impl Shown {
    /// Takes the display off the terminal for good (the summary follows it).
    pub(crate) async fn end(self) {
        self.stop.cancel();
        if let Ok(mut active) = ACTIVE.lock() {
            SHOWN.store(false, Ordering::Relaxed);
            *active = None;
        }
        if let Ok(mut bars) = self.redraw.await {
            bars.update();
            for bar in bars.files.values().chain([&bars.run]) {
                bar.finish_and_clear();
            }
            let _ = bars.multi.clear();
        }
    }
}

/// The bars on the terminal and where their numbers come from.
struct Bars {
    multi: MultiProgress,
    run: ProgressBar,
    /// One per large upload in flight, by path.
    files: HashMap<String, ProgressBar>,
    tracker: Arc<Tracker>,
}

impl Bars {
    /// Redraws from the tracker's counters: the run's line, and a line per large upload in
    /// flight (added as they start, removed as they end).
    fn update(&mut self) {
        let now = self.tracker.snapshot(LARGE_FILE);
        self.run.set_length(now.bytes_total);
        self.run.set_position(now.bytes_done);
        self.run.set_message(run_message(&now));
        self.files.retain(|rel, bar| {
            let going = now.large.iter().any(|f| &f.rel == rel);
            if !going {
                bar.finish_and_clear();
                self.multi.remove(bar);
            }
            going
        });
        for file in &now.large {
            let bar = self.files.entry(file.rel.clone()).or_insert_with(|| {
                let bar = ProgressBar::new(file.size).with_style(file_style());
                bar.set_message(shown_path(&file.rel));
                self.multi.add(bar)
            });
            bar.set_position(file.sent);
        }
    }
}

/// `files 3/10`: the run's line begins with it.
fn run_message(now: &Snapshot) -> String {
    format!("files {}/{}", now.files_done, now.files_total)
}

/// A path for a file's line: its controls escaped, its end kept when long.
fn shown_path(rel: &str) -> String {
    let rel = escape_controls(rel);
    let chars = rel.chars().count();
    if chars <= PATH_CHARS {
        return rel.into_owned();
    }
    let tail: String = rel.chars().skip(chars - (PATH_CHARS - 1)).collect();
    format!("…{tail}")
}

fn run_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{msg} [{wide_bar}] {binary_bytes}/{binary_total_bytes} {percent}% {binary_bytes_per_sec} ETA {eta}",
    )
    .expect("a valid template")
    .progress_chars("=> ")
}

fn file_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "  {msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {percent}%",
    )
    .expect("a valid template")
    .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_path_keeps_its_end_and_a_hostile_one_is_escaped() {
        let long = format!("{}/video.mkv", "a".repeat(60));
        let shown = shown_path(&long);
        assert_eq!(shown.chars().count(), PATH_CHARS);
        assert!(
            shown.starts_with('…') && shown.ends_with("/video.mkv"),
            "{shown}"
        );
        assert_eq!(shown_path("x\x1b[2J"), "x\\x1b[2J");
    }

    #[test]
    fn the_run_line_counts_files() {
        let now = Snapshot {
            files_done: 3,
            files_total: 10,
            ..Snapshot::default()
        };
        assert_eq!(run_message(&now), "files 3/10");
    }
}
