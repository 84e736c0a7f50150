//! The scheduler: the plan's dependency bookkeeping. An action is released once every action it
//! waits for has succeeded; released actions wait in a high-priority queue (folder creation,
//! deletions that make room) or a largest-first heap (uploads, folder removals), from which the
//! coordinator feeds the workers' channels. A failure settles everything that depended on it.

use std::collections::{BinaryHeap, VecDeque};

use crate::engine::plan::{Op, Phase, Plan};

/// Dependency bookkeeping for the plan's actions.
pub(crate) struct Schedule<'a> {
    plan: &'a Plan,
    waiting_on: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    settled: Vec<bool>,
    pub(crate) high: VecDeque<usize>,
    /// Uploads (largest first) and folder removals.
    pub(crate) low: BinaryHeap<(u64, std::cmp::Reverse<usize>)>,
    pub(crate) transfers_left: usize,
    pub(crate) transfer_failures: usize,
}

impl<'a> Schedule<'a> {
    pub(crate) fn new(plan: &'a Plan) -> Self {
        let n = plan.actions.len();
        let mut s = Schedule {
            plan,
            waiting_on: plan.actions.iter().map(|a| a.after.len()).collect(),
            dependents: vec![Vec::new(); n],
            settled: vec![false; n],
            high: VecDeque::new(),
            low: BinaryHeap::new(),
            transfers_left: plan
                .actions
                .iter()
                .filter(|a| a.phase == Phase::Transfer)
                .count(),
            transfer_failures: 0,
        };
        for (i, action) in plan.actions.iter().enumerate() {
            for &dep in &action.after {
                s.dependents[dep].push(i);
            }
        }
        s.release_phase(Phase::Transfer);
        s
    }

    pub(crate) fn release_phase(&mut self, phase: Phase) {
        for i in 0..self.plan.actions.len() {
            if self.plan.actions[i].phase == phase && self.waiting_on[i] == 0 {
                self.make_ready(i);
            }
        }
    }

    pub(crate) fn make_ready(&mut self, i: usize) {
        match &self.plan.actions[i].op {
            Op::Upload { size, .. } => self.low.push((*size, std::cmp::Reverse(i))),
            Op::RemoveDir(_) if self.plan.actions[i].phase == Phase::Delete => {
                self.low.push((0, std::cmp::Reverse(i)))
            }
            _ => self.high.push_back(i),
        }
    }

    pub(crate) fn pop_low(&mut self) -> Option<usize> {
        self.low.pop().map(|(_, std::cmp::Reverse(i))| i)
    }

    pub(crate) fn settle(&mut self, i: usize) {
        self.settled[i] = true;
        if self.plan.actions[i].phase == Phase::Transfer {
            self.transfers_left -= 1;
        }
    }

    pub(crate) fn succeeded(&mut self, i: usize) {
        self.settle(i);
        for j in self.dependents[i].clone() {
            self.waiting_on[j] -= 1;
            let phase_open =
                self.plan.actions[j].phase == Phase::Transfer || self.transfers_left == 0;
            if self.waiting_on[j] == 0 && phase_open {
                self.make_ready(j);
            }
        }
    }

    /// Marks `i` failed; returns the actions that can no longer run because of it.
    pub(crate) fn failed(&mut self, i: usize) -> Vec<usize> {
        self.settle(i);
        if self.plan.actions[i].phase == Phase::Transfer {
            self.transfer_failures += 1;
        }
        let mut blocked = Vec::new();
        let mut stack = self.dependents[i].clone();
        while let Some(j) = stack.pop() {
            if self.settled[j] {
                continue;
            }
            self.settle(j);
            if self.plan.actions[j].phase == Phase::Transfer {
                self.transfer_failures += 1;
            }
            blocked.push(j);
            stack.extend(self.dependents[j].iter().copied());
        }
        blocked
    }

    /// Takes every ready upload out of the queue, settled as failed; returns them.
    pub(crate) fn drain_uploads(&mut self) -> Vec<usize> {
        let (uploads, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.low)
            .into_iter()
            .partition(|(_, std::cmp::Reverse(i))| {
                matches!(self.plan.actions[*i].op, Op::Upload { .. })
            });
        self.low = rest.into_iter().collect();
        let mut failed = Vec::new();
        for (_, std::cmp::Reverse(i)) in uploads {
            failed.push(i);
            failed.extend(self.failed(i));
        }
        failed
    }

    /// An action that did not run because of a stop.
    pub(crate) fn abandon(&mut self, i: usize) {
        self.settle(i);
    }

    /// Settles every action of `phase` without running it; returns how many.
    pub(crate) fn skip_phase(&mut self, phase: Phase) -> usize {
        let skip: Vec<usize> = (0..self.plan.actions.len())
            .filter(|&i| self.plan.actions[i].phase == phase && !self.settled[i])
            .collect();
        for &i in &skip {
            self.settle(i);
        }
        self.high.retain(|i| !skip.contains(i));
        skip.len()
    }

    /// Actions not settled yet.
    pub(crate) fn remaining(&mut self) -> Vec<usize> {
        let left: Vec<usize> = (0..self.plan.actions.len())
            .filter(|&i| !self.settled[i])
            .collect();
        for &i in &left {
            self.settle(i);
        }
        self.high.clear();
        self.low.clear();
        left
    }
}
