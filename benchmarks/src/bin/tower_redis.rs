//! axum + tower-sessions on tower-sessions-redis-store (`REDIS_URL`), one multiplexed
//! connection as the other Redis contenders use.

use benchmarks::{required_var, tower, BoxError};
use tower_sessions_redis_store::fred::prelude::{Builder, ClientLike, Config};
use tower_sessions_redis_store::RedisStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let client = Builder::from_config(Config::from_url(&required_var("REDIS_URL")?)?).build()?;
    client.init().await?;
    tower::serve(RedisStore::new(client)).await
}
