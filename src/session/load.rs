//! Loading a session on first use: the signed cookie's ID from the store (a tombstone
//! there followed to the session's new ID), moved to a new ID when `reissue_after` says
//! its ID is due, or else a new session. No `RefCell` borrow is held across a store call.

use std::sync::Arc;
use std::time::SystemTime;

use actix_web::HttpRequest;

use super::persist::{create, new_id};
use super::reissue::{self, fetch, resolve, Found};
use super::state::{Slot, State};
use super::SessionError;
use crate::config::Reissue;
use crate::context::Context;
use crate::encoding::now_ms;
use crate::events::SessionEvent;
use crate::observe::{self, Event};
use crate::record::{SessionRecord, CREATED_AT_KEY, ISSUED_AT_KEY};
use crate::store::Loaded;

/// What a request knows before it asks the store: the signed cookie's ID (and whether
/// to re-sign it), whether the connection is secure, and the store's record for the ID
/// when it had it at hand but the session needs more than a plain load.
#[derive(Debug)]
pub(crate) struct Start {
    cookie_id: Option<(String, bool)>,
    secure_connection: bool,
    at_hand: Option<Loaded>,
}

/// How far [`begin`] got without waiting.
pub(crate) enum Begun {
    /// The session is loaded (or failed to).
    Done(Result<(), SessionError>),
    /// The store has to be asked: [`complete`] does.
    Waiting(Start),
}

/// Loads the session if this request has not yet: the signed cookie's ID from the store,
/// or a new session.
pub(crate) async fn ensure_loaded(slot: &Slot, req: &HttpRequest) -> Result<(), SessionError> {
    match begin(slot, req) {
        Begun::Done(result) => result,
        Begun::Waiting(start) => complete(slot, req, start).await,
    }
}

/// Loads the session as far as it can without waiting: all the way when the request
/// has no valid cookie (a new session) or the store has the record at hand
/// ([`SessionStore::load_now`]).
///
/// [`SessionStore::load_now`]: crate::store::SessionStore::load_now
pub(crate) fn begin(slot: &Slot, req: &HttpRequest) -> Begun {
    if slot.state.borrow().is_some() {
        return Begun::Done(Ok(()));
    }
    let ctx = &slot.ctx;
    let cookie_id = {
        let mut verified = ctx.verified.borrow_mut();
        ctx.config.read_session_id(req.headers(), &mut verified)
    };
    let mut start = Start {
        cookie_id,
        secure_connection: ctx.config.is_secure(req),
        at_hand: None,
    };
    let found = match &start.cookie_id {
        Some((id, _)) => match load_now(ctx, req, id, start.secure_connection) {
            Now::Found(found) => found,
            Now::Failed(e) => return Begun::Done(Err(e)),
            Now::Later(at_hand) => {
                start.at_hand = at_hand;
                return Begun::Waiting(start);
            }
        },
        None => None,
    };
    Begun::Done(settle(slot, req, start, found))
}

/// Finishes what [`begin`] left waiting on the store.
pub(crate) async fn complete(
    slot: &Slot,
    req: &HttpRequest,
    mut start: Start,
) -> Result<(), SessionError> {
    let at_hand = start.at_hand.take();
    let found = match &start.cookie_id {
        Some((id, _)) => load(&slot.ctx, req, id, start.secure_connection, at_hand).await?,
        None => None,
    };
    settle(slot, req, start, found)
}

