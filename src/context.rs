//! [`Context`]: what every request of one worker shares (the configuration, the store
//! and the save gate), below both the middleware and the session.

use std::cell::RefCell;
use std::sync::Arc;

use crate::config::Config;
use crate::gate::Gate;
use crate::store::SessionStore;
use crate::verified::Verified;

/// What every request of one worker shares.
pub(crate) struct Context {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Arc<dyn SessionStore>,
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
