//! [`Context`]: what every request of one worker shares (the configuration, the store
//! and the save gate), below both the middleware and the session.

use std::cell::RefCell;
use std::sync::Arc;

use crate::config::Config;
use crate::gate::Gate;
use crate::verified::Verified;
use crate::watched::Watched;

/// What every request of one worker shares.
pub(crate) struct Context {
    pub(crate) config: Arc<Config>,
    /// The user's store behind the breaker and the instruments.
    pub(crate) store: Arc<Watched>,
    /// Shared by every worker: conflicting saves of one session retry in turn.
    pub(crate) gate: Arc<Gate>,
    /// This worker's cookies already verified.
    pub(crate) verified: RefCell<Verified>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
