//! This crate (`actix-express-session`) on any store, with its default options
//! (`resave` and `saveUninitialized` off, a browser-session cookie, conditional writes).
//! `WRITE_POLICY=last-writer-wins` makes saves overwrite as express-session's do, to
//! show what the conditional write costs.

use actix_express_session::store::SessionStore;
use actix_express_session::{MemoryStore, Session, SessionMiddleware, SessionRecord, WritePolicy};
use actix_web::{web, App, HttpServer};

use crate::{addr, body, payload, rss_bytes, BoxError, SECRET};

/// `GET /count`.
///
/// # Errors
/// When the session cannot be read or written (a 500).
pub async fn count(session: Session) -> actix_web::Result<String> {
    let n: u64 = session.get("n")?.unwrap_or(0);
    if n == 0 && !payload().is_empty() {
        session.insert("payload", payload())?;
    }
    session.insert("n", n + 1)?;
    Ok(body(n + 1))
}

/// `GET /read`.
///
/// # Errors
/// When the session cannot be read (a 500).
pub async fn read(session: Session) -> actix_web::Result<String> {
    Ok(body(session.get("n")?.unwrap_or(0)))
}

/// Serves both routes with the session middleware on `store`, one worker.
///
/// # Errors
/// When the configuration is invalid or the port cannot be bound.
pub async fn serve<S: SessionStore + 'static>(store: S) -> Result<(), BoxError> {
    let policy = match std::env::var("WRITE_POLICY").as_deref() {
        Ok("last-writer-wins") => WritePolicy::LastWriterWins,
        _ => WritePolicy::Merge,
    };
    let sessions = SessionMiddleware::builder(store, SECRET)
        .write_policy(policy)
        .build()?;
    HttpServer::new(move || {
        App::new()
            .wrap(sessions.clone())
            .route("/count", web::get().to(count))
            .route("/read", web::get().to(read))
    })
    .workers(1)
    .bind(addr())?
    .run()
    .await?;
    Ok(())
}

/// Puts `$PREFILL` sessions (`{"n": 1}` plus the payload, as `/count` would leave them)
/// into `store`, then prints the resident-set growth per session on stderr as
/// `prefill: sessions=.. json_bytes=.. id_bytes=.. rss_delta=.. per_session=..`.
///
/// # Errors
/// When the store refuses a record.
pub async fn prefill(store: &MemoryStore) -> Result<(), BoxError> {
    let sessions = crate::usize_var("PREFILL", 0);
    if sessions == 0 {
        return Ok(());
    }
    let mut data = serde_json::Map::new();
    if !payload().is_empty() {
        data.insert("payload".into(), payload().into());
    }
    data.insert("n".into(), 1.into());
    let json =
        serde_json::json!({"cookie": {"originalMaxAge": null, "httpOnly": true, "path": "/"}});
    let mut json = json.as_object().cloned().unwrap_or_default();
    json.extend(data);
    let record = SessionRecord::from_json(serde_json::to_string(&json)?.as_bytes())?;
    let json_bytes = record.to_json().len();

    let before = rss_bytes().unwrap_or(0);
    let mut id_bytes = 0;
    for _ in 0..sessions {
        let sid = actix_express_session::generate_id().ok_or("no random source")?;
        id_bytes = sid.len();
        store.set(&sid, &record).await?;
    }
    let after = rss_bytes().unwrap_or(0);
    let delta = after.saturating_sub(before);
    eprintln!(
        "prefill: sessions={sessions} json_bytes={json_bytes} id_bytes={id_bytes} rss_delta={delta} per_session={}",
        delta / sessions as u64
    );
    Ok(())
}
