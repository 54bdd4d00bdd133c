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

mod support;

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

/// Installs the recorder and starts the server; an error is one sentence for the user.
async fn run() -> Result<(), String> {
    let port = support::port()?;
    let handle = web::Data::new(
        recorder().map_err(|e| format!("cannot install the Prometheus recorder: {e}"))?,
    );
    let sessions = SessionMiddleware::builder(MemoryStore::new(), support::secret())
        .build()
        .map_err(|e| format!("invalid session configuration: {e}"))?;
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
    .bind(("127.0.0.1", port))
    .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    for addr in server.addrs() {
        println!("listening on http://{addr}/ (metrics at /metrics)");
    }
    server
        .run()
        .await
        .map_err(|e| format!("the server stopped: {e}"))
}

#[actix_web::main]
async fn main() -> ExitCode {
    support::exit(run().await)
}
