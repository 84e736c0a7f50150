//! [`Shared`]: what the test and every session of one proxy share (the faults and their
//! firings, the commands seen, the connection counts), and which fault a client's command meets
//! ([`Shared::on_command`]).

use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;

use super::{Fault, Listing};

/// State shared by the test thread and every session of one proxy.
pub(super) struct Shared {
    pub(super) faults: Vec<Fault>,
    /// Firings so far, by index in `faults`.
    pub(super) fired: Mutex<Vec<usize>>,
    pub(super) commands: Mutex<Vec<String>>,
    pub(super) followed: Mutex<Vec<String>>,
    /// Client control connections open now, and the most at once.
    pub(super) open: AtomicUsize,
    pub(super) peak: AtomicUsize,
    /// Refuse every new connection, as a server being restarted does.
    pub(super) down: std::sync::atomic::AtomicBool,
    /// Replies held back so far ([`Fault::HoldTransferEnd`]), and their release.
    pub(super) held: (Mutex<usize>, std::sync::Condvar),
    pub(super) release: tokio::sync::Notify,
    /// Transfers begun (150 or 125 replies) through the proxy so far.
    pub(super) transfers: AtomicUsize,
    /// Transfers whose final reply came with the client's next command already waiting.
    pub(super) waiting_at_end: AtomicUsize,
}

/// What to do with one command line from a client.
pub(super) enum Action {
    /// Forward it; for a transfer, with what its data connection does.
    Forward(Plan),
    Reset,
    Stall,
    Reply(String),
    /// Answer a listing command with a listing of the proxy's own.
    Serve(Listing),
}

/// What a data connection does, told once its command is known.
pub(super) enum Plan {
    /// Relays it; for an upload, with the [`Fault::DropUploadAfter`] that may cut it.
    Relay(Option<Cut>),
    /// Relays a listing and resets the client's side after that many lines.
    CutAfter(usize),
    /// Sends the proxy's own listing; `mlsd`: in MLSD format.
    Serve { listing: Listing, mlsd: bool },
}

/// A [`Fault::DropUploadAfter`] armed on one upload.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cut {
    pub(super) fault: usize,
    pub(super) after_bytes: u64,
}

impl Shared {
    /// Takes one firing of fault `index`; false if it has none left.
    pub(super) fn claim(&self, index: usize) -> bool {
        let mut fired = self.fired.lock().unwrap();
        let left = fired[index] < self.faults[index].times();
        if left {
            fired[index] += 1;
        }
        left
    }

    /// Records the command `line` and decides what to do with it.
    pub(super) fn on_command(&self, line: &str) -> Action {
        self.commands.lock().unwrap().push(line.to_string());
        for (index, fault) in self.faults.iter().enumerate() {
            match fault.action(line) {
                Some(action) if self.claim(index) => return action,
                _ => {}
            }
        }
        // An upload is only armed here: the firing is claimed when the cut happens (see
        // `relay_upload`), so an upload too short to be cut does not use one up.
        let upload = matches(line, "STOR", "") || matches(line, "APPE", "");
        let fired = self.fired.lock().unwrap();
        let cut = self
            .faults
            .iter()
            .enumerate()
            .find_map(|(fault, f)| match f {
                Fault::DropUploadAfter {
                    path,
                    after_bytes,
                    times,
                } if upload && argument(line).contains(path.as_str()) && fired[fault] < *times => {
                    let after_bytes = *after_bytes;
                    Some(Cut { fault, after_bytes })
                }
                _ => None,
            });
        Action::Forward(Plan::Relay(cut))
    }

    /// The command `line` as a [`Fault::Rewrite`] forwards it (with its line end), if one does.
    pub(super) fn rewritten(&self, line: &str) -> Option<String> {
        let (index, from, to) = self.faults.iter().enumerate().find_map(|(i, f)| match f {
            Fault::Rewrite { from, to } if argument(line).contains(from.as_str()) => {
                Some((i, from, to))
            }
            _ => None,
        })?;
        self.claim(index);
        Some(format!("{}\r\n", line.replace(from.as_str(), to)))
    }

    /// Whether a [`Fault::ResetAfter`] cuts the connection at the reply to `line` (claiming a
    /// firing).
    pub(super) fn resets_after(&self, line: &str) -> bool {
        self.faults.iter().enumerate().any(|(index, fault)| {
            matches!(fault, Fault::ResetAfter { command, path, .. } if matches(line, command, path))
                && self.claim(index)
        })
    }

