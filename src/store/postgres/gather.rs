//! Turns to run a load statement, on one thread's connections of a store: at most a
//! few at once, and the loads that find them all taken gather behind the first of them,
//! to run in its statement when a turn comes free (see `batch.rs`).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use super::Row;
use crate::store::StoreError;

/// What a load that went with another's statement is told: the live row, or the
/// statement's error.
pub(super) type Reply = Result<Option<Row>, Arc<StoreError>>;

/// A load that goes with another's statement: its session ID, and where its row goes.
pub(super) struct Follower {
    pub(super) sid: String,
    pub(super) reply: oneshot::Sender<Reply>,
}

/// One thread's load turns of one store.
pub(super) struct Loads {
    /// Load statements that may run at once.
    limit: usize,
    state: Mutex<State>,
}

struct State {
    /// Turns taken: statements running, or about to.
    running: usize,
    /// While every turn is taken: the first load to wait, and those behind it.
    gathered: Option<Gathering>,
}

struct Gathering {
    /// The first load's turn: `None` once it was handed over.
    turn: Option<oneshot::Sender<()>>,
    followers: Vec<Follower>,
}

/// How a load gets its turn.
pub(super) enum Turn {
    /// A turn is free: the load runs alone, holding it.
    Run(Running),
    /// Another load waits for a turn: this one goes with its statement.
    Follow(oneshot::Receiver<Reply>),
    /// Every turn is taken: this load waits for the next, and runs the loads that
    /// arrive meanwhile with its own.
    Lead(Leader),
}

impl Loads {
    /// Turns for at most `limit` load statements at once (at least one).
    pub(super) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Loads {
            limit: limit.max(1),
            state: Mutex::new(State {
                running: 0,
                gathered: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The turn of a load of `sid`.
    pub(super) fn turn(self: &Arc<Self>, sid: &str) -> Turn {
        let mut state = self.lock();
        if let Some(gathering) = state.gathered.as_mut() {
            let (reply, rx) = oneshot::channel();
            let sid = sid.to_owned();
            gathering.followers.push(Follower { sid, reply });
            return Turn::Follow(rx);
        }
        if state.running < self.limit {
            state.running += 1;
            return Turn::Run(Running(Arc::clone(self)));
        }
        let (turn, rx) = oneshot::channel();
        state.gathered = Some(Gathering {
            turn: Some(turn),
            followers: Vec::new(),
        });
        Turn::Lead(Leader {
            loads: Arc::clone(self),
            turn: rx,
            gathering: true,
        })
    }

    /// A turn comes free: it goes to the load waiting, if any.
    fn pass(&self) {
        let mut state = self.lock();
        let next = state.gathered.as_mut().and_then(|g| g.turn.take());
        if next.is_none_or(|turn| turn.send(()).is_err()) {
            state.running = state.running.saturating_sub(1);
        }
    }
}

/// A load statement's turn, given on when dropped.
pub(super) struct Running(Arc<Loads>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.pass();
    }
}

/// The first load to find every turn taken: it waits for the next, gathering others.
pub(super) struct Leader {
    loads: Arc<Loads>,
    turn: oneshot::Receiver<()>,
    /// Until it has its turn and has taken the loads gathered.
    gathering: bool,
}

impl Leader {
    /// Waits for a turn; the loads gathered meanwhile are then this one's to run.
    pub(super) async fn turn(mut self) -> (Running, Vec<Follower>) {
        let handed = (&mut self.turn).await.is_ok();
        self.gathering = false;
        let mut state = self.loads.lock();
        if !handed {
            // Unreachable (only `Drop` below drops the sender unsent): a turn of its own.
            state.running += 1;
        }
        let gathered = state.gathered.take();
        drop(state);
        let followers = gathered.map(|g| g.followers).unwrap_or_default();
        (Running(Arc::clone(&self.loads)), followers)
    }
}

impl Drop for Leader {
    /// Dropped before its turn (timeout, client gone): the loads it gathered are let go,
    /// each to run alone, and a turn handed to it meanwhile goes back.
    fn drop(&mut self) {
        if !self.gathering {
            return;
        }
        let gone = {
            let mut state = self.loads.lock();
            let gone = state.gathered.take();
            if self.turn.try_recv().is_ok() {
                state.running = state.running.saturating_sub(1);
            }
            gone
        };
        drop(gone);
    }
}
