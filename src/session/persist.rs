//! The store side of a session: loading it on first use, and saving it by the write
//! policy (a conditional write that merges onto concurrent changes, or express-session's
//! overwrite). No `RefCell` borrow is held across a store call.

use std::rc::Rc;
use std::sync::Arc;

use actix_web::dev::ServiceRequest;
use actix_web::HttpRequest;

use super::state::{Slot, State};
use super::SessionError;
use crate::config::WritePolicy;
use crate::context::Context;
use crate::encoding::now_ms;
use crate::gate::Pass;
use crate::record::{SessionRecord, CREATED_AT_KEY};
use crate::store::{Loaded, SaveOutcome, StoreError, Version};

/// Conditional writes a save tries before giving up on a session that keeps changing.
const SAVE_ATTEMPTS: usize = 8;
/// New IDs tried when the store already has the one generated.
const CREATE_ATTEMPTS: usize = 3;

/// What a save found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    Saved,
    /// The session was destroyed meanwhile: nothing was written.
    Gone,
}

/// Loads the session if this request has not yet: the signed cookie's ID from the store,
/// or a new session.
pub(crate) async fn ensure_loaded(slot: &Slot, req: &HttpRequest) -> Result<(), SessionError> {
    if slot.state.borrow().is_some() {
        return Ok(());
    }
    let ctx = &slot.ctx;
    let cookie_id = ctx.config.read_session_id(req.headers());
    let had_cookie = cookie_id.is_some();
    let loaded = match cookie_id {
        Some((id, resign)) => fetch(ctx, &id).await?.map(|l| {
            let mut state = State::loaded(id, l);
            state.resign = resign;
            state
        }),
        None => None,
    };
    let secure_connection = ctx.config.is_secure(req);
    let mut state = match loaded {
        Some(state) => state,
        None => {
            let record = ctx.config.new_record(secure_connection, now_ms());
            State::new(new_id(ctx, req)?, record)
        }
    };
    if ctx.config.absolute_timeout_ms.is_some() && state.record.created_at_ms().is_none() {
        // A session from before the option (or from a Node app): its lifetime starts now.
        state.insert(CREATED_AT_KEY.to_owned(), now_ms().into());
    }
    state.had_cookie = had_cookie;
    state.secure_connection = secure_connection;
    let mut slot_state = slot.state.borrow_mut();
    // Another extractor of this request may have loaded it meanwhile: keep the first.
    if slot_state.is_none() {
        *slot_state = Some(state);
    }
    Ok(())
}

