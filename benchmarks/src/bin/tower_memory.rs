//! axum + tower-sessions on its `MemoryStore`.

use benchmarks::{tower, BoxError};
use tower_sessions::MemoryStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    tower::serve(MemoryStore::default()).await
}
