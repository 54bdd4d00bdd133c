//! What every example does at start-up: read `PORT` and `SESSION_SECRET`, and turn a
//! failure into one plain sentence (`error: ...`, exit status 1) without printing a
//! password.
#![allow(dead_code)] // each example uses what it needs

use std::error::Error;
use std::process::ExitCode;

/// `PORT` from the environment, 8080 when unset (0: any free port).
pub(crate) fn port() -> Result<u16, String> {
    match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT must be a port number, not {p:?}")),
        Err(_) => Ok(8080),
    }
}

/// `SESSION_SECRET` from the environment, `keyboard cat` when unset.
pub(crate) fn secret() -> String {
    std::env::var("SESSION_SECRET").unwrap_or_else(|_| "keyboard cat".to_owned())
}

/// What went wrong, from the innermost errors: the crate's errors say which step failed
/// (the sentence around this says so too) and keep the cause in `source()`.
pub(crate) fn cause(e: &dyn Error) -> String {
    let Some(mut err) = e.source() else {
        return e.to_string();
    };
    let mut text = err.to_string();
    while let Some(next) = err.source() {
        let next_text = next.to_string();
        if !text.contains(&next_text) {
            text = format!("{text}: {next_text}");
        }
        err = next;
    }
    text
}

/// `url` without user, password and query (they may hold secrets), fit to print.
pub(crate) fn printable(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}{host}{path}")
}

/// The exit status of `run`: a failure printed as one sentence.
pub(crate) fn exit(run: Result<(), String>) -> ExitCode {
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
