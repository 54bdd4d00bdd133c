//! The request/response lifecycle: load the session, run the handler, then save, touch,
//! destroy and send the cookie by express-session's rules (`rules::decide`).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderValue, SET_COOKIE};
use actix_web::{Error, HttpMessage, HttpRequest, HttpResponse};
use futures_util::future::{ready, LocalBoxFuture, Ready};

use crate::config::{Config, SessionMiddleware};
use crate::encoding::now_ms;
use crate::record::SessionRecord;
use crate::rules::{decide, Outcome};
use crate::session::{SessionError, State, Status};
use crate::store::{SessionStore, StoreError};

/// What every request of one worker shares: the configuration and the store.
pub(crate) struct Context {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Arc<dyn SessionStore>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

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
        let store: Arc<dyn SessionStore> = self.store.clone();
        let ctx = Context {
            config: Arc::clone(&self.config),
            store,
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
            // Outside cookie.path, or already handled by an outer SessionMiddleware.
            if !ctx.config.in_scope(&req) || req.extensions().contains::<Rc<RefCell<State>>>() {
                return service
                    .call(req)
                    .await
                    .map(ServiceResponse::map_into_left_body);
            }
            let state = match load(&ctx, &req).await {
                Ok(state) => Rc::new(RefCell::new(state)),
                Err(e) => return Ok(failure(req.into_parts().0, &e)),
            };
            req.extensions_mut().insert(Rc::clone(&state));
            let res = service.call(req).await?;
            Ok(finish(&ctx, &state, res).await)
        })
    }
}

/// Reads the signed cookie and loads the session, or starts a new one.
async fn load(ctx: &Rc<Context>, req: &ServiceRequest) -> Result<State, SessionError> {
    let cookie_id = ctx.config.read_session_id(req.headers());
    let had_cookie = cookie_id.is_some();
    let loaded = match cookie_id {
        Some(id) => fetch(ctx, id).await?,
        None => None,
    };
    let secure_connection = ctx.config.is_secure(req.request());
    let mut state = match loaded {
        Some(state) => state,
        None => {
            let cookie = ctx.config.cookie.new_cookie(secure_connection, now_ms());
            let id = ctx.config.new_id(req)?;
            State::new(Rc::clone(ctx), id, SessionRecord::new(cookie))
        }
    };
    state.had_cookie = had_cookie;
    state.secure_connection = secure_connection;
    Ok(state)
}

/// The stored session under a cookie's ID. Unknown IDs (and records that no longer
/// parse) give `None`: a new session under a new ID, never the client's.
async fn fetch(ctx: &Rc<Context>, id: String) -> Result<Option<State>, SessionError> {
    match ctx.store.get(&id).await {
        Ok(Some(record)) => {
            let mut state = State::new(Rc::clone(ctx), id, record);
            state.loaded = true;
            Ok(Some(state))
        }
        Ok(None) => Ok(None),
        Err(StoreError::Serialization(e)) => {
            tracing::warn!(error = %e, "unreadable session record; starting a new session");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Decides, runs the store operation and adds the cookie; a store failure replaces the
/// response with an empty 500.
async fn finish<B>(
    ctx: &Context,
    state: &RefCell<State>,
    res: ServiceResponse<B>,
) -> ServiceResponse<EitherBody<B>> {
    let (outcome, header) = prepare(&ctx.config, &mut state.borrow_mut());
    if outcome.destroy || outcome.save || outcome.touch {
        // Moved out for the store call rather than copied, and put back afterwards.
        let (id, record) = state.borrow_mut().take_record();
        let result = apply(ctx, outcome, &id, &record).await;
        state.borrow_mut().put_back(id, record);
        if let Err(e) = result {
            return failure(res.into_parts().0, &e.into());
        }
    }
    let mut res = res.map_into_left_body();
    if let Some(value) = header {
        res.headers_mut().append(SET_COOKIE, value);
    }
    res
}

/// Renews the expiry, gathers the facts, decides, and renders the cookie if one is due.
fn prepare(config: &Config, st: &mut State) -> (Outcome, Option<HeaderValue>) {
    if st.status == Status::Active {
        st.record.cookie.reset_expiry(now_ms());
    }
    let outcome = decide(config.rules, st.facts());
    if outcome.withheld {
        tracing::warn!("a Secure session cookie was not sent over a plain-HTTP connection");
    }
    (outcome, cookie_header(config, st, outcome))
}

async fn apply(
    ctx: &Context,
    outcome: Outcome,
    id: &str,
    record: &SessionRecord,
) -> Result<(), StoreError> {
    if outcome.destroy {
        ctx.store.destroy(id).await
    } else if outcome.save {
        ctx.store.set(id, record).await
    } else if outcome.touch {
        ctx.store.touch(id, record).await
    } else {
        Ok(())
    }
}

fn cookie_header(config: &Config, st: &State, outcome: Outcome) -> Option<HeaderValue> {
    let mut out = String::with_capacity(160);
    if outcome.set_cookie {
        let mut signed = String::with_capacity(st.id.len() + 44);
        config.keys.sign_into(&st.id, &mut signed);
        st.record.cookie.render(&config.name, &signed, &mut out);
    } else if outcome.remove_cookie {
        st.record.cookie.render_removal(&config.name, &mut out);
    } else {
        return None;
    }
    HeaderValue::try_from(out)
        .inspect_err(|_| {
            tracing::error!("the session cookie is not a valid header value; not sent")
        })
        .ok()
}

/// An empty 500 for a session failure, logged with its cause chain.
fn failure<B>(req: HttpRequest, e: &SessionError) -> ServiceResponse<EitherBody<B>> {
    let mut causes = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        causes.push_str(": ");
        causes.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::error!("{e}{causes}");
    ServiceResponse::new(req, HttpResponse::InternalServerError().finish()).map_into_right_body()
}
