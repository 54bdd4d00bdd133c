//! The session metrics in Prometheus text format: the page-view counter on the
//! in-memory store, and `/metrics` serving what the middleware counted (sessions
//! created, loaded, saved, touched, destroyed, expired, rejected cookies, merge conflicts,
//! prevented resurrections, store errors, store latency).
//!
//! ```sh
//! cargo run --example prometheus --features metrics
//! curl -c jar -b jar http://127.0.0.1:8080/    # views: 1, 2, ...
//! curl http://127.0.0.1:8080/metrics           # session_created_total 1 ...
//! ```

use std::process::ExitCode;

use actix_express_session::{MemoryStore, Session, SessionMiddleware};
use actix_web::{web, App, HttpResponse, HttpServer};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets for `session_store_duration_seconds`, 100 µs to 1 s.
const BUCKETS: [f64; 9] = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0];

async fn index(session: Session) -> actix_web::Result<String> {
    let views: u64 = session.get("views")?.unwrap_or(0);
    session.insert("views", views + 1)?;
    Ok(format!("views: {}\n", views + 1))
}

async fn metrics(handle: web::Data<PrometheusHandle>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render())
}

fn recorder() -> Result<PrometheusHandle, String> {
    let latency = Matcher::Full("session_store_duration_seconds".to_owned());
    PrometheusBuilder::new()
        .set_buckets_for_metric(latency, &BUCKETS)
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| e.to_string())
}

#[actix_web::main]
async fn main() -> ExitCode {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let handle = match recorder() {
        Ok(handle) => web::Data::new(handle),
        Err(e) => {
            eprintln!("error: cannot install the Prometheus recorder: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sessions = match SessionMiddleware::builder(MemoryStore::new(), "keyboard cat").build() {
        Ok(sessions) => sessions,
        Err(e) => {
            eprintln!("error: invalid session configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on http://127.0.0.1:{port}/ (metrics at /metrics)");
    let server = HttpServer::new(move || {
        App::new()
            .app_data(handle.clone())
            .route("/metrics", web::get().to(metrics))
            .service(
                web::scope("")
                    .wrap(sessions.clone())
                    .route("/", web::get().to(index)),
            )
    })
    .bind(("127.0.0.1", port));
    let result = match server {
        Ok(server) => server.run().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot serve on 127.0.0.1:{port}: {e}");
            ExitCode::FAILURE
        }
    }
}
