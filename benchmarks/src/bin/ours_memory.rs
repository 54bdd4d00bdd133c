//! This crate on its `MemoryStore` (optionally pre-filled: `PREFILL`, `PAYLOAD_BYTES`).

use actix_express_session::MemoryStore;
use benchmarks::{ours, BoxError};

#[actix_web::main]
async fn main() -> Result<(), BoxError> {
    // No size limit: the scaling runs put up to a million sessions in before serving.
    let store = MemoryStore::builder().max_sessions(usize::MAX).build();
    ours::prefill(&store).await?;
    ours::serve(store).await
}