    /// The [`Fault::HoldTransferEnd`] that holds the end of the transfer `command`, if any
    /// (claiming a firing).
    pub(super) fn holds_end_of(&self, command: &str) -> bool {
        self.faults.iter().enumerate().any(|(index, fault)| {
            matches!(fault, Fault::HoldTransferEnd { path, .. } if argument(command).contains(path.as_str()))
                && self.claim(index)
        })
    }

    /// The [`Fault::AnswerDuringTransfer`] or [`Fault::SwallowDuringTransfer`] fault (or an
    /// [`Fault::AnswerDuringTransfersAfter`] whose transfers went by), if there is one.
    pub(super) fn answers_during_transfer(&self) -> Option<usize> {
        let begun = self.transfers.load(std::sync::atomic::Ordering::SeqCst);
        self.faults.iter().position(|fault| match fault {
            Fault::AnswerDuringTransfer | Fault::SwallowDuringTransfer => true,
            Fault::AnswerDuringTransfersAfter(after) => begun > *after,
            _ => false,
        })
    }

    /// The index of [`Fault::AnswerProbeFirst`], if set.
    pub(super) fn answers_probe_first(&self) -> Option<usize> {
        self.faults
            .iter()
            .position(|fault| matches!(fault, Fault::AnswerProbeFirst))
    }

    /// The index of [`Fault::AnswerBeforeTransfer`], if set.
    pub(super) fn answers_before_transfer(&self) -> Option<usize> {
        self.faults
            .iter()
            .position(|fault| matches!(fault, Fault::AnswerBeforeTransfer))
    }

    /// The [`Fault::MaxConnections`] that refuses a new connection while `open` are open.
    pub(super) fn refusal(&self, open: usize) -> Option<usize> {
        self.faults
            .iter()
            .position(|fault| matches!(fault, Fault::MaxConnections { max } if open >= *max))
    }
}

impl Fault {
    fn times(&self) -> usize {
        match self {
            Fault::DropUploadAfter { times, .. }
            | Fault::ResetOn { times, .. }
            | Fault::ResetAfter { times, .. }
            | Fault::StallOn { times, .. }
            | Fault::Reply { times, .. } => *times,
            Fault::MaxConnections { .. }
            | Fault::AnswerDuringTransfer
            | Fault::AnswerDuringTransfersAfter(_)
            | Fault::AnswerProbeFirst
            | Fault::AnswerBeforeTransfer
            | Fault::SwallowDuringTransfer
            | Fault::Rewrite { .. } => usize::MAX,
            Fault::HoldTransferEnd { times, .. }
            | Fault::ServeListing { times, .. }
            | Fault::CutListing { times, .. } => *times,
        }
    }

    /// What this fault does to the command `line`, if it targets it (DropUploadAfter and
    /// MaxConnections act elsewhere).
    fn action(&self, line: &str) -> Option<Action> {
        let (command, path, action) = match self {
            Fault::ResetOn { command, path, .. } => (command, path, Action::Reset),
            Fault::StallOn { command, path, .. } => (command, path, Action::Stall),
            Fault::Reply {
                command,
                path,
                reply,
                ..
            } => (command, path, Action::Reply(reply.clone())),
            Fault::ServeListing {
                command,
                path,
                listing,
                ..
            } => (command, path, Action::Serve(*listing)),
            Fault::CutListing {
                command,
                path,
                after_lines,
                ..
            } => (command, path, Action::Forward(Plan::CutAfter(*after_lines))),
            _ => return None,
        };
        let listing_only = matches!(action, Action::Serve(_) | Action::Forward(_));
        let fits = !listing_only || is_listing(line);
        (fits && matches(line, command, path)).then_some(action)
    }
}

/// Whether the command `line` starts with `command` (ignoring case) and its argument contains
/// `path`.
pub(super) fn matches(line: &str, command: &str, path: &str) -> bool {
    let starts = line
        .as_bytes()
        .get(..command.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(command.as_bytes()));
    starts && argument(line).contains(path)
}

/// What follows the command verb on a command line.
fn argument(line: &str) -> &str {
    line.split_once(' ').map_or("", |(_, argument)| argument)
}

/// Whether the command `line` lists a folder over a data connection.
fn is_listing(line: &str) -> bool {
    let verb = line.split(' ').next().unwrap_or_default();
    ["LIST", "NLST", "MLSD"]
        .iter()
        .any(|listing| verb.eq_ignore_ascii_case(listing))
}

/// Whether the command `line` transfers data over the connection opened after PASV/EPSV.
pub(super) fn is_transfer(line: &str) -> bool {
    let verb = line.split(' ').next().unwrap_or_default();
    ["STOR", "APPE", "STOU", "RETR", "LIST", "NLST", "MLSD"]
        .iter()
        .any(|transfer| verb.eq_ignore_ascii_case(transfer))
}
