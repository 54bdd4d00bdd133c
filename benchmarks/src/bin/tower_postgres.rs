//! axum + tower-sessions on tower-sessions-sqlx-store's PostgreSQL store
//! (`DATABASE_URL`, a pool of 10 connections without a ping before each acquire, like
//! the other PostgreSQL contenders).

use benchmarks::{required_var, tower, usize_var, BoxError};
use tower_sessions_sqlx_store::sqlx::postgres::PgPoolOptions;
use tower_sessions_sqlx_store::PostgresStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let pool = PgPoolOptions::new()
        .max_connections(usize_var("POOL_SIZE", 10) as u32)
        .test_before_acquire(false)
        .connect(&required_var("DATABASE_URL")?)
        .await?;
    let store = PostgresStore::new(pool);
    store.migrate().await?;
    tower::serve(store).await
}
