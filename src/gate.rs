//! [`Gate`]: lines up, within this process, the saves of one session that met a
//! conflict, so that overlapping requests retry one after another instead of colliding
//! again. A save without conflict never enters it. While saves wait in line, the gate
//! remembers the record the last of them wrote, so the next one needs no read.
//!
//! Saves in line are written together (group commit): each puts its changes in line as
//! it arrives, and the save whose turn comes writes every change waiting, in order of
//! arrival, in one conditional write. Those whose changes it wrote find them written
//! when their turn comes, and go at once. N overlapping saves of one session cost a few
//! writes, not N one after another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::delta::Delta;
use crate::record::SessionRecord;
use crate::store::{Loaded, Version};

/// One session's line; what it guards is the record as the last save in line wrote it.
type Lock = Arc<AsyncMutex<Option<Loaded>>>;

/// One session's line: its turn, and the changes waiting to be written.
#[derive(Default)]
struct Line {
    lock: Lock,
    waiting: Vec<Arc<Waiting>>,
}

/// A save's changes in line, and what became of them.
#[derive(Debug)]
pub(crate) struct Waiting {
    pub(crate) delta: Delta,
    done: Mutex<Option<Done>>,
}

/// What the save that wrote a batch did with a change in it.
#[derive(Debug, Clone)]
pub(crate) enum Done {
    /// Written: the record as the batch left it, and its version.
    Saved(Arc<SessionRecord>, Version),
    /// The session was destroyed meanwhile: nothing written.
    Gone,
    /// The batch's write failed: the change is its own save's to write again.
    Failed,
}

/// One async lock per session ID that has a conflicting save in flight.
#[derive(Default)]
pub(crate) struct Gate {
    lines: Mutex<HashMap<Box<str>, Line>>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").finish_non_exhaustive()
    }
}

/// The right to retry a save of one session; the next in line goes when it is dropped.
pub(crate) struct Pass<'a> {
    gate: &'a Gate,
    sid: Box<str>,
    lock: Lock,
    guard: Option<OwnedMutexGuard<Option<Loaded>>>,
    /// This save's own changes in line.
    own: Arc<Waiting>,
    /// Another save of the session held the gate when this one came.
    pub(crate) waited: bool,
}

