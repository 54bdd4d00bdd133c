//! This crate on its `RedisStore` (`REDIS_URL`, connect-redis's records, one multiplexed
//! connection).

use actix_express_session::RedisStore;
use benchmarks::{ours, required_var, BoxError};

#[actix_web::main]
async fn main() -> Result<(), BoxError> {
    ours::serve(RedisStore::new(&required_var("REDIS_URL")?).await?).await
}
