//! Loads and creates that meet a busy moment share one statement.
//!
//! An operation runs alone while its thread runs few others of its kind (see
//! `gather.rs`). When all their turns are taken, the first to find so waits for the next
//! turn, and the operations that arrive while it waits go with it: one
//! `SELECT ... WHERE sid = ANY($3)` answers every load, each ID asked once, and one
//! `INSERT ... SELECT ... FROM unnest(...)` writes every new row. PostgreSQL then runs
//! one statement where it ran many, and the connections beyond these turns stay free for
//! the other writes. An operation never joins a statement already sent, so a load reads
//! the rows as they were when it arrived, or newer: a client's request sees what its
//! earlier ones wrote.
//!
//! An operation whose leader is dropped before it answers (timeout, client gone) runs
//! alone. For a create, the abandoned `INSERT` may have landed: the create then finds
//! its ID taken (by its own row) and the middleware moves the session to a fresh ID,
//! leaving that row to expire unused.

use std::collections::HashSet;
use std::iter;
use std::sync::Arc;

use sqlx::postgres::PgConnection;
use sqlx::Arguments;

use super::gather::{Gather, Leader, Turn};
use super::local::{Idempotent, Lent};
use super::sql::{ceil_s, or_lend};
use super::{Inner, NewRow, Row};
use crate::encoding::now_ms;
use crate::store::StoreError;

/// A live row of a load of many: `sid`, `sess` text, `expire`.
type Found = (String, String, f64);

impl Inner {
    /// The live row of `sid`: alone when a turn is free, else in one statement with the
    /// loads that meet it.
    pub(super) async fn load_row(&self, sid: &str) -> Result<Option<Row>, StoreError> {
        let alone = async || self.conns.run(Idempotent::Yes, |c| self.load(c, sid)).await;
        let together = async |others: &[String]| self.load_many(sid, others).await;
        gathered(self.conns.loads()?, || sid.to_owned(), alone, together).await
    }

    /// Inserts the row unless a live one has the ID (an expired row, not yet pruned,
    /// gives way); whether it did. Alone when a turn is free, else in one statement with
    /// the creates that meet it.
    pub(super) async fn create_row(
        &self,
        sid: &str,
        json: &str,
        expire: f64,
    ) -> Result<bool, StoreError> {
        let alone = async || {
            let create = |c| self.create(c, sid, json, expire);
            self.conns.run(Idempotent::No, create).await
        };
        let together =
            async |others: &[NewRow]| self.create_many((sid, json, expire), others).await;
        let item = || (sid.to_owned(), json.to_owned(), expire);
        gathered(self.conns.creates()?, item, alone, together).await
    }

    /// The live rows of `own` and `others`, in one statement.
    async fn load_many(
        &self,
        own: &str,
        others: &[String],
    ) -> Result<(Option<Row>, Vec<Option<Row>>), StoreError> {
        let mut sids: Vec<&str> = others.iter().map(String::as_str).collect();
        sids.push(own);
        sids.sort_unstable();
        sids.dedup();
        let select = |c| self.select_many(c, &sids);
        let mut rows = self.conns.run(Idempotent::Yes, select).await?;
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let theirs = others.iter().map(|sid| find(&rows, sid)).collect();
        Ok((find(&rows, own), theirs))
    }

    async fn select_many(&self, mut c: PgConnection, sids: &[&str]) -> Lent<Vec<Found>> {
        let args = or_lend!(c, self.args(3, ceil_s(now_ms()), |a| a.add(sids)));
        let q = sqlx::query_as_with::<_, Found, _>(self.sql.load_many.clone(), args);
        let rows = q.fetch_all(&mut c).await;
        (c, rows)
    }

