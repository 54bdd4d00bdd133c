//! This crate on its `MemoryStore` (optionally pre-filled: `PREFILL`, `PAYLOAD_BYTES`).

use actix_express_session::MemoryStore;
use benchmarks::{ours, BoxError};

#[actix_web::main]
async fn main() -> Result<(), BoxError> {
    let store = MemoryStore::new();
    ours::prefill(&store).await?;
    ours::serve(store).await
}
