//! Pure types shared by every oih crate: ids, the authenticated identity and OIH's permission
//! rules, the event-bus envelope, and a small time-bounded cache. Nothing here does I/O, so
//! every layer may depend on it.

pub mod cache;
pub mod event;
pub mod id;
pub mod identity;

pub use cache::TtlCache;
pub use event::{Event, EventHeaders};
pub use id::{ObjectId, ParseObjectIdError};
pub use identity::{Identity, Owner, OwnerType, StepScope};
