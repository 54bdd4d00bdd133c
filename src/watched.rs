//! [`Watched`]: the store as the middleware calls it. Every call passes the circuit
//! breaker, runs in a `session_store` span (store, operation, session tag, outcome,
//! latency), and is counted; a failure is logged once, naming the operation and store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::field::Empty;
use tracing::{Instrument, Level, Span};

use crate::breaker::{Admit, Breaker, Change, Report};
use crate::observe::{self, Event, Tagger};
use crate::record::SessionRecord;
use crate::store::{Loaded, SaveOutcome, SessionStore, StoreError, StoreFuture, Version};

/// The user's store behind the breaker and the instruments. One per middleware, shared
/// by every worker.
pub(crate) struct Watched {
    inner: Arc<dyn SessionStore>,
    /// The store's type name (`RedisStore`, ...), for spans, logs and metric labels.
    label: &'static str,
    breaker: Arc<Breaker>,
    tagger: Tagger,
}

/// The ID the circuit breaker's probe loads: no session has it (generated IDs are 32
/// base64url characters).
const PROBE_ID: &str = "circuit-breaker-probe";
/// How long a probe may take before it counts as failed.
const PROBE_LIMIT: Duration = Duration::from_secs(1);

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("store", &self.label)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

/// What a call's result counts as, and the word its span records.
type Judge<T> = fn(&T) -> (&'static str, Option<Event>);

impl Watched {
    pub(crate) fn new(
        inner: Arc<dyn SessionStore>,
        label: &'static str,
        breaker: Breaker,
        tagger: Tagger,
    ) -> Self {
        Watched {
            inner,
            label,
            breaker: Arc::new(breaker),
            tagger,
        }
    }

    /// One store call through the breaker and the instruments. Not boxed: the caller's
    /// future holds it (the store's own future is boxed once, by the store).
    async fn call<'a, T: 'a>(
        &'a self,
        op: &'static str,
        sid: Option<&'a str>,
        judge: Judge<T>,
        start: impl FnOnce(&'a dyn SessionStore) -> StoreFuture<'a, T>,
    ) -> Result<T, StoreError> {
        let admitted = self.breaker.admit();
        if admitted != Admit::Call {
            if admitted == Admit::StartProbe {
                self.probe();
            }
            observe::store_error(self.label, op, "unavailable");
            tracing::debug!(store = self.label, op, "circuit open: store call not tried");
            return Err(StoreError::Unavailable);
        }
        let span = self.span(op, sid);
        let mut turn = Turn {
            breaker: &self.breaker,
            admitted,
            report: Report::Abandoned,
        };
        // The clock only for someone who reads it.
        let started = (span.is_some() || cfg!(feature = "metrics")).then(Instant::now);
        let inner = start(&*self.inner);
        let result = match &span {
            Some(span) => inner.instrument(span.clone()).await,
            None => inner.await,
        };
        turn.report = self.settle(op, started, span.as_ref(), &result, judge);
        drop(turn);
        result
    }

    /// The call's `session_store` span, when something records it. Not even a disabled
    /// one otherwise: without a subscriber, tracing's `log` fallback (on in actix's
    /// dependency tree) would format its fields on every call.
    fn span(&self, op: &'static str, sid: Option<&str>) -> Option<Span> {
        if !tracing::enabled!(Level::DEBUG) {
            return None;
        }
        let span = tracing::debug_span!(
            "session_store",
            store = self.label,
            op,
            session = Empty,
            outcome = Empty,
            latency_us = Empty,
        );
        if span.is_disabled() {
            return None;
        }
        if let Some(sid) = sid {
            span.record("session", tracing::field::display(self.tagger.tag(sid)));
        }
        Some(span)
    }

    /// Counts, logs and records a finished call; what it tells the breaker.
    fn settle<T>(
        &self,
        op: &'static str,
        started: Option<Instant>,
        span: Option<&Span>,
        result: &Result<T, StoreError>,
        judge: Judge<T>,
    ) -> Report {
        let elapsed = started.map(|started| started.elapsed());
        if let Some(elapsed) = elapsed {
            observe::store_latency(self.label, op, elapsed.as_secs_f64());
        }
        let (outcome, report) = self.judge(op, result, judge);
        if let Some(span) = span {
            span.record("latency_us", elapsed.unwrap_or_default().as_micros());
            span.record("outcome", outcome);
        }
        report
    }

    /// A `load` the store answers at once ([`SessionStore::load_now`]), counted as any
    /// call. `None` when it cannot, and when the breaker is not plainly closed or a span
    /// would record the call: [`load`](Self::load) then makes it.
    pub(crate) fn load_now(&self, sid: &str) -> Option<Result<Option<Loaded>, StoreError>> {
        if !self.breaker.is_closed() || tracing::enabled!(Level::DEBUG) {
            return None;
        }
        let started = cfg!(feature = "metrics").then(Instant::now);
        let result = self.inner.load_now(sid)?;
        let outcome = self.settle("load", started, None, &result, loaded);
        report(&self.breaker, Admit::Call, outcome);
        Some(result)
    }

    /// Asks the store, in the background, whether it answers again: a `load` of an ID no
    /// session has, bounded by [`PROBE_LIMIT`].
    fn probe(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.breaker.report(Admit::Probe, Report::Abandoned);
            return;
        };
        let (store, breaker) = (Arc::clone(&self.inner), Arc::clone(&self.breaker));
        runtime.spawn(async move {
            let mut turn = Turn {
                breaker: &breaker,
                admitted: Admit::Probe,
                report: Report::Abandoned,
            };
            turn.report = match tokio::time::timeout(PROBE_LIMIT, store.load(PROBE_ID)).await {
                Ok(Ok(_)) => Report::Answered,
                Ok(Err(_)) | Err(_) => Report::Failed,
            };
        });
    }

    /// Counts and logs a finished call, and says what it tells the breaker.
    fn judge<T>(
        &self,
        op: &'static str,
        result: &Result<T, StoreError>,
        judge: Judge<T>,
    ) -> (&'static str, Report) {
        let e = match result {
            Ok(value) => {
                let (outcome, event) = judge(value);
                if let Some(event) = event {
                    observe::count(event);
                }
                return (outcome, Report::Answered);
            }
            Err(e) => e,
        };
        let (kind, report) = match e {
            StoreError::Backend(_) => ("backend", Report::Failed),
            StoreError::Serialization(_) => ("malformed", Report::Answered),
            StoreError::Unsupported(_) => ("unsupported", Report::Answered),
            StoreError::Unavailable => ("unavailable", Report::Failed),
        };
        observe::store_error(self.label, op, kind);
        if report == Report::Failed {
            tracing::error!(
                store = self.label,
                op,
                "session store call failed: {}",
                chain(e)
            );
        }
        (kind, report)
    }
}

/// A call's place in the breaker: reported when it finishes, or as abandoned when its
/// future is dropped first (its request went away), so a probe never holds the turn.
struct Turn<'a> {
    breaker: &'a Breaker,
    admitted: Admit,
    report: Report,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        report(self.breaker, self.admitted, self.report);
    }
}

