//! This crate on its `PostgresStore` (`DATABASE_URL`, connect-pg-simple's table, a pool
//! of 10 connections without a ping before each acquire, like the other PostgreSQL
//! contenders).

use actix_express_session::store::sqlx::postgres::PgPoolOptions;
use actix_express_session::store::PostgresStore;
use benchmarks::{ours, required_var, usize_var, BoxError};

#[actix_web::main]
async fn main() -> Result<(), BoxError> {
    let pool = PgPoolOptions::new()
        .max_connections(usize_var("POOL_SIZE", 10) as u32)
        .test_before_acquire(false)
        .connect(&required_var("DATABASE_URL")?)
        .await?;
    let store = PostgresStore::builder(pool)
        .create_table_if_missing(true)
        .build()?;
    ours::serve(store).await
}
