//! The store side of a session after it is loaded: saving it by the write policy (a
//! conditional write that merges onto concurrent changes, or express-session's
//! overwrite), `regenerate`, `destroy` and `reload`. No `RefCell` borrow is held across
//! a store call.

use std::rc::Rc;
use std::sync::Arc;

use actix_web::dev::ServiceRequest;
use actix_web::HttpRequest;

use super::reissue::{self, fetch, follow, Found};
use super::state::{Slot, State};
use super::SessionError;
use crate::config::WritePolicy;
use crate::context::Context;
use crate::encoding::now_ms;
use crate::events::SessionEvent;
use crate::gate::{finish, Done, Pass, Waiting};
use crate::record::SessionRecord;
use crate::store::{Loaded, SaveOutcome, Version};

/// Conditional writes a save tries before giving up on a session that keeps changing.
const SAVE_ATTEMPTS: usize = 8;
/// New IDs tried when the store already has the one generated.
const CREATE_ATTEMPTS: usize = 3;

/// What a save found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    Saved,
    /// Saved under the session's new ID: it was reissued meanwhile (its old ID is a
    /// tombstone now), so the new ID's cookie must be sent.
    Moved,
    /// The session was destroyed meanwhile: nothing was written.
    Gone,
}

pub(crate) fn new_id(ctx: &Context, req: &HttpRequest) -> Result<String, SessionError> {
    ctx.config
        .new_id(&ServiceRequest::from_request(req.clone()))
}

/// Saves the session by the write policy.
pub(crate) async fn save(slot: &Slot, req: &HttpRequest) -> Result<Written, SessionError> {
    let ctx = &slot.ctx;
    let mut previous = None;
    let (id, record, version) = {
        let mut guard = slot.state.borrow_mut();
        let st = guard.as_mut().ok_or(SessionError::NotLoaded)?;
        (
            std::mem::take(&mut st.id),
            Arc::clone(&st.record),
            st.version.take(),
        )
    };
    let new = version.is_none();
    let written = match (ctx.config.write_policy, version) {
        (WritePolicy::LastWriterWins, _) => overwrite(ctx, id, record).await,
        (WritePolicy::Merge, None) => create(ctx, req, id, record).await,
        (WritePolicy::Merge, Some(expected)) => {
            merge(slot, id, record, expected, &mut previous).await
        }
    };
    let mut guard = slot.state.borrow_mut();
    let st = guard.as_mut().ok_or(SessionError::NotLoaded)?;
    let moved = previous.is_some();
    if let Some(previous) = previous {
        st.previous_id.get_or_insert(previous);
    }
    match written {
        Ok((id, outcome)) => {
            if new && outcome.is_some() {
                ctx.config.emit(req, SessionEvent::Created { id: &id });
            }
            st.id = id;
            match outcome {
                Some((record, version)) => {
                    st.stored(record, version);
                    Ok(if moved {
                        Written::Moved
                    } else {
                        Written::Saved
                    })
                }
                None => Ok(Written::Gone),
            }
        }
        Err((id, e)) => {
            st.id = id;
            Err(e)
        }
    }
}

/// The ID the session ended up under, and the record and version now stored (`None`:
/// gone); or the ID and the error.
pub(super) type Attempt =
    Result<(String, Option<(Arc<SessionRecord>, Version)>), (String, SessionError)>;

/// express-session's save: the whole record, whatever the store holds.
async fn overwrite(ctx: &Context, id: String, record: Arc<SessionRecord>) -> Attempt {
    match ctx.store.set(&id, &record).await {
        Ok(()) => {
            let version = Version::from_number(0);
            Ok((id, Some((record, version))))
        }
        Err(e) => Err((id, e.into())),
    }
}

/// A new session: written only under an ID no record has; a taken ID gives a new one.
pub(super) async fn create(
    ctx: &Context,
    req: &HttpRequest,
    mut id: String,
    record: Arc<SessionRecord>,
) -> Attempt {
    for _ in 0..CREATE_ATTEMPTS {
        match ctx.store.create(&id, &record).await {
            Ok(Some(version)) => return Ok((id, Some((record, version)))),
            Ok(None) => {
                tracing::warn!("a new session ID was already in the store; trying another");
                id = match new_id(ctx, req) {
                    Ok(fresh) => fresh,
                    Err(e) => return Err((id, e)),
                };
            }
            Err(e) => return Err((id, e.into())),
        }
    }
    tracing::error!("every new session ID tried was already in the store (check `genid`)");
    Err((id, SessionError::Contended))
}

