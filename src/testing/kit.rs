//! [`Kit`]: the store under test, what the caller claims for it, and what the running
//! check had to leave out because the store does not support an optional method.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::store::{SessionStore, StoreError, StoreFuture};
use crate::SessionRecord;

/// The store under test, shared by every check.
pub(super) struct Kit<S> {
    pub(super) store: S,
    /// Whether the caller claims atomic `create`, `save_if` and `touch`.
    pub(super) atomic: bool,
    /// The optional methods that answered [`StoreError::Unsupported`], in order met.
    unsupported: Mutex<Vec<&'static str>>,
    /// What the running check left out; taken by the runner after each check.
    left_out: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A check that panicked never holds these locks, but a poisoned list is still valid.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<S: SessionStore> Kit<S> {
    pub(super) fn new(store: S, atomic: bool) -> Self {
        Kit {
            store,
            atomic,
            unsupported: Mutex::default(),
            left_out: Mutex::default(),
        }
    }

    /// `len`, or `None` when the store does not support it.
    pub(super) async fn len(&self) -> Option<usize> {
        self.optional("len", || self.store.len()).await
    }

    /// `all`, or `None` when the store does not support it.
    pub(super) async fn all(&self) -> Option<HashMap<String, SessionRecord>> {
        self.optional("all", || self.store.all()).await
    }

    /// `clear`: whether the store supports it (and so cleared).
    pub(super) async fn clear(&self) -> bool {
        self.optional("clear", || self.store.clear())
            .await
            .is_some()
    }

    /// Calls an optional method, unless it already answered `Unsupported`. Any other
    /// error fails the check.
    async fn optional<'a, T>(
        &'a self,
        op: &'static str,
        call: impl FnOnce() -> StoreFuture<'a, T>,
    ) -> Option<T> {
        if !lock(&self.unsupported).contains(&op) {
            match call().await {
                Ok(value) => return Some(value),
                Err(StoreError::Unsupported(_)) => lock(&self.unsupported).push(op),
                Err(e) => panic!("{op} failed: {e:?}"),
            }
        }
        self.leave_out(format!("`{op}` is unsupported"));
        None
    }

    /// Notes that the running check left `what` unchecked.
    pub(super) fn leave_out(&self, what: String) {
        let mut left_out = lock(&self.left_out);
        if !left_out.contains(&what) {
            left_out.push(what);
        }
    }

    /// What the check that just ran left out, emptied for the next one.
    pub(super) fn take_left_out(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.left_out))
    }

    /// The optional methods the store does not support.
    pub(super) fn unsupported(&self) -> Vec<&'static str> {
        lock(&self.unsupported).clone()
    }

    /// Destroys what a check wrote, so that the next one starts from an empty store.
    pub(super) async fn remove(&self, ids: &[&str]) {
        for id in ids {
            self.store.destroy(id).await.expect("destroy");
        }
    }
}
