//! This crate on its `RedisStore` (`REDIS_URL`, connect-redis's records, one lean
//! connection per worker thread). `CLIENT_CACHE=n` turns the client cache on, with `n`
//! sessions per worker thread (off when unset or 0).

use actix_express_session::RedisStore;
use benchmarks::{ours, required_var, usize_var, BoxError};

#[actix_web::main]
async fn main() -> Result<(), BoxError> {
    let store = RedisStore::builder()
        .client_cache(usize_var("CLIENT_CACHE", 0))
        .connect(&required_var("REDIS_URL")?)
        .await?;
    ours::serve(store).await
}
