//! What the workers learn about the server during a run, shared by all of them: how it lists,
//! whether it takes pipelined commands and checks sent during a transfer, how it sets file
//! times, whether it ran out of space, and whether it refuses `SITE CHMOD`. Each starts as the hopeful guess and only ever moves
//! towards the safe one (a time setter, once found, stays).

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Mutex;

use crate::ftp::chain::{Early, Signs};
use crate::ftp::{StatForMlsd, TimeSetter};

/// Transfers a server must have left a NOOP alone during (answering it after the 226) before
/// uploads' checks are sent during transfers.
const EARLY_PROBES: u8 = 10;
/// `early_checks` once the server answered a command during a transfer.
const EARLY_OFF: u8 = u8::MAX;

/// How this server sets file times, as far as the run found out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeSetting {
    /// Not found out yet: the first uploads try the candidates one at a time.
    Unknown,
    /// With this command.
    By(TimeSetter),
    /// It cannot: the record of uploads stands in for remote times.
    Impossible,
}

impl TimeSetting {
    /// The command to set times with, if one is known to work.
    pub(crate) fn setter(self) -> Option<TimeSetter> {
        match self {
            TimeSetting::By(how) => Some(how),
            TimeSetting::Unknown | TimeSetting::Impossible => None,
        }
    }
}

/// What the workers learnt about the server (see the module header).
#[derive(Debug)]
pub(crate) struct ServerQuirks {
    /// Folders may be listed with `STAT -a` (cleared when a listing is too large for it).
    stat_listing: AtomicBool,
    /// Whether `STAT -a` listings may stand in for MLSD on this server.
    stat_for_mlsd: Mutex<StatForMlsd>,
    /// Commands may be pipelined to this server (cleared when it mishandles them).
    pipelining: AtomicBool,
    /// Whether an upload's checks may be sent before its 226 (see [`crate::ftp::chain`]): the
    /// probes this server passed so far, on from [`EARLY_PROBES`], [`EARLY_OFF`] once it
    /// answered a command sent during a transfer.
    early_checks: AtomicU8,
    /// Set once the server said it is out of space: no upload starts after that.
    storage_full: AtomicBool,
    time_setting: Mutex<TimeSetting>,
    /// Set once the server refused a `SITE CHMOD`: no more are sent.
    chmod_refused: AtomicBool,
}

impl Default for ServerQuirks {
    fn default() -> Self {
        ServerQuirks {
            stat_listing: AtomicBool::new(true),
            stat_for_mlsd: Mutex::new(StatForMlsd::Unknown),
            pipelining: AtomicBool::new(true),
            early_checks: AtomicU8::new(0),
            storage_full: AtomicBool::new(false),
            time_setting: Mutex::new(TimeSetting::Unknown),
            chmod_refused: AtomicBool::new(false),
        }
    }
}

impl ServerQuirks {
    /// Whether folders may be listed with `STAT -a`.
    pub(crate) fn stat_listing(&self) -> bool {
        self.stat_listing.load(Ordering::Relaxed)
    }

    /// A listing was too large for a STAT reply: list over data connections from now on.
    pub(crate) fn stop_stat_listing(&self) {
        self.stat_listing.store(false, Ordering::Relaxed);
    }

    /// Whether `STAT -a` listings may stand in for MLSD.
    pub(crate) fn stat_for_mlsd(&self) -> StatForMlsd {
        *self.stat_for_mlsd.lock().expect("stat verdict lock")
    }

    /// Records what a folder listed both ways said about STAT listings on an MLSD server: one
    /// disagreement is enough to keep MLSD for the whole run.
    pub(crate) fn judge_stat_listings(&self, agreed: bool) {
        let mut verdict = self.stat_for_mlsd.lock().expect("stat verdict lock");
        let next = match (*verdict, agreed) {
            (StatForMlsd::Unknown, true) => StatForMlsd::Trusted,
            (_, false) => StatForMlsd::Refused,
            (same, true) => same,
        };
        if next != *verdict {
            match next {
                StatForMlsd::Trusted => tracing::debug!(
                    "STAT listings tell the same as MLSD on this server: listing over the control connection"
                ),
                _ => tracing::debug!("STAT listings differ from MLSD on this server: listing with MLSD"),
            }
            *verdict = next;
        }
    }

