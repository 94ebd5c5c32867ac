//! What kite-setup and its emulated Kite both know about Kite Connect's wire
//! (docs/kite-wire.md): the envelope, the user record in sessions and profiles, the
//! error types, the checksum, the 06:00 IST rule, `Secret`, the plans, and the sandbox's
//! control API types (docs/sandbox.md). Pure data and rules: no I/O, no clock.

pub mod checksum;
pub mod control;
pub mod envelope;
pub mod error_type;
pub mod plan;
pub mod secret;
pub mod time;
pub mod user;

pub use checksum::{checksum, hex};
pub use error_type::ErrorType;
pub use plan::Plan;
pub use secret::Secret;
pub use user::{SessionData, User, UserProfile};