/// A loaded session: written only onto the version it was loaded at; on a conflict
/// this request's changes are re-applied onto the record as it is now, and tried again.
/// A conflict with a tombstone (the session was reissued meanwhile) moves the save to
/// the session's new ID; the ID it left is put in `previous`.
async fn merge(
    slot: &Slot,
    mut id: String,
    mut record: Arc<SessionRecord>,
    mut expected: Version,
    previous: &mut Option<String>,
) -> Attempt {
    let ctx = &slot.ctx;
    // Once saves of this session conflict in this process they go through the gate: each
    // puts its changes in line, and the save whose turn comes writes every change in
    // line at once, onto the record as the previous write left it. A save that finds
    // others already in line joins at once: its loaded version is stale anyway.
    let mut pass: Option<Pass<'_>> = None;
    let mut batch = Vec::new();
    let mut reread = false;
    if ctx.gate.is_busy(&id) {
        match join(ctx, slot, &id).await {
            Ok(Joined::Turn(entered, waiting)) => (pass, batch) = (Some(entered), waiting),
            Ok(Joined::Written(done)) => return written_by_another(slot, id, done),
            Err(e) => return Err((id, e)),
        }
        reread = true;
    }
    for _ in 0..SAVE_ATTEMPTS {
        if reread {
            let found = match current(ctx, pass.as_mut(), &id).await {
                Ok(Some(found)) => found,
                Ok(None) => return gone(&batch, id),
                Err(e) => return failed(&batch, id, e),
            };
            (record, expected) = onto(slot, found, &mut id, &mut pass, &mut batch, previous);
        }
        let carried = match ctx.store.save_if(&id, &record, &expected).await {
            Ok(SaveOutcome::Saved(version)) => {
                if let Some(pass) = pass.as_mut() {
                    pass.remember(Loaded::new(Arc::clone(&record), version.clone()));
                }
                finish(&batch, &Done::Saved(Arc::clone(&record), version.clone()));
                return Ok((id, Some((with_own_cookie(slot, record), version))));
            }
            Ok(SaveOutcome::Gone) => return gone(&batch, id),
            Ok(SaveOutcome::Conflict(current)) => current,
            Err(e) => return failed(&batch, id, e.into()),
        };
        let mut waited = false;
        if pass.is_none() {
            match join(ctx, slot, &id).await {
                Ok(Joined::Turn(entered, waiting)) => {
                    waited = entered.waited;
                    (pass, batch) = (Some(entered), waiting);
                }
                Ok(Joined::Written(done)) => return written_by_another(slot, id, done),
                Err(e) => return Err((id, e)),
            }
        }
        // What the conflict carried is current unless this save waited for its turn.
        match carried {
            Some(current) if !waited => {
                let found = match follow(ctx, current).await {
                    Ok(Some(found)) => found,
                    Ok(None) => return gone(&batch, id),
                    Err(e) => return failed(&batch, id, e),
                };
                (record, expected) = onto(slot, found, &mut id, &mut pass, &mut batch, previous);
                reread = false;
            }
            _ => reread = true,
        }
    }
    tracing::error!("a session save met a concurrent write on each of its attempts");
    failed(&batch, id, SessionError::Contended)
}

/// A save's turn in the gate, with the changes in line it writes; or what an earlier
/// save in line did with its changes.
enum Joined<'a> {
    Turn(Pass<'a>, Vec<Arc<Waiting>>),
    Written(Done),
}

/// Puts this request's changes in line and waits for their turn.
async fn join<'a>(ctx: &'a Context, slot: &Slot, id: &str) -> Result<Joined<'a>, SessionError> {
    let delta = slot.state.borrow().as_ref().map(State::delta);
    let mut pass = ctx
        .gate
        .enter(id, delta.ok_or(SessionError::NotLoaded)?)
        .await;
    if let Some(done) = pass.done() {
        return Ok(Joined::Written(done));
    }
    let batch = pass.take_batch();
    Ok(Joined::Turn(pass, batch))
}

/// This request's changes were written by another save in line (or found the session
/// gone).
fn written_by_another(slot: &Slot, id: String, done: Done) -> Attempt {
    match done {
        Done::Saved(record, version) => Ok((id, Some((with_own_cookie(slot, record), version)))),
        Done::Gone | Done::Failed => Ok((id, None)),
    }
}

/// `record` as this request holds it after the save: what was stored, with this
/// request's own cookie (a batch stores the cookie of its last change).
fn with_own_cookie(slot: &Slot, record: Arc<SessionRecord>) -> Arc<SessionRecord> {
    let state = slot.state.borrow();
    match state.as_ref() {
        Some(st) if st.record.cookie != record.cookie => Arc::new(SessionRecord {
            cookie: st.record.cookie.clone(),
            data: record.data.clone(),
        }),
        _ => record,
    }
}

/// The session is gone: nothing written, for this save and every change in its batch.
fn gone(batch: &[Arc<Waiting>], id: String) -> Attempt {
    finish(batch, &Done::Gone);
    Ok((id, None))
}

/// The write failed: the other changes in the batch are their own saves' again.
fn failed(batch: &[Arc<Waiting>], id: String, e: SessionError) -> Attempt {
    finish(batch, &Done::Failed);
    Err((id, e))
}

/// The record as it is now: as the previous save in line wrote it, or read again.
async fn current(
    ctx: &Context,
    pass: Option<&mut Pass<'_>>,
    id: &str,
) -> Result<Option<Found>, SessionError> {
    match pass.and_then(Pass::take_last) {
        Some(last) => Ok(Some(Found::at(last))),
        None => fetch(ctx, id).await,
    }
}