    /// Whether commands may be pipelined to this server.
    pub(crate) fn pipelining(&self) -> bool {
        self.pipelining.load(Ordering::Relaxed)
    }

    /// The server mishandles pipelined commands: one at a time from now on.
    pub(crate) fn stop_pipelining(&self) {
        self.pipelining.store(false, Ordering::Relaxed);
    }

    /// Whether the server said it is out of space.
    pub(crate) fn storage_full(&self) -> bool {
        self.storage_full.load(Ordering::Relaxed)
    }

    /// The server said it is out of space: no upload starts after this.
    pub(crate) fn set_storage_full(&self) {
        self.storage_full.store(true, Ordering::Relaxed);
    }

    /// How the next upload's checks travel.
    pub(crate) fn early(&self) -> Early {
        match self.early_checks.load(Ordering::Relaxed) {
            EARLY_OFF => Early::Off,
            passed if passed >= EARLY_PROBES => Early::On,
            _ => Early::Probe,
        }
    }

    /// What a chain call showed about sending checks before the 226 to this server.
    pub(crate) fn learn_early_checks(&self, signs: &Signs) {
        let early = &self.early_checks;
        if signs.early_refused {
            if early.swap(EARLY_OFF, Ordering::Relaxed) != EARLY_OFF {
                tracing::debug!(
                    "the server reads commands during transfers: each upload is checked after its 226, each download waits for the one before it"
                );
            }
        } else if signs.probe_passed {
            let passed = early.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                // Lazily: n is EARLY_OFF (u8::MAX) once another connection turned them off.
                (n < EARLY_PROBES).then(|| n + 1)
            });
            if passed == Ok(EARLY_PROBES - 1) {
                tracing::debug!("the server leaves commands sent during a transfer for after it: uploads' checks travel before the 226, downloads behind the transfer before them");
            }
        }
    }

    /// How this server sets file times, as far as found out.
    pub(crate) fn time_setting(&self) -> TimeSetting {
        *self.time_setting.lock().expect("time setter lock")
    }

    /// What an upload found out about setting times.
    pub(crate) fn set_time_setting(&self, setting: TimeSetting) {
        *self.time_setting.lock().expect("time setter lock") = setting;
    }

    /// Whether the server refused a `SITE CHMOD`.
    pub(crate) fn chmod_refused(&self) -> bool {
        self.chmod_refused.load(Ordering::Relaxed)
    }

    /// The server refused a `SITE CHMOD`: true for the first refusal only (the one reported).
    pub(crate) fn refuse_chmod(&self) -> bool {
        !self.chmod_refused.swap(true, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signs(early_refused: bool, probe_passed: bool) -> Signs {
        Signs {
            early_refused,
            probe_passed,
            out_of_step: false,
        }
    }

    #[test]
    fn a_probe_passing_after_another_connection_turned_early_checks_off_leaves_them_off() {
        // With several connections, one may see the server answer during a transfer while
        // another's probe, whose transfer ended first, still passes.
        let quirks = ServerQuirks::default();
        quirks.learn_early_checks(&signs(false, true));
        quirks.learn_early_checks(&signs(true, false));
        quirks.learn_early_checks(&signs(false, true));
        assert_eq!(quirks.early(), Early::Off);
    }

    #[test]
    fn ten_probes_passed_turn_early_checks_on() {
        let quirks = ServerQuirks::default();
        for _ in 1..EARLY_PROBES {
            quirks.learn_early_checks(&signs(false, true));
        }
        assert_eq!(quirks.early(), Early::Probe);
        quirks.learn_early_checks(&signs(false, true));
        quirks.learn_early_checks(&signs(false, true));
        assert_eq!(quirks.early(), Early::On);
    }
}