impl Gate {
    /// Puts `delta` in line and waits for this session's turn.
    pub(crate) async fn enter(&self, sid: &str, delta: Delta) -> Pass<'_> {
        let own = Arc::new(Waiting {
            delta,
            done: Mutex::new(None),
        });
        let lock = {
            let mut lines = self.map();
            let line = lines.entry(sid.into()).or_default();
            line.waiting.push(Arc::clone(&own));
            Arc::clone(&line.lock)
        };
        let (guard, waited) = match Arc::clone(&lock).try_lock_owned() {
            Ok(guard) => (guard, false),
            Err(_) => (Arc::clone(&lock).lock_owned().await, true),
        };
        Pass {
            gate: self,
            sid: sid.into(),
            lock,
            guard: Some(guard),
            own,
            waited,
        }
    }

    /// Whether saves of this session are lined up in the gate right now.
    pub(crate) fn is_busy(&self, sid: &str) -> bool {
        self.map().contains_key(sid)
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Line>> {
        // Every operation leaves the map consistent, so a poisoned lock's data is good.
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Waiting {
    fn finish(&self, done: Done) {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = Some(done);
    }
}

impl Pass<'_> {
    /// What an earlier save in line did with this save's changes: `None` when it has
    /// not written them (or its write failed), so this save writes them now.
    pub(crate) fn done(&self) -> Option<Done> {
        let done = self.own.done.lock().unwrap_or_else(PoisonError::into_inner);
        done.clone().filter(|d| !matches!(d, Done::Failed))
    }

    /// The changes waiting in line, this save's own among them, in order of arrival:
    /// the next write carries them all. Those of saves that gave up waiting are left out.
    pub(crate) fn take_batch(&mut self) -> Vec<Arc<Waiting>> {
        let mut lines = self.gate.map();
        let Some(line) = lines.get_mut(&*self.sid) else {
            return vec![Arc::clone(&self.own)];
        };
        let mut batch = std::mem::take(&mut line.waiting);
        // Its own `Arc` and the save's: a save that was dropped holds none.
        batch.retain(|w| Arc::ptr_eq(w, &self.own) || Arc::strong_count(w) > 1);
        if !batch.iter().any(|w| Arc::ptr_eq(w, &self.own)) {
            batch.push(Arc::clone(&self.own));
        }
        batch
    }

    /// The record as the previous save in line wrote it, if one did (taken: it is only
    /// current until this save writes).
    pub(crate) fn take_last(&mut self) -> Option<Loaded> {
        self.guard.as_mut().and_then(|g| g.take())
    }

    /// This save wrote `last`: the next in line starts from it.
    pub(crate) fn remember(&mut self, last: Loaded) {
        if let Some(g) = self.guard.as_mut() {
            **g = Some(last);
        }
    }
}

/// Tells every save whose changes were in `batch` what became of them.
pub(crate) fn finish(batch: &[Arc<Waiting>], done: &Done) {
    batch.iter().for_each(|w| w.finish(done.clone()));
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut lines = self.gate.map();
        // Only the map and this pass still hold the lock: nobody is waiting for it.
        if Arc::strong_count(&self.lock) == 2 {
            lines.remove(&self.sid);
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    fn delta() -> Delta {
        let cookie = crate::CookieOptions::default().new_cookie(false, 0);
        Delta::new(false, Vec::new(), cookie)
    }

    #[tokio::test]
    async fn entries_go_once_nobody_waits() {
        let gate = Gate::default();
        let mut first = gate.enter("a", delta()).await;
        assert!(!first.waited && gate.is_busy("a") && !gate.is_busy("b"));
        let record =
            crate::SessionRecord::new(crate::CookieOptions::default().new_cookie(false, 0));
        first.remember(Loaded::new(record, crate::store::Version::from_number(7)));
        let mut waiting = Box::pin(gate.enter("a", delta()));
        assert!((&mut waiting).now_or_never().is_none(), "the second waits");
        drop(first);
        let mut second = waiting.await;
        assert!(second.waited && second.done().is_none());
        let last = second.take_last().expect("what the first wrote");
        assert_eq!(last.version.as_number(), Some(7));
        assert_eq!(gate.map().len(), 1);
        drop(second);
        assert!(gate.map().is_empty(), "no entry is left behind");
        assert!(!gate.is_busy("a"));
    }

    #[tokio::test]
    async fn the_save_whose_turn_comes_writes_every_change_in_line() {
        let gate = Gate::default();
        let mut first = gate.enter("a", delta()).await;
        let mut second = Box::pin(gate.enter("a", delta()));
        let mut third = Box::pin(gate.enter("a", delta()));
        let gave_up = Box::pin(gate.enter("a", delta()));
        for waiting in [&mut second, &mut third] {
            assert!(waiting.now_or_never().is_none());
        }
        assert!(gave_up.now_or_never().is_none());
        // The one that gave up is left out; the order of arrival is kept.
        let batch = first.take_batch();
        assert_eq!(batch.len(), 3);
        assert!(Arc::ptr_eq(&batch[0], &first.own));
        let record =
            crate::SessionRecord::new(crate::CookieOptions::default().new_cookie(false, 0));
        let version = crate::store::Version::from_number(3);
        finish(&batch, &Done::Saved(Arc::new(record), version));
        drop(first);
        let second = second.await;
        assert!(matches!(second.done(), Some(Done::Saved(_, v)) if v.as_number() == Some(3)));
        drop(second);
        let mut third = third.await;
        assert!(third.done().is_some());
        // A failed batch leaves each change to its own save, which writes it itself.
        let batch = third.take_batch();
        finish(&batch, &Done::Failed);
        assert!(third.done().is_none());
        drop(third);
        assert!(!gate.is_busy("a"), "no entry is left behind");
    }
}
