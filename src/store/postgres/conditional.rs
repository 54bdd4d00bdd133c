//! The conditional half of the store: `load` with its version and last extension,
//! `create` only under a free ID, `save_if` only onto the loaded version. Each is one
//! statement; only a `save_if` that wrote nothing reads again (on the same connection),
//! to say why.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::PgConnection;
use sqlx::Arguments;

use super::local::Lent;
use super::sql::{ceil_s, or_lend};
use super::{Inner, Row};
use crate::encoding::now_ms;
use crate::record::SessionRecord;
use crate::store::parsed;
use crate::store::{Loaded, StoreError, Version};

/// What a conditional `UPDATE` found.
#[derive(Debug)]
pub(super) enum Update {
    /// It wrote the row.
    Written,
    /// It wrote nothing; the live row now (its `sess` text and `expire`), if any.
    Current(Option<Row>),
}

impl Inner {
    /// The live row.
    pub(super) async fn load(&self, mut c: PgConnection, sid: &str) -> Lent<Option<Row>> {
        let args = or_lend!(c, self.args(3, ceil_s(now_ms()), |a| a.add(sid)));
        let q = sqlx::query_as_with::<_, Row, _>(self.sql.load.clone(), args);
        let row = q.fetch_optional(&mut c).await;
        (c, row)
    }

    /// The session in a live row: its `sess` text, verbatim, is the version.
    pub(super) fn loaded(&self, row: Option<Row>) -> Result<Option<Loaded>, StoreError> {
        let Some((json, expire_s)) = row else {
            return Ok(None);
        };
        let record = parsed::parse(json.as_bytes()).map_err(StoreError::Serialization)?;
        let extended_at = extended_at(&record, expire_s, self.default_ttl_ms, now_ms());
        Ok(Some(Loaded {
            record,
            version: Version::from_bytes(json.into_bytes()),
            extended_at,
        }))
    }

    /// Inserts the row unless a live one has the ID (an expired row, not yet pruned,
    /// gives way); whether it did.
    pub(super) async fn create(
        &self,
        mut c: PgConnection,
        sid: &str,
        json: &str,
        expire: f64,
    ) -> Lent<bool> {
        let args = or_lend!(
            c,
            self.args(5, ceil_s(now_ms()), |a| {
                a.add(expire)?;
                a.add(json)?;
                a.add(sid)
            })
        );
        let written = sqlx::query_with(self.sql.create.clone(), args)
            .execute(&mut c)
            .await;
        (c, written.map(|w| w.rows_affected() == 1))
    }

    /// Replaces `sess` and `expire` of the live row whose `sess` is still `expected`,
    /// byte for byte, with `json` (the record's); when it writes nothing (or there is
    /// no `expected` text), reads the live row on the same connection. Never inserts:
    /// a destroyed session stays destroyed.
    pub(super) async fn save_if(
        &self,
        mut c: PgConnection,
        sid: &str,
        rec: &SessionRecord,
        json: &str,
        expected: Option<&str>,
    ) -> Lent<Update> {
        if let Some(expected) = expected {
            let now = now_ms();
            let args = or_lend!(
                c,
                self.args(6, ceil_s(now), |a| {
                    a.add(self.expire_s(rec, now))?;
                    a.add(json)?;
                    a.add(sid)?;
                    a.add(expected)
                })
            );
            let q = sqlx::query_with(self.sql.save_if.clone(), args);
            match q.execute(&mut c).await {
                Ok(w) if w.rows_affected() == 1 => return (c, Ok(Update::Written)),
                Ok(_) => {}
                Err(e) => return (c, Err(e)),
            }
        }
        let (c, row) = self.load(c, sid).await;
        (c, row.map(Update::Current))
    }
}

/// When `expire` (seconds since the epoch) was last set, at the latest: it is the
/// expiry then (the cookie's, or the default TTL's for a browser-session cookie) rounded
/// up to a whole second, so one second more is taken off. `None` when the lifetime is
/// unknown (an expiry without `originalMaxAge`) or the answer is not in the past, which
/// means the row was written with another lifetime than ours.
fn extended_at(
    rec: &SessionRecord,
    expire_s: f64,
    default_ttl_ms: i64,
    now_ms: i64,
) -> Option<SystemTime> {
    let lifetime_ms = if rec.cookie.expires_unix_ms().is_some() {
        i64::try_from(rec.cookie.original_max_age()?.as_millis()).ok()?
    } else {
        default_ttl_ms
    };
    if !expire_s.is_finite() {
        return None;
    }
    // Saturating float-to-int: far-off values fail the checks below.
    let expire_ms = (expire_s * 1000.0).floor() as i64;
    let at = expire_ms.checked_sub(lifetime_ms)?.checked_sub(1000)?;
    let at = u64::try_from(at)
        .ok()
        .filter(|&at| at <= now_ms.unsigned_abs())?;
    UNIX_EPOCH.checked_add(Duration::from_millis(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn record(max_age_ms: Option<i64>, expires_ms: Option<i64>) -> SessionRecord {
        let cookie = serde_json::json!({
            "originalMaxAge": max_age_ms,
            "expires": expires_ms.map(|_| "2030-01-01T00:00:00.000Z"),
            "path": "/",
        });
        let json = serde_json::json!({ "cookie": cookie }).to_string();
        SessionRecord::from_json(json.as_bytes()).expect("valid")
    }

    fn ms(t: Option<SystemTime>) -> Option<i64> {
        t.map(|t| t.duration_since(UNIX_EPOCH).expect("after").as_millis() as i64)
    }

    #[test]
    fn extended_at_is_expire_minus_the_lifetime_minus_the_rounding() {
        let now = 1_700_000_000_500;
        // Set at `now` with a one-hour cookie: expire = ceil(now + 1 h).
        let expire = ceil_s(now + 3_600_000);
        let rec = record(Some(3_600_000), Some(0));
        let at = ms(extended_at(&rec, expire, DAY, now)).expect("known");
        assert!(at <= now && now - at <= 1_000, "{at} vs {now}");
        // A browser-session cookie lives the store's default TTL.
        let expire = ceil_s(now + DAY);
        let at = ms(extended_at(&record(None, None), expire, DAY, now)).expect("known");
        assert!(at <= now && now - at <= 1_000, "{at} vs {now}");
    }

    #[test]
    fn extended_at_is_unknown_without_a_lifetime_or_when_it_would_be_in_the_future() {
        let now = 1_700_000_000_000;
        let expire = ceil_s(now + 3_600_000);
        let fixed_expiry = record(None, Some(0));
        assert_eq!(extended_at(&fixed_expiry, expire, DAY, now), None);
        let longer_ttl = ceil_s(now + 2 * DAY);
        assert_eq!(extended_at(&record(None, None), longer_ttl, DAY, now), None);
        assert_eq!(extended_at(&record(None, None), f64::NAN, DAY, now), None);
        assert_eq!(extended_at(&record(None, None), 1e300, DAY, now), None);
    }
}