/// Tells the breaker how a call it admitted ended, and logs when that opens or closes it.
fn report(breaker: &Breaker, admitted: Admit, report: Report) {
    match breaker.report(admitted, report) {
        Change::Opened => tracing::error!(
            "session store failing: circuit breaker open, failing fast for {:?} between probes",
            breaker.settings().cool_down
        ),
        Change::Closed => {
            tracing::warn!("session store answering again: circuit breaker closed")
        }
        Change::None => {}
    }
}

/// The error with its causes: `a: b: c`.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn loaded(found: &Option<Loaded>) -> (&'static str, Option<Event>) {
    match found {
        Some(_) => ("found", Some(Event::Loaded)),
        None => ("missing", None),
    }
}

fn saved<T>(_: &T) -> (&'static str, Option<Event>) {
    ("saved", Some(Event::Saved))
}

/// The store calls the middleware makes, each through [`Watched::call`].
impl Watched {
    pub(crate) async fn set<'a>(
        &'a self,
        sid: &'a str,
        rec: &'a SessionRecord,
    ) -> Result<(), StoreError> {
        self.call("set", Some(sid), saved, move |s| s.set(sid, rec))
            .await
    }

    pub(crate) async fn destroy<'a>(&'a self, sid: &'a str) -> Result<(), StoreError> {
        let judge: Judge<()> = |_| ("destroyed", Some(Event::Destroyed));
        self.call("destroy", Some(sid), judge, move |s| s.destroy(sid))
            .await
    }

    pub(crate) async fn touch<'a>(
        &'a self,
        sid: &'a str,
        rec: &'a SessionRecord,
    ) -> Result<(), StoreError> {
        let judge: Judge<()> = |_| ("touched", Some(Event::Touched));
        self.call("touch", Some(sid), judge, move |s| s.touch(sid, rec))
            .await
    }

    pub(crate) async fn load<'a>(&'a self, sid: &'a str) -> Result<Option<Loaded>, StoreError> {
        self.call("load", Some(sid), loaded, move |s| s.load(sid))
            .await
    }

    pub(crate) async fn create<'a>(
        &'a self,
        sid: &'a str,
        rec: &'a Arc<SessionRecord>,
    ) -> Result<Option<Version>, StoreError> {
        let judge: Judge<Option<Version>> = |created| match created {
            Some(_) => ("created", Some(Event::Created)),
            None => ("taken", None),
        };
        self.call("create", Some(sid), judge, move |s| s.create(sid, rec))
            .await
    }

    pub(crate) async fn save_if<'a>(
        &'a self,
        sid: &'a str,
        rec: &'a Arc<SessionRecord>,
        expected: &'a Version,
    ) -> Result<SaveOutcome, StoreError> {
        let judge: Judge<SaveOutcome> = |outcome| match outcome {
            SaveOutcome::Saved(_) => ("saved", Some(Event::Saved)),
            SaveOutcome::Conflict(_) => ("conflict", Some(Event::MergeConflict)),
            SaveOutcome::Gone => ("gone", Some(Event::ResurrectionPrevented)),
        };
        self.call("save_if", Some(sid), judge, move |s| {
            s.save_if(sid, rec, expected)
        })
        .await
    }
}
