//! `--bwlimit`: one token bucket shared by every connection of a run, so that all workers
//! together stay under the rate. File bytes take from it before they go (uploads now, downloads
//! the same way); listings and commands do not, as with rsync and rclone.
//!
//! A taker reserves its bytes and waits until the bucket has refilled enough to cover them: the
//! bucket may go into debt, and takers are served in the order they came, so N workers taking
//! small slices share the rate evenly. The burst is small (a tenth of a second of the rate, at
//! least 64 KiB), so the rate holds over any second, not just on average over the run.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// The smallest burst: below it, a slow limit would cut files into tiny writes.
const MIN_BURST: u64 = 64 << 10;

/// Slices are at least this large (fewer calls at slow rates), at most the larger (8 workers
/// still take turns several times a second at fast ones).
const MIN_SLICE: u64 = 4 << 10;
const MAX_SLICE: u64 = 1 << 20;

/// A rate limit on file bytes, shared (in an `Arc`) by every connection of a run.
#[derive(Debug)]
pub(crate) struct Bandwidth {
    /// Bytes per second.
    rate: u64,
    /// The most that goes at once after a pause.
    burst: u64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Bytes that may go now; negative when takers are waiting for their share.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

impl Bandwidth {
    /// A limit of `rate` bytes per second (at least 1), full: the first burst goes at once.
    pub(crate) fn new(rate: u64) -> Bandwidth {
        let rate = rate.max(1);
        let burst = (rate / 10).max(MIN_BURST);
        Bandwidth {
            rate,
            burst,
            state: Mutex::new(Bucket {
                tokens: burst as f64,
                at: Instant::now(),
            }),
        }
    }

    /// How many bytes one write should take at most: a twentieth of a second of the rate,
    /// within [`MIN_SLICE`] and [`MAX_SLICE`].
    pub(crate) fn slice(&self) -> u64 {
        (self.rate / 20).clamp(MIN_SLICE, MAX_SLICE)
    }

    /// Waits until `n` bytes may go.
    pub(crate) async fn take(&self, n: u64) {
        let wait = self.reserve(n);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// [`Bandwidth::take`] for a blocking thread (a sendfile(2) copy).
    pub(crate) fn take_blocking(&self, n: u64) {
        let wait = self.reserve(n);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }

    /// Returns `n` bytes taken and not sent (the file was shorter than expected).
    pub(crate) fn give_back(&self, n: u64) {
        if n > 0 {
            let mut bucket = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            bucket.tokens = (bucket.tokens + n as f64).min(self.burst as f64);
        }
    }

    /// Takes `n` bytes from the bucket; returns how long until they are covered.
    fn reserve(&self, n: u64) -> Duration {
        let now = Instant::now();
        let mut bucket = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * self.rate as f64;
        bucket.tokens = (bucket.tokens + refill).min(self.burst as f64) - n as f64;
        bucket.at = now;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / self.rate as f64)
        }
    }
}

/// Bytes taken ahead for calls that may move fewer than asked (sendfile(2)): what is taken and
/// not yet moved is moved next, and given back when the allowance is dropped.
#[derive(Debug)]
pub(crate) struct Allowance<'a> {
    limit: &'a Bandwidth,
    /// Taken, not yet moved.
    held: u64,
    /// Bytes still expected (the file's size when its transfer began, less what moved).
    left: u64,
    /// More moved than expected (the file grew): take whole slices from now on.
    grew: bool,
}

impl<'a> Allowance<'a> {
    /// An allowance for `expected` bytes under `limit`.
    pub(crate) fn new(limit: &'a Bandwidth, expected: u64) -> Allowance<'a> {
        Allowance {
            limit,
            held: 0,
            left: expected,
            grew: false,
        }
    }

    /// The limit it takes from.
    pub(crate) fn limit(&self) -> &'a Bandwidth {
        self.limit
    }

    /// How much to take before the next call: nothing while some is held; else a slice, or
    /// what is left of the file if less (one byte at its expected end, to see the end).
    fn due(&self) -> u64 {
        match (self.held, self.left) {
            (0, 0) if self.grew => self.limit.slice(),
            (0, 0) => 1,
            (0, left) => left.min(self.limit.slice()),
            _ => 0,
        }
    }

    /// Waits until the next call may move some bytes; returns how many.
    pub(crate) async fn ready(&mut self) -> usize {
        let due = self.due();
        self.limit.take(due).await;
        self.held += due;
        self.held as usize
    }

    /// [`Allowance::ready`] for a blocking thread.
    pub(crate) fn ready_blocking(&mut self) -> usize {
        let due = self.due();
        self.limit.take_blocking(due);
        self.held += due;
        self.held as usize
    }

    /// `n` bytes moved.
    pub(crate) fn moved(&mut self, n: u64) {
        self.held = self.held.saturating_sub(n);
        self.grew |= n > self.left;
        self.left = self.left.saturating_sub(n);
    }
}

impl Drop for Allowance<'_> {
    fn drop(&mut self) {
        self.limit.give_back(self.held);
    }
}