/// The stored session under a cookie's ID. A record that no longer parses is no
/// session: a new one under a new ID, never the client's. Nor is one whose cookie has
/// expired, whatever the store says (a store without TTLs, clock skew, a third-party
/// store): it is destroyed.
async fn fetch(ctx: &Context, id: &str) -> Result<Option<Loaded>, SessionError> {
    let loaded = match ctx.store.load(id).await {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return Ok(None),
        Err(StoreError::Serialization(e)) => {
            tracing::warn!(error = %e, "unreadable session record; starting a new session");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    if ctx.config.is_expired(&loaded.record, now_ms()) {
        tracing::debug!("the store returned an expired session; destroying it");
        ctx.store.destroy(id).await?;
        return Ok(None);
    }
    Ok(Some(loaded))
}

pub(crate) fn new_id(ctx: &Context, req: &HttpRequest) -> Result<String, SessionError> {
    ctx.config
        .new_id(&ServiceRequest::from_request(req.clone()))
}

/// Saves the session by the write policy.
pub(crate) async fn save(slot: &Slot, req: &HttpRequest) -> Result<Written, SessionError> {
    let ctx = &slot.ctx;
    let (id, record, version) = {
        let mut guard = slot.state.borrow_mut();
        let st = guard.as_mut().ok_or(SessionError::NotLoaded)?;
        (
            std::mem::take(&mut st.id),
            Arc::clone(&st.record),
            st.version.take(),
        )
    };
    let written = match (ctx.config.write_policy, version) {
        (WritePolicy::LastWriterWins, _) => overwrite(ctx, id, record).await,
        (WritePolicy::Merge, None) => create(ctx, req, id, record).await,
        (WritePolicy::Merge, Some(expected)) => merge(slot, id, record, expected).await,
    };
    let mut guard = slot.state.borrow_mut();
    let st = guard.as_mut().ok_or(SessionError::NotLoaded)?;
    match written {
        Ok((id, outcome)) => {
            st.id = id;
            if let Some((record, version)) = outcome {
                st.stored(record, version);
                return Ok(Written::Saved);
            }
            Ok(Written::Gone)
        }
        Err((id, e)) => {
            st.id = id;
            Err(e)
        }
    }
}

/// The ID the session ended up under, and the record and version now stored (`None`:
/// gone); or the ID and the error.
type Attempt = Result<(String, Option<(Arc<SessionRecord>, Version)>), (String, SessionError)>;

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
async fn create(
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
async fn merge(
    slot: &Slot,
    id: String,
    mut record: Arc<SessionRecord>,
    mut expected: Version,
) -> Attempt {
    let ctx = &slot.ctx;
    // Once saves of this session conflict in this process they go one at a time (the
    // gate), each onto the record as the previous one left it. A save that finds others
    // already in line joins at once: its loaded version is stale anyway.
    let mut pass: Option<Pass<'_>> = None;
    let mut reread = false;
    if ctx.gate.is_busy(&id) {
        pass = Some(ctx.gate.enter(&id).await);
        reread = true;
    }
    for _ in 0..SAVE_ATTEMPTS {
        if reread {
            let current = match current(ctx, pass.as_mut(), &id).await {
                Ok(Some(current)) => current,
                Ok(None) => return Ok((id, None)),
                Err(e) => return Err((id, e)),
            };
            record = Arc::new(rebase(slot, &current.record));
            expected = current.version;
        }
        let carried = match ctx.store.save_if(&id, &record, &expected).await {
            Ok(SaveOutcome::Saved(version)) => {
                if let Some(pass) = pass.as_mut() {
                    pass.remember(Loaded::new(Arc::clone(&record), version.clone()));
                }
                return Ok((id, Some((record, version))));
            }
            Ok(SaveOutcome::Gone) => return Ok((id, None)),
            Ok(SaveOutcome::Conflict(current)) => current,
            Err(e) => return Err((id, e.into())),
        };
        let mut waited = false;
        if pass.is_none() {
            let entered = ctx.gate.enter(&id).await;
            waited = entered.waited;
            pass = Some(entered);
        }
        // What the conflict carried is current unless this save waited for its turn.
        match carried {
            Some(current) if !waited => {
                record = Arc::new(rebase(slot, &current.record));
                expected = current.version;
                reread = false;
            }
            _ => reread = true,
        }
    }
    tracing::error!("a session save met a concurrent write on each of its attempts");
    Err((id, SessionError::Contended))
}

/// The record as it is now: as the previous save in line wrote it, or read again.
async fn current(
    ctx: &Context,
    pass: Option<&mut Pass<'_>>,
    id: &str,
) -> Result<Option<Loaded>, SessionError> {
    match pass.and_then(Pass::take_last) {
        Some(last) => Ok(Some(last)),
        None => fetch(ctx, id).await,
    }
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
    let (old_id, secure) = {
        let guard = slot.state.borrow();
        let st = guard.as_ref().ok_or(SessionError::NotLoaded)?;
        (st.id.clone(), st.secure_connection)
    };
    let fresh = Arc::new(ctx.config.new_record(secure, now_ms()));
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
    let destroyed = if old_id == id {
        Ok(())
    } else {
        ctx.store.destroy(&old_id).await
    };
    let mut guard = slot.state.borrow_mut();
    let st = guard.as_mut().ok_or(SessionError::NotLoaded)?;
    st.regenerate_as(id, fresh, version);
    destroyed.map_err(SessionError::Store)
}
