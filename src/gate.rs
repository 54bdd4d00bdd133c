//! [`Gate`]: lines up, within this process, the saves of one session that met a
//! conflict, so that overlapping requests retry one after another instead of colliding
//! again. A save without conflict never enters it. While saves wait in line, the gate
//! remembers the record the last of them wrote, so the next one needs no read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::store::Loaded;

/// One session's line; what it guards is the record as the last save in line wrote it.
type Lock = Arc<AsyncMutex<Option<Loaded>>>;

/// One async lock per session ID that has a conflicting save in flight.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    locks: Mutex<HashMap<Box<str>, Lock>>,
}

/// The right to retry a save of one session; the next in line goes when it is dropped.
pub(crate) struct Pass<'a> {
    gate: &'a Gate,
    sid: Box<str>,
    lock: Lock,
    guard: Option<OwnedMutexGuard<Option<Loaded>>>,
    /// Another save of the session held the gate when this one came.
    pub(crate) waited: bool,
}

impl Gate {
    /// Waits for this session's turn.
    pub(crate) async fn enter(&self, sid: &str) -> Pass<'_> {
        let lock = Arc::clone(self.map().entry(sid.into()).or_default());
        let (guard, waited) = match Arc::clone(&lock).try_lock_owned() {
            Ok(guard) => (guard, false),
            Err(_) => (Arc::clone(&lock).lock_owned().await, true),
        };
        Pass {
            gate: self,
            sid: sid.into(),
            lock,
            guard: Some(guard),
            waited,
        }
    }

    /// Whether saves of this session are lined up in the gate right now.
    pub(crate) fn is_busy(&self, sid: &str) -> bool {
        self.map().contains_key(sid)
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Lock>> {
        // Every operation leaves the map consistent, so a poisoned lock's data is good.
        self.locks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Pass<'_> {
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

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.gate.map();
        // Only the map and this pass still hold the lock: nobody is waiting for it.
        if Arc::strong_count(&self.lock) == 2 {
            map.remove(&self.sid);
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn entries_go_once_nobody_waits() {
        let gate = Gate::default();
        let first = gate.enter("a").await;
        let mut first = first;
        assert!(!first.waited && gate.is_busy("a") && !gate.is_busy("b"));
        let record =
            crate::SessionRecord::new(crate::CookieOptions::default().new_cookie(false, 0));
        first.remember(Loaded::new(record, crate::store::Version::from_number(7)));
        let mut waiting = Box::pin(gate.enter("a"));
        assert!((&mut waiting).now_or_never().is_none(), "the second waits");
        drop(first);
        let mut second = waiting.await;
        assert!(second.waited);
        let last = second.take_last().expect("what the first wrote");
        assert_eq!(last.version.as_number(), Some(7));
        assert_eq!(gate.map().len(), 1);
        drop(second);
        assert!(gate.map().is_empty(), "no entry is left behind");
        assert!(!gate.is_busy("a"));
    }
}
