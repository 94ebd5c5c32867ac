//! Test doubles for this crate's unit tests and its integration tests under `tests/`: a
//! Kite that plays one user, a memory store, a fixed clock, a scripted prompter, a
//! recording browser, a redirect listener without sockets and a monotonic clock it moves,
//! captured output, and a `Ctx` wired to them.
//!
//! Compiled only for `cargo test` and with the `testkit` feature (which the integration
//! tests enable through the package's dev-dependency on itself); release builds never
//! contain it.

mod browser;
mod clock;
mod flow;
mod prompt;
mod redirect;
mod store;
mod ui;

pub use browser::RecordingBrowser;
pub use clock::FixedClock;
pub use flow::{
    FakeKite, FakeReadiness, Harness, MemoryStores, OK_QUERY, kite_browser, kite_error,
    redirect_url, redirected_url, with_ctx, with_ctx_on,
};
pub use prompt::{Answer, ScriptedPrompter};
pub use redirect::{FakeRedirect, ManualMonotonic};
pub use store::MemoryStore;
pub use ui::Capture;
