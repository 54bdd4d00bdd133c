//! actix-session on its cookie store (the whole session in an encrypted cookie).

use actix_session::storage::CookieSessionStore;
use benchmarks::{actix_session_peer, BoxError};

#[actix_web::main]
async fn main() -> Result<(), BoxError> {
    actix_session_peer::serve(CookieSessionStore::default).await
}
