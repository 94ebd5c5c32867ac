//! Helpers shared by the integration tests: the real binary in a world of its own
//! (`cli`), a private Secret Service (`keyring`, also used by `tests/keyring_store.rs`), a
//! sandbox process (`sandbox`) and a headless Chromium over WebDriver (`webdriver`).

pub mod cli;
pub mod keyring;
pub mod sandbox;
pub mod webdriver;
