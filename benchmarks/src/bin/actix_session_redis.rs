//! actix-session on its Redis store (`REDIS_URL`).

use actix_session::storage::RedisSessionStore;
use benchmarks::{actix_session_peer, required_var, BoxError};

#[actix_web::main]
async fn main() -> Result<(), BoxError> {
    let store = RedisSessionStore::new(required_var("REDIS_URL")?).await?;
    actix_session_peer::serve(move || store.clone()).await
}