/// `--bwlimit RATE`: bytes per second, with K, M or G (or KiB, MiB, GiB; any case) for 1024,
/// 1024² or 1024³; `0` or `off` for no limit (returned as 0).
pub(crate) fn parse_rate(text: &str) -> Result<u64, String> {
    let bad = || "not a rate; write it like 500K or 2M (bytes per second; 0 or off: no limit)";
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("off") {
        return Ok(0);
    }
    let digits = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits);
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => return Err(bad().into()),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let bytes = (value * scale as f64).round();
    if !bytes.is_finite() || bytes >= u64::MAX as f64 || (value > 0.0 && bytes < 1.0) {
        return Err(bad().into());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn rates_read_as_people_write_them() {
        for (text, bytes) in [
            ("500K", 500 * 1024),
            ("500k", 500 * 1024),
            ("2M", 2 * MIB),
            ("2MiB", 2 * MIB),
            ("2mib", 2 * MIB),
            ("1.5M", 3 * MIB / 2),
            ("1G", 1024 * MIB),
            ("1GiB", 1024 * MIB),
            ("123456", 123_456),
            ("0", 0),
            ("off", 0),
            ("OFF", 0),
        ] {
            assert_eq!(parse_rate(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn what_is_not_a_rate_is_refused_with_an_example() {
        for text in [
            "2X",
            "",
            "M",
            "fast",
            "2 M B",
            "-1K",
            "1e3",
            "99999999999G",
            "1..2K",
        ] {
            let error = parse_rate(text).expect_err(text);
            assert!(
                error.contains("write it like 500K or 2M"),
                "{text}: {error}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_burst_goes_at_once_and_the_rest_at_the_rate() {
        let limit = Bandwidth::new(2 * MIB);
        let burst = limit.burst;
        let start = Instant::now();
        limit.take(burst).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        limit.take(MIB).await;
        assert_eq!(start.elapsed(), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_saves_up_no_more_than_the_burst() {
        let limit = Bandwidth::new(MIB);
        limit.take(limit.burst).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let start = Instant::now();
        limit.take(limit.burst + MIB).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    /// The figure `--bwlimit` promises: N connections together, not each, stay under the rate.
    #[tokio::test(start_paused = true)]
    async fn eight_takers_together_share_one_rate_evenly() {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;
        let limit = Arc::new(Bandwidth::new(2 * MIB));
        let slices_each = 25;
        let taken: Arc<Vec<AtomicU64>> = Arc::new((0..8).map(|_| AtomicU64::new(0)).collect());
        let start = Instant::now();
        let takers: Vec<_> = (0..8)
            .map(|i| {
                let (limit, taken) = (Arc::clone(&limit), Arc::clone(&taken));
                tokio::spawn(async move {
                    for _ in 0..slices_each {
                        limit.take(limit.slice()).await;
                        taken[i].fetch_add(1, Ordering::Relaxed);
                    }
                    let others: Vec<u64> =
                        taken.iter().map(|t| t.load(Ordering::Relaxed)).collect();
                    (start.elapsed(), others)
                })
            })
            .collect();
        let mut ends = Vec::new();
        for taker in takers {
            ends.push(taker.await.unwrap());
        }
        // About 20 MiB at 2 MiB/s, less the first burst (a tenth of a second).
        let total = 8 * slices_each * limit.slice();
        let expected = Duration::from_secs_f64((total - limit.burst) as f64 / limit.rate as f64);
        let last = ends.iter().map(|(end, _)| *end).max().unwrap();
        assert!(
            last.abs_diff(expected) <= Duration::from_millis(2),
            "done after {last:?}, not {expected:?}"
        );
        // They took turns: when the first was done, the others were nearly done too (the first
        // burst, two slices, went to one of them).
        let (_, at_first_end) = ends.iter().min_by_key(|(end, _)| *end).unwrap();
        assert!(
            at_first_end.iter().all(|&n| n + 3 >= slices_each),
            "slices taken when the first taker was done: {at_first_end:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_given_back_are_taken_again_at_once() {
        let limit = Bandwidth::new(MIB);
        limit.take(limit.burst).await;
        limit.give_back(1000);
        let start = Instant::now();
        limit.take(1000).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn an_allowance_takes_at_most_what_the_file_has_left_and_returns_the_rest() {
        let limit = Bandwidth::new(2 * MIB);
        let slice = limit.slice();
        {
            let mut allowance = Allowance::new(&limit, slice + 10);
            assert_eq!(allowance.ready().await, slice as usize);
            allowance.moved(slice - 100);
            // Part of the slice is still held: the next call sends it without taking more.
            assert_eq!(allowance.ready().await, 100);
            allowance.moved(100);
            assert_eq!(allowance.ready().await, 10, "only what the file has left");
            allowance.moved(4);
            // The file turned out shorter: 6 bytes held when the allowance is dropped.
        }
        let bucket = limit.state.lock().unwrap().tokens;
        let expected = limit.burst as f64 - (slice + 10 - 6) as f64;
        assert!(
            (bucket - expected).abs() < 1.0,
            "{bucket} tokens, not {expected}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_allowance_takes_whole_slices_once_the_file_grew() {
        let limit = Bandwidth::new(2 * MIB);
        let mut allowance = Allowance::new(&limit, 0);
        assert_eq!(allowance.ready().await, 1, "one byte to find the end");
        allowance.moved(1);
        assert_eq!(allowance.ready().await, limit.slice() as usize);
    }
}
