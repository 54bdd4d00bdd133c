//! [`NamedSession`]: the session of one of several session middlewares, by cookie name.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::{Either, FutureExt, LocalBoxFuture, Ready};

use crate::error::SessionError;
use crate::session::{extract, Session};

/// Names the cookie of one session middleware, for [`NamedSession`].
pub trait SessionName {
    /// The cookie name, as given to [`name`](crate::SessionMiddlewareBuilder::name).
    const NAME: &'static str;
}

/// The extractor for one of several session middlewares in an app, chosen by its cookie
/// name: an admin session beside the user one. It dereferences to the [`Session`].
/// The plain `Session` extractor gives the innermost middleware's session (the one
/// closest to the handler).
///
/// ```
/// use actix_express_session::{MemoryStore, NamedSession, Session, SessionMiddleware, SessionName};
/// use actix_web::{web, App};
///
/// struct Admin;
/// impl SessionName for Admin {
///     const NAME: &'static str = "admin.sid";
/// }
///
/// async fn panel(user: Session, admin: NamedSession<Admin>) -> actix_web::Result<String> {
///     let who: Option<String> = user.get("user")?;
///     let elevated: Option<bool> = admin.get("elevated")?;
///     Ok(format!("{who:?} {elevated:?}"))
/// }
///
/// let users = SessionMiddleware::builder(MemoryStore::new(), "user secret").build().unwrap();
/// let admins = SessionMiddleware::builder(MemoryStore::new(), "admin secret")
///     .name(Admin::NAME)
///     .build()
///     .unwrap();
/// let app = App::new()
///     .wrap(users)
///     .service(web::scope("/admin").wrap(admins).route("", web::get().to(panel)));
/// # drop(app);
/// ```
pub struct NamedSession<N> {
    session: Session,
    name: PhantomData<fn() -> N>,
}

impl<N> NamedSession<N> {
    /// The session itself.
    pub fn into_inner(self) -> Session {
        self.session
    }
}

impl<N> Deref for NamedSession<N> {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}

impl<N: SessionName> fmt::Debug for NamedSession<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NamedSession")
            .field(&N::NAME)
            .field(&self.session)
            .finish()
    }
}

impl<N: SessionName> FromRequest for NamedSession<N> {
    type Error = SessionError;
    type Future = Either<
        Ready<Result<Self, SessionError>>,
        LocalBoxFuture<'static, Result<Self, SessionError>>,
    >;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let wrap = |session| NamedSession {
            session,
            name: PhantomData,
        };
        match extract(req, Some(N::NAME)) {
            Either::Left(ready) => {
                Either::Left(futures_util::future::ready(ready.into_inner().map(wrap)))
            }
            Either::Right(loading) => {
                Either::Right(loading.map(move |r| r.map(wrap)).boxed_local())
            }
        }
    }
}