/// The record and version to save next: the changes in `batch` (or, outside the gate,
/// this request's) applied onto `found`. When `found` is under the session's new ID (a
/// tombstone was followed), the save moves there alone: it leaves the old ID's line in
/// the gate, and the other changes in its batch to their own saves.
fn onto(
    slot: &Slot,
    found: Found,
    id: &mut String,
    pass: &mut Option<Pass<'_>>,
    batch: &mut Vec<Arc<Waiting>>,
    previous: &mut Option<String>,
) -> (Arc<SessionRecord>, Version) {
    if let Some(to) = found.moved_to {
        let left = std::mem::replace(id, to);
        previous.get_or_insert(left);
        finish(batch, &Done::Failed);
        batch.clear();
        *pass = None;
    }
    let current = &found.loaded.record;
    let record = match batch.split_first() {
        None => rebase(slot, current),
        Some((first, rest)) => {
            let first = first.delta.apply(current);
            rest.iter().fold(first, |record, w| w.delta.apply(&record))
        }
    };
    (Arc::new(record), found.loaded.version)
}

fn rebase(slot: &Slot, current: &SessionRecord) -> SessionRecord {
    match slot.state.borrow().as_ref() {
        Some(st) => st.rebase(current),
        None => current.clone(),
    }
}

/// Starts a new session under a new ID (against session fixation). With
/// [`WritePolicy::Merge`] the new record is stored before the old one is destroyed, so
/// that the session is never missing for an overlapping request.
pub(crate) async fn regenerate(slot: &Slot, req: &HttpRequest) -> Result<(), SessionError> {
    let ctx: &Rc<Context> = &slot.ctx;
    let old = Place::of(slot)?;
    let record = ctx
        .config
        .new_record(slot.cookie.as_ref(), old.secure_connection, now_ms());
    let fresh = Arc::new(record);
    let (id, version) = match ctx.config.write_policy {
        WritePolicy::LastWriterWins => (new_id(ctx, req)?, None),
        WritePolicy::Merge => {
            let (id, stored) = create(ctx, req, new_id(ctx, req)?, Arc::clone(&fresh))
                .await
                .map_err(|(_, e)| e)?;
            (id, stored.map(|(_, version)| version))
        }
    };
    // A `genid` may hand out the same ID again: that one is the new session now.
    let destroyed = if old.id == id {
        Ok(())
    } else {
        let previous = old.previous.as_deref().filter(|p| *p != id);
        reissue::destroy(ctx, &old.id, previous, old.may_have_moved).await
    };
    let created = version.is_some();
    {
        let mut guard = slot.state.borrow_mut();
        let st = guard.as_mut().ok_or(SessionError::NotLoaded)?;
        st.regenerate_as(id.clone(), fresh, version);
    }
    destroyed?;
    if created {
        ctx.config.emit(req, SessionEvent::Created { id: &id });
    }
    let (from, to) = (&old.id, &id);
    ctx.config.emit(req, SessionEvent::Regenerated { from, to });
    Ok(())
}

/// Destroys the session in the store, under every ID that leads to it.
pub(crate) async fn destroy(slot: &Slot, req: &HttpRequest) -> Result<(), SessionError> {
    let place = Place::of(slot)?;
    let previous = place.previous.as_deref();
    reissue::destroy(&slot.ctx, &place.id, previous, place.may_have_moved).await?;
    let config = &slot.ctx.config;
    if let Some(st) = slot.state.borrow().as_ref() {
        let (id, record) = (&place.id, &st.record);
        config.emit(req, SessionEvent::Destroyed { id, record });
    }
    Ok(())
}

/// Re-reads the session (following a tombstone: the session may have been reissued
/// since this request loaded it) and takes the stored record as this request's.
pub(crate) async fn reload(slot: &Slot) -> Result<(), SessionError> {
    let id = Place::of(slot)?.id;
    let found = fetch(&slot.ctx, &id).await?.ok_or(SessionError::NotFound)?;
    let mut guard = slot.state.borrow_mut();
    let st = guard.as_mut().ok_or(SessionError::NotLoaded)?;
    if let Some(to) = found.moved_to {
        st.moved_to(to);
    }
    st.replace(found.loaded);
    Ok(())
}

/// Where the session is in the store, as this request knows it.
struct Place {
    id: String,
    /// The ID this request moved the session from (now a tombstone).
    previous: Option<String>,
    /// Its ID was due for reissue: another request may have moved it since this one
    /// loaded it.
    may_have_moved: bool,
    secure_connection: bool,
}

impl Place {
    fn of(slot: &Slot) -> Result<Self, SessionError> {
        let guard = slot.state.borrow();
        let st = guard.as_ref().ok_or(SessionError::NotLoaded)?;
        Ok(Place {
            id: st.id.clone(),
            previous: st.previous_id.clone(),
            may_have_moved: slot.ctx.config.reissue_due(&st.record, now_ms()),
            secure_connection: st.secure_connection,
        })
    }
}
