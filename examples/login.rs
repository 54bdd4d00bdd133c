//! A login page in plain HTML (no JavaScript): log in with a user name, optionally
//! "remember me", see who is logged in, log out.
//!
//! Login calls `regenerate` (a new session ID, against session fixation); "remember me"
//! then makes the cookie persistent with `set_max_age` (30 days), while without it the
//! cookie has no expiry and the browser drops it when it closes. Logout calls `destroy`.
//!
//! ```sh
//! cargo run --example login            # PORT=0 picks a free port; prints the URL
//! curl -c jar -b jar -d 'user=ada' http://127.0.0.1:8080/login
//! curl -c jar -b jar http://127.0.0.1:8080/          # the page: Logged in as ada
//! curl -c jar -b jar -d 'user=ada&remember=on' http://127.0.0.1:8080/login   # for 30 days
//! curl -c jar -b jar -X POST http://127.0.0.1:8080/logout
//! ```
//!
//! Environment: `PORT` (default 8080), `SESSION_SECRET` (default `keyboard cat`).

mod support;

use std::process::ExitCode;
use std::time::Duration;

use actix_express_session::{MemoryStore, Session, SessionMiddleware};
use actix_web::http::header;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Deserialize;

/// How long "remember me" keeps a user logged in.
const REMEMBER_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

const STYLE: &str =
    "body{font:16px/1.5 sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}\
    label{display:block;margin:.5rem 0}input[name=user]{width:100%;padding:.3rem}\
    button{padding:.3rem 1.2rem}";

/// The login form's fields; a checked checkbox sends `remember=on`, an unchecked one
/// nothing.
#[derive(Deserialize)]
struct Login {
    user: String,
    remember: Option<String>,
}

/// `s` with the characters that mean something in HTML replaced by entities.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An HTML page, never cached: after logout the back button must not show the
/// logged-in page again.
fn page(title: &str, body: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width\">\
             <title>{title}</title><style>{STYLE}</style></head>\n<body>{body}</body></html>\n"
        ))
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

async fn index(session: Session) -> actix_web::Result<HttpResponse> {
    let Some(user) = session.get::<String>("user")? else {
        return Ok(page(
            "Log in",
            "<h1>Log in</h1>\n<form method=\"post\" action=\"/login\">\
             <label>User name <input name=\"user\" required autofocus autocomplete=\"username\"></label>\
             <label><input type=\"checkbox\" name=\"remember\"> Remember me for 30 days</label>\
             <button>Log in</button></form>",
        ));
    };
    let until = match session.cookie().original_max_age() {
        Some(_) => "for 30 days on this browser",
        None => "until you close the browser",
    };
    let user = escape(&user);
    Ok(page(
        "Logged in",
        &format!(
            "<h1>Hello, {user}</h1>\n<p>Logged in as <strong id=\"user\">{user}</strong>, \
             {until}.</p>\n<form method=\"post\" action=\"/logout\"><button>Log out</button></form>"
        ),
    ))
}

async fn login(session: Session, form: web::Form<Login>) -> actix_web::Result<HttpResponse> {
    let user = form.user.trim();
    if user.is_empty() {
        return Ok(see_other("/"));
    }
    // A new ID on privilege change: whoever knew the old one learns nothing.
    session.regenerate().await?;
    if form.remember.is_some() {
        session.set_max_age(Some(REMEMBER_FOR));
    }
    session.insert("user", user)?;
    Ok(see_other("/"))
}

async fn logout(session: Session) -> actix_web::Result<HttpResponse> {
    session.destroy().await?;
    Ok(see_other("/"))
}

/// Starts the server; an error is one sentence for the user.
async fn run() -> Result<(), String> {
    let port = support::port()?;
    let secret = support::secret();
    // The default cookie has no max age: a browser-session cookie unless "remember me".
    let sessions = SessionMiddleware::builder(MemoryStore::new(), secret)
        .build()
        .map_err(|e| format!("invalid session configuration: {e}"))?;
    let server = HttpServer::new(move || {
        App::new()
            .wrap(sessions.clone())
            .route("/", web::get().to(index))
            .route("/login", web::post().to(login))
            .route("/logout", web::post().to(logout))
    })
    .bind(("127.0.0.1", port))
    .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    for addr in server.addrs() {
        println!("listening on http://{addr}/");
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
