//! The request/response lifecycle: load the session, run the handler, then save, touch,
//! destroy and send the cookie by express-session's rules (`rules::decide`).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{
    HeaderMap, HeaderValue, CACHE_CONTROL, CLEAR_SITE_DATA, SET_COOKIE, VARY,
};
use actix_web::{Error, HttpMessage, HttpRequest, HttpResponse};
use futures_util::future::{ready, LocalBoxFuture, Ready};

use crate::config::{Config, Load, SessionMiddleware};
use crate::context::Context;
use crate::encoding::now_ms;
use crate::outage::OutagePolicy;
use crate::rules::{decide, Outcome, Status};
use crate::session::load::{self, Begun};
use crate::session::persist::{self, Written};
use crate::session::{SessionError, Slot, Slots, State};
use crate::store::SessionStore;
use crate::watched::chain;

impl<S, B, St> Transform<S, ServiceRequest> for SessionMiddleware<St>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
    St: SessionStore,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = SessionMiddlewareService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let ctx = Context {
            config: Arc::clone(&self.config),
            store: Arc::clone(&self.store),
            gate: Arc::clone(&self.gate),
            verified: RefCell::default(),
        };
        ready(Ok(SessionMiddlewareService {
            service: Rc::new(service),
            ctx: Rc::new(ctx),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around an application.
#[doc(hidden)]
pub struct SessionMiddlewareService<S> {
    service: Rc<S>,
    ctx: Rc<Context>,
}

impl<S> std::fmt::Debug for SessionMiddlewareService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddlewareService")
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for SessionMiddlewareService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let ctx = Rc::clone(&self.ctx);
        Box::pin(async move {
            let cookie = match ctx.config.cookie_for(&req) {
                Ok(cookie) => cookie,
                Err(e) => return Ok(failure(&ctx.config, req.into_parts().0, &e)),
            };
            // Outside cookie.path, or already handled by an outer SessionMiddleware of
            // the same cookie name.
            if !ctx.config.in_scope(&req, cookie.as_ref()) || handled(&req, &ctx.config.name) {
                return service
                    .call(req)
                    .await
                    .map(ServiceResponse::map_into_left_body);
            }
            let slot = Rc::new(Slot {
                ctx: Rc::clone(&ctx),
                state: RefCell::new(None),
                cookie,
            });
            if ctx.config.load == Load::Eager {
                let loaded = match load::begin(&slot, req.request()) {
                    Begun::Done(result) => result,
                    // Boxed: the rare path's future stays out of every request's.
                    Begun::Waiting(start) => {
                        Box::pin(load::complete(&slot, req.request(), start)).await
                    }
                };
                if let Err(e) = loaded {
                    return Ok(failure(&ctx.config, req.into_parts().0, &e));
                }
            }
            add_slot(&req, Rc::clone(&slot));
            let res = service.call(req).await?;
            Ok(finish(&slot, res).await)
        })
    }
}

/// Puts this middleware's slot on the request, after those of outer ones.
fn add_slot(req: &ServiceRequest, slot: Rc<Slot>) {
    let mut extensions = req.extensions_mut();
    match extensions.get_mut::<Slots>() {
        Some(slots) => slots.push(slot),
        None => {
            extensions.insert(Slots::new(slot));
        }
    }
}

/// Whether a session middleware for cookie `name` already handles the request.
fn handled(req: &ServiceRequest, name: &str) -> bool {
    req.extensions()
        .get::<Slots>()
        .is_some_and(|slots| slots.named(name).is_some())
}

/// Decides, runs the store operation and adds the cookie; a store failure replaces the
/// response by the outage policy. A session the request never used costs nothing.
async fn finish<B>(slot: &Slot, res: ServiceResponse<B>) -> ServiceResponse<EitherBody<B>> {
    let config = &slot.ctx.config;
    if let Some(replacement) = store_failure(config, &res) {
        return ServiceResponse::new(res.into_parts().0, replacement).map_into_right_body();
    }
    let mut outcome = match slot.state.borrow_mut().as_mut() {
        Some(st) => plan(config, st),
        None => return res.map_into_left_body(),
    };
    if outcome.destroy || outcome.save || outcome.touch {
        // Boxed: a request that only reads keeps the store call's large future out
        // of its own.
        if let Err(e) = Box::pin(store(slot, &mut outcome, res.request())).await {
            return failure(config, res.into_parts().0, &e);
        }
    }
    let header = match slot.state.borrow().as_ref() {
        Some(st) => cookie_header(config, st, outcome),
        None => None,
    };
    let mut res = res.map_into_left_body();
    let sent = header.is_some();
    if let Some(value) = header {
        res.headers_mut().append(SET_COOKIE, value);
    }
    if config.cache_headers {
        mark_private(res.headers_mut(), sent);
    }
    if sent && outcome.remove_cookie && config.clear_site_data {
        let value = HeaderValue::from_static("\"cookies\"");
        res.headers_mut().insert(CLEAR_SITE_DATA, value);
    }
    res
}

/// Keeps a response that depends on the session out of shared caches: `Cookie` in
/// `Vary` always, and `Cache-Control: private, no-store` when it carries the session's
/// `Set-Cookie` (`cookie_sent`) and the handler chose no `Cache-Control` of its own.
fn mark_private(headers: &mut HeaderMap, cookie_sent: bool) {
    if cookie_sent && !headers.contains_key(CACHE_CONTROL) {
        let value = HeaderValue::from_static("private, no-store");
        headers.insert(CACHE_CONTROL, value);
    }
    // One map operation when the handler set no `Vary`, as most do.
    let previous = headers.insert(VARY, HeaderValue::from_static("Cookie"));
    let previous: Vec<HeaderValue> = previous.collect();
    if previous.is_empty() {
        return;
    }
    match vary_with_cookie(&previous) {
        Some(joined) => {
            headers.insert(VARY, joined);
        }
        None => {
            // Already listed: the handler's lines stay as they were.
            headers.remove(VARY);
            for value in previous {
                headers.append(VARY, value);
            }
        }
    }
}

/// The `Vary` lines with `Cookie` added, joined into one, or `None` when they already
/// list `Cookie` or `*`.
fn vary_with_cookie(lines: &[HeaderValue]) -> Option<HeaderValue> {
    let mut joined = Vec::new();
    for value in lines {
        let listed = value.as_bytes().split(|&b| b == b',').any(|field| {
            let field = field.trim_ascii();
            field == b"*" || field.eq_ignore_ascii_case(b"cookie")
        });
        if listed {
            return None;
        }
        if !value.as_bytes().trim_ascii().is_empty() {
            joined.extend_from_slice(value.as_bytes().trim_ascii());
            joined.extend_from_slice(b", ");
        }
    }
    joined.extend_from_slice(b"Cookie");
    HeaderValue::from_bytes(&joined).ok()
}

/// Decides by express-session's rules, skips a touch that is not due yet, and renews
/// the cookie's expiry when it will be stored or sent.
fn plan(config: &Config, st: &mut State) -> Outcome {
    let mut outcome = decide(config.rules, st.facts());
    if outcome.withheld {
        tracing::warn!("a Secure session cookie was not sent over a plain-HTTP connection");
    }
    let now = now_ms();
    // A session due for a new ID may have been moved by an overlapping request since this
    // one loaded it: a touch would extend its tombstone's life. The next request moves it.
    if outcome.touch && (!touch_due(config, st, now) || config.reissue_due(&st.record, now)) {
        outcome.touch = false;
    }
    if st.status == Status::Active && (outcome.save || outcome.touch || outcome.set_cookie) {
        st.record_mut().cookie.reset_expiry(now);
    }
    outcome
}

/// Whether the store's expiry should be extended now: always when the store did not
/// say when it last did, else once `touch_after` (capped at half the cookie's max age)
/// has passed since.
fn touch_due(config: &Config, st: &State, now: i64) -> bool {
    let Some(extended_at) = st.extended_at_ms else {
        return true;
    };
    let half_life = st
        .record
        .cookie
        .original_max_age_ms()
        .map_or(i64::MAX, |ms| ms / 2);
    now.saturating_sub(extended_at) >= config.touch_after_ms.min(half_life)
}

/// Runs the store operation the outcome calls for. A save that finds the session
/// destroyed meanwhile writes nothing and sends no cookie; one that finds it moved to a
/// new ID (reissued) saves there and sends that cookie.
async fn store(slot: &Slot, outcome: &mut Outcome, req: &HttpRequest) -> Result<(), SessionError> {
    let store = &slot.ctx.store;
    if outcome.destroy {
        persist::destroy(slot, req).await?;
    } else if outcome.save {
        match persist::save(slot, req).await? {
            Written::Saved => {}
            Written::Moved => resend(slot, outcome),
            Written::Gone => {
                // No cookie either way: re-sending would bring the dead ID back to the
                // browser, and clearing could drop the cookie of the session that
                // replaced it (an overlapping `regenerate`, i.e. a login).
                tracing::warn!(
                    "not saving the session: it was destroyed or expired since this request \
                     loaded it (an overlapping logout or regenerate)"
                );
                *outcome = Outcome::default();
            }
        }
    } else if outcome.touch {
        let (id, record) = match slot.state.borrow().as_ref() {
            Some(st) => (st.id.clone(), Arc::clone(&st.record)),
            None => return Ok(()),
        };
        store.touch(&id, &record).await?;
    }
    Ok(())
}

/// The save met the session's tombstone (an overlapping request reissued it) and
/// landed under the new ID: the rules decide again whether its cookie can be sent.
fn resend(slot: &Slot, outcome: &mut Outcome) {
    if let Some(st) = slot.state.borrow().as_ref() {
        let again = decide(slot.ctx.config.rules, st.facts());
        outcome.set_cookie = again.set_cookie;
        outcome.withheld = again.withheld;
        if again.withheld {
            tracing::warn!("a Secure session cookie was not sent over a plain-HTTP connection");
        }
    }
}

fn cookie_header(config: &Config, st: &State, outcome: Outcome) -> Option<HeaderValue> {
    if !outcome.set_cookie && !outcome.remove_cookie {
        return None;
    }
    let header = COOKIE_TEXT.with_borrow_mut(|out| {
        out.clear();
        if outcome.set_cookie {
            let signed = |out: &mut String| config.keys.sign_uri_encoded(&st.id, out);
            st.record.cookie.render(&config.name, signed, out);
        } else {
            st.record.cookie.render_removal(&config.name, out);
        }
        HeaderValue::from_bytes(out.as_bytes())
    });
    header
        .inspect_err(|_| {
            tracing::error!("the session cookie is not a valid header value; not sent")
        })
        .ok()
}

thread_local! {
    /// Where a `Set-Cookie` value is written before the header copies it at its length:
    /// one allocation per cookie, of its own size (a `String` handed to the header
    /// would take a second one, for the shared buffer of a longer capacity).
    static COOKIE_TEXT: RefCell<String> = RefCell::new(String::with_capacity(256));
}

/// The response for a session failure: a store failure by the outage policy (the store
/// call logged it), anything else an empty 500, logged with its cause chain.
fn failure<B>(
    config: &Config,
    req: HttpRequest,
    e: &SessionError,
) -> ServiceResponse<EitherBody<B>> {
    let response = match e {
        SessionError::Store(_) => config.outage.respond(&req, e),
        _ => {
            tracing::error!("{}", chain(e));
            HttpResponse::InternalServerError().finish()
        }
    };
    ServiceResponse::new(req, response).map_into_right_body()
}

/// The outage policy's response in place of a handler's error response made from a
/// store failure (a `?` on the extractor or on a store call).
fn store_failure<B>(config: &Config, res: &ServiceResponse<B>) -> Option<HttpResponse> {
    if matches!(config.outage, OutagePolicy::InternalServerError) {
        return None; // the error's own response is that already
    }
    match res.response().error()?.as_error::<SessionError>()? {
        e @ SessionError::Store(_) => Some(config.outage.respond(res.request(), e)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `Vary` lines after `mark_private`, on a response that had `lines`.
    fn vary(lines: &[&'static str]) -> Vec<HeaderValue> {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(VARY, HeaderValue::from_static(line));
        }
        mark_private(&mut headers, false);
        headers.get_all(VARY).cloned().collect()
    }

    #[test]
    fn cookie_is_added_to_vary_once() {
        assert_eq!(vary(&[]), ["Cookie"]);
        assert_eq!(vary(&["Origin"]), ["Origin, Cookie"]);
        assert_eq!(
            vary(&["Origin", " Accept-Encoding "]),
            ["Origin, Accept-Encoding, Cookie"]
        );
        assert_eq!(vary(&[""]), ["Cookie"]);
        assert_eq!(
            vary(&["Origin", "COOKIE"]),
            ["Origin", "COOKIE"],
            "kept as is"
        );
        assert_eq!(vary(&["Origin,cookie"]), ["Origin,cookie"]);
        assert_eq!(vary(&["*"]), ["*"]);
        assert_eq!(vary(&["Cookies"]), ["Cookies, Cookie"]);
    }

    #[test]
    fn a_handler_cache_control_is_kept_and_only_a_sent_cookie_adds_one() {
        let mut headers = HeaderMap::new();
        mark_private(&mut headers, false);
        assert_eq!(headers.get(CACHE_CONTROL), None);
        assert_eq!(headers.get(VARY).unwrap(), "Cookie");
        mark_private(&mut headers, true);
        assert_eq!(headers.get(CACHE_CONTROL).unwrap(), "private, no-store");
        assert_eq!(headers.get(VARY).unwrap(), "Cookie", "not twice");
        let mut headers = HeaderMap::new();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        mark_private(&mut headers, true);
        assert_eq!(headers.get(CACHE_CONTROL).unwrap(), "no-cache");
    }
}
