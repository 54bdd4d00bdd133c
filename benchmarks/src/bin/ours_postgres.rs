//! This crate on its `PostgresStore` (`DATABASE_URL`, connect-pg-simple's table). Its
//! requests run on the store's own connections: 10 for the one worker
//! (`connections_per_worker`, `POOL_SIZE`), as many as the other PostgreSQL contenders'
//! pools hold; its pool (the same size, no ping before each acquire) serves only the
//! table's creation and pruning.

use actix_express_session::store::sqlx::postgres::PgPoolOptions;
use actix_express_session::store::PostgresStore;
use benchmarks::{ours, required_var, usize_var, BoxError};

#[actix_web::main]
async fn main() -> Result<(), BoxError> {
    let size = usize_var("POOL_SIZE", 10);
    let pool = PgPoolOptions::new()
        .max_connections(size as u32)
        .test_before_acquire(false)
        .connect(&required_var("DATABASE_URL")?)
        .await?;
    let store = PostgresStore::builder(pool)
        .create_table_if_missing(true)
        .connections_per_worker(size)
        .build()?;
    ours::serve(store).await
}