/// This request's session from what the store had (`found`), or a new one, put in the
/// slot.
fn settle(
    slot: &Slot,
    req: &HttpRequest,
    start: Start,
    found: Option<Found>,
) -> Result<(), SessionError> {
    let ctx = &slot.ctx;
    let Start {
        cookie_id,
        secure_connection,
        ..
    } = start;
    let had_cookie = cookie_id.is_some();
    let mut state = match (found, cookie_id) {
        (Some(found), Some((id, resign))) => {
            let mut state = found.into_state(id);
            state.resign = resign;
            state
        }
        _ => {
            let record = ctx
                .config
                .new_record(slot.cookie.as_ref(), secure_connection, now_ms());
            State::new(new_id(ctx, req)?, record)
        }
    };
    // A session from before an option (or from a Node app): its clock starts now.
    if ctx.config.absolute_timeout_ms.is_some() && state.record.created_at_ms().is_none() {
        state.insert(CREATED_AT_KEY.to_owned(), now_ms().into());
    }
    if ctx.config.reissue.is_some() && state.record.issued_at_ms().is_none() {
        state.insert(ISSUED_AT_KEY.to_owned(), now_ms().into());
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

/// What [`load_now`] got without waiting.
enum Now {
    /// The session, or none under the cookie's ID.
    Found(Option<Found>),
    Failed(SessionError),
    /// [`load`] has to finish: the store has to be asked, or its record (kept here) is
    /// expired, a tombstone or due for a new ID.
    Later(Option<Loaded>),
}

/// [`load`] when the store has the record at hand and it is the session as it is.
fn load_now(ctx: &Context, req: &HttpRequest, id: &str, secure_connection: bool) -> Now {
    match reissue::load_now(ctx, id) {
        None => Now::Later(None),
        Some(Err(e)) => Now::Failed(e),
        Some(Ok(None)) => {
            missing(ctx, req, id);
            Now::Found(None)
        }
        Some(Ok(Some(loaded))) => {
            let found = Found::at(loaded);
            if reissue::is_plain(ctx, &found.loaded)
                && reissue_policy(ctx, &found, secure_connection).is_none()
            {
                Now::Found(Some(found))
            } else {
                Now::Later(Some(found.loaded))
            }
        }
    }
}

/// The session under the cookie's ID: as stored, under the new ID its tombstone names,
/// or moved to a new ID now when its ID is due for reissue. `at_hand` is the store's
/// record when [`load_now`] already has it.
async fn load(
    ctx: &Context,
    req: &HttpRequest,
    id: &str,
    secure_connection: bool,
    at_hand: Option<Loaded>,
) -> Result<Option<Found>, SessionError> {
    let found = match at_hand {
        Some(loaded) => resolve(ctx, id, Some(loaded)).await?,
        None => fetch(ctx, id).await?,
    };
    let Some(found) = found else {
        missing(ctx, req, id);
        return Ok(None);
    };
    match reissue_policy(ctx, &found, secure_connection) {
        // Boxed: every load's future would otherwise carry this rare path's.
        Some(policy) => Box::pin(reissue(ctx, req, policy, id, found.loaded)).await,
        None => Ok(Some(found)),
    }
}

/// The cookie's session is not in the store (expired, or never was).
fn missing(ctx: &Context, req: &HttpRequest, id: &str) {
    observe::count(Event::Expired);
    ctx.config.emit(req, SessionEvent::Expired { id });
}

/// The reissue policy, when `found`'s ID is due for a new one now. Not when the new
/// cookie could not be sent (the old one would die with the grace), nor again for a
/// session a tombstone led to.
fn reissue_policy(ctx: &Context, found: &Found, secure_connection: bool) -> Option<Reissue> {
    let policy = ctx.config.reissue?;
    let record = &found.loaded.record;
    let due = found.moved_to.is_none()
        && policy.due(record, now_ms())
        && (secure_connection || !record.cookie.secure());
    due.then_some(policy)
}

/// Moves a session to a new ID: the session (same data and cookie, a new issue time) is
/// stored under the new ID first, then the old ID's record becomes a tombstone naming it,
/// so an overlapping request always finds one or the other.
async fn reissue(
    ctx: &Context,
    req: &HttpRequest,
    policy: Reissue,
    id: &str,
    loaded: Loaded,
) -> Result<Option<Found>, SessionError> {
    let fresh = new_id(ctx, req)?;
    if fresh == id {
        // A `genid` that hands out the same ID again: nothing to move to.
        return Ok(Some(Found::at(loaded)));
    }
    let now = now_ms();
    let mut record = SessionRecord::clone(&loaded.record);
    record.data.insert(ISSUED_AT_KEY.to_owned(), now.into());
    record.cookie.reset_expiry(now);
    let (new_id, stored) = create(ctx, req, fresh, Arc::new(record))
        .await
        .map_err(|(_, e)| e)?;
    let Some((record, version)) = stored else {
        return Ok(Some(Found::at(loaded)));
    };
    let created = Loaded {
        record,
        version,
        extended_at: Some(SystemTime::now()),
    };
    reissue::retire(ctx, policy, id, &loaded, new_id, created).await
}
