//! placeholder docs
mod cookie;
mod encoding;
mod id;
mod record;
mod signature;
pub mod store;

pub use cookie::{CookieOptions, Priority, SameSite, Secure, SessionCookie};
pub use id::{generate_id, uuid_v4_id};
pub use record::{Fingerprint, SessionRecord};
pub use signature::{sign, unsign, Secrets};
pub use store::MemoryStore;
