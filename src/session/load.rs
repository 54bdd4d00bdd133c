//! Loading a session on first use: the signed cookie's ID from the store (a tombstone
//! there followed to the session's new ID), moved to a new ID when `reissue_after` says
//! its ID is due, or else a new session. No `RefCell` borrow is held across a store call.

use std::sync::Arc;
use std::time::SystemTime;

use actix_web::HttpRequest;

use super::persist::{create, new_id};
use super::reissue::{self, fetch, Found};
use super::state::{Slot, State};
use super::SessionError;
use crate::config::Reissue;
use crate::context::Context;
use crate::encoding::now_ms;
use crate::events::SessionEvent;
use crate::observe::{self, Event};
use crate::record::{SessionRecord, CREATED_AT_KEY, ISSUED_AT_KEY};
use crate::store::Loaded;

/// Loads the session if this request has not yet: the signed cookie's ID from the store,
/// or a new session.
pub(crate) async fn ensure_loaded(slot: &Slot, req: &HttpRequest) -> Result<(), SessionError> {
    if slot.state.borrow().is_some() {
        return Ok(());
    }
    let ctx = &slot.ctx;
    let cookie_id = {
        let mut verified = ctx.verified.borrow_mut();
        ctx.config.read_session_id(req.headers(), &mut verified)
    };
    let had_cookie = cookie_id.is_some();
    let secure_connection = ctx.config.is_secure(req);
    let loaded = match cookie_id {
        Some((id, resign)) => load(ctx, req, id, secure_connection)
            .await?
            .map(|mut state| {
                state.resign = resign;
                state
            }),
        None => None,
    };
    let mut state = match loaded {
        Some(state) => state,
        None => {
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

/// The session under the cookie's ID: as stored, under the new ID its tombstone names,
/// or moved to a new ID now when its ID is due for reissue.
async fn load(
    ctx: &Context,
    req: &HttpRequest,
    id: String,
    secure_connection: bool,
) -> Result<Option<State>, SessionError> {
    let Some(found) = fetch(ctx, &id).await? else {
        observe::count(Event::Expired);
        ctx.config.emit(req, SessionEvent::Expired { id: &id });
        return Ok(None);
    };
    let found = match ctx.config.reissue {
        // Not when the new cookie could not be sent (the old one would die with the
        // grace), nor again for a session a tombstone led to.
        Some(policy)
            if found.moved_to.is_none()
                && policy.due(&found.loaded.record, now_ms())
                && (secure_connection || !found.loaded.record.cookie.secure()) =>
        {
            // Boxed: every load's future would otherwise carry this rare path's.
            Box::pin(reissue(ctx, req, policy, &id, found.loaded)).await?
        }
        _ => Some(found),
    };
    Ok(found.map(|found| found.into_state(id)))
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
