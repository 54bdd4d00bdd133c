//! The background task deleting expired rows, as connect-pg-simple's prune timer.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use ring::rand::SecureRandom;

use super::Inner;

/// Starts the pruning task once, from inside a Tokio runtime (the one actix-web runs
/// on). It holds only a weak reference, so it ends when the last store handle is dropped.
pub(super) fn ensure_pruner(inner: &Arc<Inner>) {
    let Some(every) = inner.prune_interval else {
        return;
    };
    if inner.pruning.load(Ordering::Relaxed) {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if inner.pruning.swap(true, Ordering::AcqRel) {
        return;
    }
    runtime.spawn(prune_forever(Arc::downgrade(inner), every));
}

/// Clears the `pruning` flag however the task ends (store dropped, runtime shut down),
/// so that a later call can start a new one.
struct PruneGuard(Weak<Inner>);

impl Drop for PruneGuard {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            inner.pruning.store(false, Ordering::Release);
        }
    }
}

async fn prune_forever(store: Weak<Inner>, every: Duration) {
    let _guard = PruneGuard(store.clone());
    loop {
        tokio::time::sleep(jittered(every)).await;
        let Some(inner) = store.upgrade() else { return };
        if let Err(e) = inner.prune().await {
            tracing::warn!(error = ?e, "pruning expired sessions failed");
        }
    }
}

/// `every` scaled by a random factor in [0.5, 1.5], as connect-pg-simple randomizes.
fn jittered(every: Duration) -> Duration {
    let mut bytes = [0; 4];
    let random = ring::rand::SystemRandom::new().fill(&mut bytes);
    let random = random.map_or(0.5, |()| {
        f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
    });
    every.mul_f64(0.5 + random)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_jittered_between_half_and_one_and_a_half() {
        let every = Duration::from_secs(100);
        for _ in 0..100 {
            let d = jittered(every);
            assert!(d >= every / 2 && d <= every * 3 / 2, "{d:?}");
        }
    }
}