    /// Creates `own` and `others` in one statement; whether each was written. Of rows
    /// with one ID, the first goes in and the others find it taken.
    async fn create_many(
        &self,
        own: (&str, &str, f64),
        others: &[NewRow],
    ) -> Result<(bool, Vec<bool>), StoreError> {
        let rows =
            iter::once(own).chain(others.iter().map(|(s, j, e)| (s.as_str(), j.as_str(), *e)));
        let mut seen = HashSet::with_capacity(others.len() + 1);
        let (mut first, mut sids, mut jsons, mut expires) = (vec![], vec![], vec![], vec![]);
        for (sid, json, expire) in rows.clone() {
            let new = seen.insert(sid);
            first.push(new);
            if new {
                sids.push(sid);
                jsons.push(json);
                expires.push(expire);
            }
        }
        let insert = |c| self.insert_many(c, &sids, &jsons, &expires);
        let mut written = self.conns.run(Idempotent::No, insert).await?;
        written.sort_unstable();
        let was_written = |((sid, ..), first): ((&str, &str, f64), bool)| {
            first && written.binary_search_by(|w| w.as_str().cmp(sid)).is_ok()
        };
        let mut answers = rows.zip(first).map(was_written);
        let own = answers.next().unwrap_or(false);
        Ok((own, answers.collect()))
    }

    /// The IDs of the rows written.
    async fn insert_many(
        &self,
        mut c: PgConnection,
        sids: &[&str],
        jsons: &[&str],
        expires: &[f64],
    ) -> Lent<Vec<String>> {
        let args = or_lend!(
            c,
            self.args(5, ceil_s(now_ms()), |a| {
                a.add(expires)?;
                a.add(jsons)?;
                a.add(sids)
            })
        );
        let q = sqlx::query_scalar_with::<_, String, _>(self.sql.create_many.clone(), args);
        let written = q.fetch_all(&mut c).await;
        (c, written)
    }
}

/// Runs one operation of a kind that gathers: alone while a turn is free, else with
/// those that meet it. `item` is what it asks, should it go with another's statement;
/// `alone` runs it by itself; `together` runs it with the others' items and gives its
/// own answer and theirs, in order.
async fn gathered<I, A>(
    gather: Arc<Gather<I, A>>,
    item: impl FnOnce() -> I,
    alone: impl AsyncFnOnce() -> Result<A, StoreError>,
    together: impl AsyncFnOnce(&[I]) -> Result<(A, Vec<A>), StoreError>,
) -> Result<A, StoreError> {
    match gather.turn(item) {
        Turn::Run(running) => {
            let answer = alone().await;
            drop(running);
            answer
        }
        Turn::Follow(reply) => {
            Box::pin(async move {
                match reply.await {
                    Ok(answer) => answer.map_err(StoreError::backend),
                    Err(_) => alone().await,
                }
            })
            .await
        }
        Turn::Lead(leader) => Box::pin(lead(leader, alone, together)).await,
    }
}

/// Waits for a turn, then runs the leader's operation with those gathered meanwhile,
/// and answers each.
async fn lead<I, A>(
    leader: Leader<I, A>,
    alone: impl AsyncFnOnce() -> Result<A, StoreError>,
    together: impl AsyncFnOnce(&[I]) -> Result<(A, Vec<A>), StoreError>,
) -> Result<A, StoreError> {
    let (running, followers) = leader.turn().await;
    if followers.is_empty() {
        let answer = alone().await;
        drop(running);
        return answer;
    }
    let (items, replies): (Vec<I>, Vec<_>) =
        followers.into_iter().map(|f| (f.item, f.reply)).unzip();
    let answers = together(&items).await;
    drop(running);
    match answers {
        Ok((own, theirs)) => {
            for (reply, answer) in replies.into_iter().zip(theirs) {
                let _ = reply.send(Ok(answer));
            }
            Ok(own)
        }
        Err(e) => {
            let e = Arc::new(e);
            for reply in replies {
                let _ = reply.send(Err(Arc::clone(&e)));
            }
            Err(StoreError::backend(e))
        }
    }
}

/// The row of `sid` among `rows`, sorted by sid.
fn find(rows: &[Found], sid: &str) -> Option<Row> {
    let at = rows.binary_search_by(|r| r.0.as_str().cmp(sid)).ok()?;
    let (_, sess, expire) = &rows[at];
    Some((sess.clone(), *expire))
}
