//! The counters and histograms the middleware reports through the `metrics` facade:
//! a scripted sequence of requests, then exact counts. One test in this binary, so the
//! process-wide recorder sees nothing else.
#![cfg(feature = "metrics")]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use actix_express_session::{Session, SessionMiddleware};
use actix_web::{test, web, App};
use common::{get, pair, routes, set_cookie, Flaky, SECRET};
use futures_util::future::join;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// Loads the session, waits, then sets `key`: overlapping with another request.
async fn slow(session: Session, key: web::Path<String>) -> actix_web::Result<&'static str> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    session.insert(key.into_inner(), true)?;
    Ok("ok")
}

/// Every counter by name (labels joined into it), and the sample count of every
/// histogram.
fn read(snapshotter: &Snapshotter) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let mut name = key.name().to_owned();
        for label in key.labels() {
            name.push_str(&format!(" {}={}", label.key(), label.value()));
        }
        let n = match value {
            DebugValue::Counter(n) => n,
            DebugValue::Histogram(samples) => samples.len() as u64,
            DebugValue::Gauge(_) => continue,
        };
        out.insert(name, n);
    }
    out
}

#[actix_rt::test]
async fn a_scripted_sequence_gives_exact_counts() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::set_global_recorder(recorder).expect("the only recorder");

    let store = Flaky::default();
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .touch_after(Duration::ZERO)
        .build()
        .expect("valid");
    let app = test::init_service(
        App::new()
            .wrap(mw)
            .configure(routes)
            .route("/slow/{key}", web::get().to(slow)),
    )
    .await;

    // A new session (create), a change (load, save_if), a plain read (load, touch).
    let cookie = pair(&set_cookie(&get(&app, "/count", None).await).expect("a session"));
    assert_eq!(get(&app, "/count", Some(&cookie)).await.status(), 200);
    assert_eq!(get(&app, "/read", Some(&cookie)).await.status(), 200);
    // A tampered cookie: rejected, and no store call for a session nobody changes.
    let tampered = format!("{}x", cookie);
    assert_eq!(get(&app, "/read", Some(&tampered)).await.status(), 200);
    // Two overlapping changes: one merge conflict, both saved.
    let (a, b) = join(
        get(&app, "/slow/a", Some(&cookie)),
        get(&app, "/slow/b", Some(&cookie)),
    )
    .await;
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    // A slow change overlapping a logout: not written back.
    let (slow, bye) = join(
        get(&app, "/slow/c", Some(&cookie)),
        get(&app, "/destroy", Some(&cookie)),
    )
    .await;
    assert_eq!((slow.status().as_u16(), bye.status().as_u16()), (200, 200));
    // The logged-out cookie again: expired.
    assert_eq!(get(&app, "/read", Some(&cookie)).await.status(), 200);
    // A store failure.
    store.fail(true);
    assert_eq!(get(&app, "/count", None).await.status(), 500);

    let counts = read(&snapshotter);
    let expect = |name: &str, n: u64| {
        assert_eq!(
            counts.get(name).copied().unwrap_or(0),
            n,
            "{name}: {counts:#?}"
        );
    };
    // Loads: the change, the read, two overlapping, the slow one and the logout, and the
    // logged-out cookie (which finds nothing). Conditional saves: the change, both
    // overlapping ones (one conflicts, then succeeds), the slow one (finds it gone).
    expect("session_created_total", 1);
    expect("session_loaded_total", 6);
    expect("session_saved_total", 3);
    expect("session_touched_total", 1);
    expect("session_destroyed_total", 1);
    expect("session_expired_total", 1);
    expect("session_cookie_rejected_total", 1);
    expect("session_merge_conflicts_total", 1);
    expect("session_resurrections_prevented_total", 1);
    let errors = "session_store_errors_total store=Flaky operation=create kind=backend";
    expect(errors, 1);
    let latency = |op: &str| format!("session_store_duration_seconds store=Flaky operation={op}");
    expect(&latency("load"), 7);
    expect(&latency("create"), 2);
    expect(&latency("save_if"), 5);
    expect(&latency("touch"), 1);
    expect(&latency("destroy"), 1);
    let known = 10 + 5; // the counters above and the five latency series
    assert_eq!(counts.len(), known, "no other series: {counts:#?}");
}
