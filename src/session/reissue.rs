//! The store side of periodic ID reissue (`reissue_after`): reading a session with the
//! tombstone under its old ID followed (one hop), turning an old ID into a tombstone, and
//! destroying a session together with the tombstone in front of it.

use std::sync::Arc;

use super::state::State;
use super::SessionError;
use crate::config::Reissue;
use crate::context::Context;
use crate::encoding::now_ms;
use crate::store::{Loaded, SaveOutcome, StoreError};

/// A live session the store has, and the ID it lives under when that is not the one
/// asked for (a tombstone there was followed).
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) loaded: Loaded,
    pub(crate) moved_to: Option<String>,
}

impl Found {
    /// The session found under the ID asked for.
    pub(crate) fn at(loaded: Loaded) -> Self {
        Found {
            loaded,
            moved_to: None,
        }
    }

    /// This request's state for the session, which the cookie knew as `id`.
    pub(crate) fn into_state(self, id: String) -> State {
        let mut state = State::loaded(id, self.loaded);
        if let Some(to) = self.moved_to {
            state.moved_to(to);
        }
        state
    }
}

/// The stored session under a cookie's ID, or under the new ID its tombstone names.
pub(crate) async fn fetch(ctx: &Context, id: &str) -> Result<Option<Found>, SessionError> {
    let loaded = readable(ctx.store.load(id).await)?;
    resolve(ctx, id, loaded).await
}

/// The session the store's record under `id` stands for: none when it is expired (it
/// is destroyed), the session its tombstone names, or the record itself.
pub(crate) async fn resolve(
    ctx: &Context,
    id: &str,
    loaded: Option<Loaded>,
) -> Result<Option<Found>, SessionError> {
    match live(ctx, id, loaded).await? {
        Some(loaded) => follow(ctx, loaded).await,
        None => Ok(None),
    }
}

/// The record under a cookie's ID when the store has it at hand
/// ([`SessionStore::load_now`]); `None` when the store has to be asked.
///
/// [`SessionStore::load_now`]: crate::store::SessionStore::load_now
pub(crate) fn load_now(ctx: &Context, id: &str) -> Option<Result<Option<Loaded>, SessionError>> {
    Some(readable(ctx.store.load_now(id)?))
}

/// Whether a record from [`load_now`] is the session itself: not a tombstone (to
/// follow) nor expired (to destroy), which [`resolve`] does.
pub(crate) fn is_plain(ctx: &Context, loaded: &Loaded) -> bool {
    !loaded.record.is_tombstone() && !ctx.config.is_expired(&loaded.record)
}

/// The record under `id`. A record that no longer parses is no session: a new one
/// under a new ID, never the client's. Nor is one whose cookie has expired, whatever the
/// store says (a store without TTLs, clock skew, a third-party store): it is destroyed.
async fn load_live(ctx: &Context, id: &str) -> Result<Option<Loaded>, SessionError> {
    let loaded = readable(ctx.store.load(id).await)?;
    live(ctx, id, loaded).await
}

/// `loaded` unless its cookie has expired: then it is destroyed.
async fn live(
    ctx: &Context,
    id: &str,
    loaded: Option<Loaded>,
) -> Result<Option<Loaded>, SessionError> {
    let Some(loaded) = loaded else {
        return Ok(None);
    };
    if ctx.config.is_expired(&loaded.record) {
        tracing::debug!("the store returned an expired session; destroying it");
        Box::pin(ctx.store.destroy(id)).await?;
        return Ok(None);
    }
    Ok(Some(loaded))
}

/// A load's answer, with a record that no longer parses counted as none.
fn readable(answer: Result<Option<Loaded>, StoreError>) -> Result<Option<Loaded>, SessionError> {
    match answer {
        Err(StoreError::Serialization(e)) => {
            tracing::warn!(error = %e, "unreadable session record; starting a new session");
            Ok(None)
        }
        other => Ok(other?),
    }
}

/// `loaded` itself, or for a tombstone the session it names, with its own expiry
/// checked. One hop only: a tombstone that names another leads nowhere, and a tombstone
/// is never served as a session.
pub(crate) async fn follow(ctx: &Context, loaded: Loaded) -> Result<Option<Found>, SessionError> {
    if !loaded.record.is_tombstone() {
        return Ok(Some(Found::at(loaded)));
    }
    if ctx.config.is_expired(&loaded.record) {
        return Ok(None);
    }
    let Some(to) = loaded.record.reissued_to() else {
        return Ok(None);
    };
    let to = to.to_owned();
    // Boxed: the common case (no tombstone) keeps a second load's future out of its own.
    match Box::pin(load_live(ctx, &to)).await? {
        Some(target) if !target.record.is_tombstone() => Ok(Some(Found {
            loaded: target,
            moved_to: Some(to),
        })),
        _ => Ok(None),
    }
}

/// Turns `old_id`, as loaded (`loaded`), into a tombstone naming `new_id`, where the
/// session was just stored (`created`). If the old record changed or went meanwhile,
/// the new one is destroyed and the session is what the store has under the old ID now
/// (possibly another request's tombstone, followed): the move is tried again on a later
/// request. A failed write is an error and leaves the new record: the tombstone may have
/// landed and lead to it.
pub(crate) async fn retire(
    ctx: &Context,
    policy: Reissue,
    old_id: &str,
    loaded: &Loaded,
    new_id: String,
    created: Loaded,
) -> Result<Option<Found>, SessionError> {
    let tombstone = Arc::new(policy.tombstone(&loaded.record.cookie, &new_id, now_ms()));
    let outcome = ctx
        .store
        .save_if(old_id, &tombstone, &loaded.version)
        .await?;
    if let SaveOutcome::Saved(_) = outcome {
        return Ok(Some(Found {
            loaded: created,
            moved_to: Some(new_id),
        }));
    }
    ctx.store.destroy(&new_id).await?;
    tracing::debug!("a session changed while its ID was being reissued; keeping the old ID");
    match outcome {
        SaveOutcome::Conflict(Some(current)) => follow(ctx, current).await,
        SaveOutcome::Conflict(None) => fetch(ctx, old_id).await,
        SaveOutcome::Saved(_) | SaveOutcome::Gone => Ok(None),
    }
}

/// Destroys the session under `id`, and what leads to it: `previous`, the tombstone this
/// request moved it from; and, when another request may have moved it since this one
/// loaded it (`may_have_moved`: its ID was due for reissue), the new ID that a tombstone
/// now under `id` names. A logout then ends the session under every ID.
pub(crate) async fn destroy(
    ctx: &Context,
    id: &str,
    previous: Option<&str>,
    may_have_moved: bool,
) -> Result<(), SessionError> {
    if may_have_moved {
        let moved_to = match ctx.store.load(id).await {
            Ok(found) => found.and_then(|l| l.record.reissued_to().map(str::to_owned)),
            Err(StoreError::Serialization(_)) => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(to) = moved_to.filter(|to| to != id) {
            ctx.store.destroy(&to).await?;
        }
    }
    ctx.store.destroy(id).await?;
    if let Some(previous) = previous {
        ctx.store.destroy(previous).await?;
    }
    Ok(())
}
