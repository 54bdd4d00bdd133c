//! A test kit for [`SessionStore`] implementations: the conformance suite that every
//! built-in store passes, ready to run from your own store's tests.
//!
//! Enable the `testing` feature for your tests only:
//!
//! ```toml
//! [dev-dependencies]
//! actix-express-session = { version = "0.1", features = ["testing"] }
//! ```
//!
//! then give the suite an empty store of its own (its own key prefix, schema or
//! database) in one test:
//!
//! ```no_run
//! # use actix_express_session::MemoryStore as MyStore;
//! use actix_express_session::testing::conformance;
//!
//! #[tokio::test] // or #[actix_rt::test]: the suite needs a Tokio runtime with timers
//! async fn my_store_passes_the_conformance_suite() {
//!     conformance(MyStore::new()).await;
//! }
//! # fn main() {}
//! ```
//!
//! Like `assert!`, the suite panics at the first violation, with a message that names
//! the check: ``store conformance check `destroy_removes` failed: ...``. Each check
//! removes what it wrote, so a passing run leaves the store as empty as it found it. A
//! run takes about five seconds, as two checks wait for sessions to expire.
//!
//! # What it holds a store to
//!
//! - **Required methods** (`get`, `set`, `destroy`): every check. A record reads back
//!   exactly as written (big and Unicode payloads too), overwrites replace, `destroy`
//!   removes one session, expired sessions are invisible, concurrent writers all land.
//! - **Optional methods** (`all`, `len`, `clear`): a store may answer
//!   [`StoreError::Unsupported`] and still pass. The assertions on that method are left
//!   out, and the [`Report`] marks the checks that left them out as [`Outcome::Partial`]
//!   and lists the method in [`Report::unsupported`]. Any other error fails.
//! - **Recommended methods** (`touch`, `load`, `create`, `save_if`): the trait's default
//!   methods (over `get` and `set`) pass every check that holds for one writer at a
//!   time: versions, compare-and-set, a taken ID refused, no save onto a destroyed
//!   session. The default `touch` is `set`, which rewrites the data and can create a
//!   session: accepted, and reported as a partial check.
//! - **Atomicity**, only when you claim it with [`Conformance::atomic`]: concurrent
//!   `create`s of one ID give one winner, concurrent `save_if`s onto one version give
//!   one winner, a save racing a destroy never resurrects the session, and `touch`
//!   keeps the stored data and never creates. This is what the
//!   [conditional writes](crate::store#conditional-writes) of the store docs call an
//!   atomic store; the built-in stores all claim it.
//!
//! [`StoreError::Unsupported`]: crate::store::StoreError::Unsupported

// A test kit: its contract is to panic, like `assert!`, when a store breaks a rule.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

use crate::encoding::{format_iso, now_ms};
use crate::store::SessionStore;
use crate::SessionRecord;
use kit::Kit;

mod checks;
mod kit;
mod races;
mod record;
mod report;

pub use record::record;
pub use report::{Outcome, Report};

/// Runs the conformance suite on `store`, which must start empty, holding it to every
/// rule except atomicity (see the [module docs](self)); the same as
/// `Conformance::new(store).run()`. Needs a Tokio runtime with timers, as
/// `#[tokio::test]` and `#[actix_rt::test]` give.
///
/// # Panics
/// At the first rule the store breaks, naming the check.
pub async fn conformance<S: SessionStore>(store: S) -> Report {
    Conformance::new(store).run().await
}

/// The conformance suite with options: [`conformance`] for a store that claims more.
///
/// ```
/// use actix_express_session::testing::Conformance;
/// use actix_express_session::MemoryStore;
///
/// # actix_web::rt::System::new().block_on(async {
/// let report = Conformance::new(MemoryStore::new()).atomic(true).run().await;
/// assert!(report.all_passed(), "{report}");
/// # });
/// ```
#[must_use = "call .run().await to run the suite"]
pub struct Conformance<S> {
    store: S,
    atomic: bool,
}

impl<S> fmt::Debug for Conformance<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conformance")
            .field("atomic", &self.atomic)
            .finish_non_exhaustive()
    }
}

impl<S: SessionStore> Conformance<S> {
    /// The suite for `store`, which must start empty; nothing claimed beyond the trait.
    pub fn new(store: S) -> Self {
        Conformance {
            store,
            atomic: false,
        }
    }

    /// Whether the store claims atomic conditional writes (default `false`): `create`
    /// and `save_if` check and write in one step, and `touch` only extends a live
    /// record. When `true` the race checks run and `touch` must not act as `set`; when
    /// `false` the race checks are [skipped](Outcome::Skipped).
    pub fn atomic(mut self, atomic: bool) -> Self {
        self.atomic = atomic;
        self
    }

    /// Runs every check, in order, and reports what each one did.
    ///
    /// # Panics
    /// At the first rule the store breaks, naming the check.
    pub async fn run(self) -> Report {
        let kit = Kit::new(self.store, self.atomic);
        let mut run = Runner {
            kit: &kit,
            report: Report::default(),
        };
        macro_rules! checks {
            ($how:ident, $module:ident: $($name:ident),* $(,)?) => {
                $(run.$how(stringify!($name), $module::$name(&kit)).await;)*
            };
        }
        checks!(every_store, checks:
            unknown_ids_are_absent,
            destroy_removes,
            set_then_get_returns_the_same_record,
            set_overwrites,
            big_and_unicode_payloads_survive,
            all_len_and_clear_see_every_session,
            concurrent_writers_all_land,
            touch_extends_life_without_rewriting_data,
            expired_sessions_are_invisible,
            conditional_writes,
        );
        checks!(atomic_only, races:
            concurrent_creates_give_one_winner,
            concurrent_saves_give_one_winner,
            a_save_racing_a_destroy_never_resurrects,
        );
        checks!(every_store, checks: the_suite_leaves_the_store_empty);
        run.report.unsupported = kit.unsupported();
        run.report
    }
}

/// Runs checks one by one, catching a failure to name the check in the panic.
struct Runner<'k, S> {
    kit: &'k Kit<S>,
    report: Report,
}

impl<S: SessionStore> Runner<'_, S> {
    /// Runs a check that holds for every store.
    async fn every_store(&mut self, name: &'static str, check: impl Future<Output = ()>) {
        if let Err(panic) = AssertUnwindSafe(check).catch_unwind().await {
            panic!(
                "store conformance check `{name}` failed: {}",
                panic_message(&*panic)
            );
        }
        let left_out = self.kit.take_left_out();
        let outcome = if left_out.is_empty() {
            Outcome::Passed
        } else {
            Outcome::Partial(left_out.join("; "))
        };
        self.report.checks.push((name, outcome));
    }

    /// Runs a check that only an atomic store passes, if the store claims atomicity.
    async fn atomic_only(&mut self, name: &'static str, check: impl Future<Output = ()>) {
        if self.kit.atomic {
            return self.every_store(name, check).await;
        }
        let why = "atomicity not claimed (`Conformance::atomic`)".to_owned();
        self.report.checks.push((name, Outcome::Skipped(why)));
    }
}

/// The text of a panic payload (`panic!` and the `assert!` family give a string).
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(text) = panic.downcast_ref::<String>() {
        text
    } else if let Some(text) = panic.downcast_ref::<&str>() {
        text
    } else {
        "(a panic without a message)"
    }
}
