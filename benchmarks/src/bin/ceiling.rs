//! The ceiling: actix-web with no session at all, one worker.

use actix_web::{web, App, HttpServer};
use benchmarks::{addr, body, BoxError};

async fn count() -> String {
    body(1)
}

async fn read() -> String {
    body(1)
}

#[actix_web::main]
async fn main() -> Result<(), BoxError> {
    HttpServer::new(|| {
        App::new()
            .route("/count", web::get().to(count))
            .route("/read", web::get().to(read))
    })
    .workers(1)
    .bind(addr())?
    .run()
    .await?;
    Ok(())
}
