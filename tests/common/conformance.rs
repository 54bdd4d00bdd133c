//! [`record`] for the tests: the store test kit's helper
//! (`actix_express_session::testing::record`), compiled here from its own source file so
//! that tests need not enable the `testing` feature; given the date formatting the crate
//! keeps private. Also how the built-in stores run the kit: [`in_full`].

#[path = "../../src/testing/record.rs"]
mod kit_record;

// Not every test uses it.
#[allow(unused_imports)]
pub use kit_record::record;

use std::time::SystemTime;

use actix_express_session::SessionRecord;

/// Milliseconds since the Unix epoch, now.
fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH);
    since.expect("clock after 1970").as_millis() as i64
}

/// ISO 8601 with milliseconds, as express-session stores `cookie.expires`.
fn format_iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms.rem_euclid(1000)
    )
}

fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The conformance suite as the built-in stores run it: atomicity claimed, and every
/// check run in full (no optional method unsupported).
#[cfg(feature = "testing")]
pub async fn in_full(store: impl actix_express_session::store::SessionStore) {
    let kit = actix_express_session::testing::Conformance::new(store);
    let report = kit.atomic(true).run().await;
    assert!(report.all_passed(), "{report}");
}
