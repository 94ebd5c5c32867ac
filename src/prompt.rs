//! Questions to the user as a dependency: commands ask a `Prompter`; the real one is
//! dialoguer on the terminal, tests use a scripted one.

use crate::secret::Secret;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PromptError {
    #[error("interrupted")]
    Interrupted,
    /// No terminal to ask on; `missing` names what was being asked for.
    #[error("no terminal to ask for {missing}")]
    NoTerminal { missing: String },
    #[error("terminal error: {0}")]
    Io(String),
}

/// A validator: `Ok` or a one-line reason shown under the prompt, then asked again.
pub type Validator<'a> = &'a dyn Fn(&str) -> Result<(), String>;

pub trait Prompter {
    /// A visible line of text, trimmed; asked again until `validate` accepts it.
    fn input(
        &self,
        prompt: &str,
        default: Option<&str>,
        validate: Validator<'_>,
    ) -> Result<String, PromptError>;
    /// A hidden line (no echo); asked again until `validate` accepts it.
    fn secret(&self, prompt: &str, validate: Validator<'_>) -> Result<Secret, PromptError>;
    /// One of `items`; returns its index.
    fn select(&self, prompt: &str, items: &[&str], default: usize) -> Result<usize, PromptError>;
    fn confirm(&self, prompt: &str, default: bool) -> Result<bool, PromptError>;
    /// Waits for Enter.
    fn pause(&self, prompt: &str) -> Result<(), PromptError>;
}
