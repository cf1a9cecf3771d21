//! Pure types shared by every oih crate: ids, the authenticated identity and OIH's permission
//! rules, and the event-bus envelope. Nothing here does I/O, so every layer may depend on it.

pub mod event;
pub mod id;
pub mod identity;

pub use event::{Event, EventHeaders};
pub use id::{ObjectId, ParseObjectIdError};
pub use identity::{Identity, Owner, OwnerType, StepScope};
