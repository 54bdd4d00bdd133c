//! Turns to run one kind of statement (loads, creates) on one thread's connections of a
//! store: at most a few at once; the operations that find every turn taken gather
//! behind the first of them, to run in its statement when a turn comes free (see
//! `batch.rs`).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use super::{NewRow, Row};
use crate::store::StoreError;

/// One thread's turns of one store's loads and creates.
pub(super) struct Gathers {
    /// Loads: a session ID, its live row.
    pub(super) loads: Arc<Gather<String, Option<Row>>>,
    /// Creates: the new row, whether it was written.
    pub(super) creates: Arc<Gather<NewRow, bool>>,
}

impl Gathers {
    /// Each kind `limit` statements at once.
    pub(super) fn new(limit: usize) -> Self {
        Gathers {
            loads: Gather::new(limit),
            creates: Gather::new(limit),
        }
    }
}

/// What an operation that went with another's statement is told: its answer, or the
/// statement's error.
pub(super) type Reply<A> = Result<A, Arc<StoreError>>;

/// An operation (`I`, what it asks) that goes with another's statement, and where its
/// answer goes.
pub(super) struct Follower<I, A> {
    pub(super) item: I,
    pub(super) reply: oneshot::Sender<Reply<A>>,
}

/// One thread's turns of one kind of statement, of one store.
pub(super) struct Gather<I, A> {
    /// Statements that may run at once.
    limit: usize,
    state: Mutex<State<I, A>>,
}

struct State<I, A> {
    /// Turns taken: statements running, or about to.
    running: usize,
    /// While every turn is taken: the first operation to wait, and those behind it.
    gathered: Option<Gathering<I, A>>,
}

struct Gathering<I, A> {
    /// The first operation's turn: `None` once it was handed over.
    turn: Option<oneshot::Sender<()>>,
    followers: Vec<Follower<I, A>>,
}

/// How an operation gets its turn.
pub(super) enum Turn<I, A> {
    /// A turn is free: the operation runs alone, holding it.
    Run(Running<I, A>),
    /// Another operation waits for a turn: this one goes with its statement.
    Follow(oneshot::Receiver<Reply<A>>),
    /// Every turn is taken: this operation waits for the next, and runs the ones that
    /// arrive meanwhile with its own.
    Lead(Leader<I, A>),
}

impl<I, A> Gather<I, A> {
    /// Turns for at most `limit` statements at once (at least one).
    pub(super) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Gather {
            limit: limit.max(1),
            state: Mutex::new(State {
                running: 0,
                gathered: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<I, A>> {
        // Nothing panics while holding it; a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An operation's turn; `item` says what it asks, should it go with another's.
    pub(super) fn turn(self: &Arc<Self>, item: impl FnOnce() -> I) -> Turn<I, A> {
        let mut state = self.lock();
        if let Some(gathering) = state.gathered.as_mut() {
            let (reply, rx) = oneshot::channel();
            gathering.followers.push(Follower {
                item: item(),
                reply,
            });
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
            gather: Arc::clone(self),
            turn: rx,
            gathering: true,
        })
    }

    /// A turn comes free: it goes to the operation waiting, if any.
    fn pass(&self) {
        let mut state = self.lock();
        let next = state.gathered.as_mut().and_then(|g| g.turn.take());
        if next.is_none_or(|turn| turn.send(()).is_err()) {
            state.running = state.running.saturating_sub(1);
        }
    }
}

/// A statement's turn, given on when dropped.
pub(super) struct Running<I, A>(Arc<Gather<I, A>>);

impl<I, A> Drop for Running<I, A> {
    fn drop(&mut self) {
        self.0.pass();
    }
}

/// The first operation to find every turn taken: it waits for the next, gathering
/// others.
pub(super) struct Leader<I, A> {
    gather: Arc<Gather<I, A>>,
    turn: oneshot::Receiver<()>,
    /// Until it has its turn and has taken the operations gathered.
    gathering: bool,
}

impl<I, A> Leader<I, A> {
    /// Waits for a turn; the operations gathered meanwhile are then this one's to run.
    pub(super) async fn turn(mut self) -> (Running<I, A>, Vec<Follower<I, A>>) {
        let handed = (&mut self.turn).await.is_ok();
        self.gathering = false;
        let mut state = self.gather.lock();
        if !handed {
            // Unreachable (only `Drop` below drops the sender unsent): a turn of its own.
            state.running += 1;
        }
        let gathered = state.gathered.take();
        drop(state);
        let followers = gathered.map(|g| g.followers).unwrap_or_default();
        (Running(Arc::clone(&self.gather)), followers)
    }
}

impl<I, A> Drop for Leader<I, A> {
    /// Dropped before its turn (timeout, client gone): the operations it gathered are
    /// let go, each to run alone, and a turn handed to it meanwhile goes back.
    fn drop(&mut self) {
        if !self.gathering {
            return;
        }
        let gone = {
            let mut state = self.gather.lock();
            let gone = state.gathered.take();
            if self.turn.try_recv().is_ok() {
                state.running = state.running.saturating_sub(1);
            }
            gone
        };
        drop(gone);
    }
}
