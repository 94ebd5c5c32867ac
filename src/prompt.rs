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

/// The real prompter: dialoguer on the terminal's stderr, so stdout stays data-only.
pub struct TerminalPrompter {
    term: console::Term,
    theme: dialoguer::theme::ColorfulTheme,
}

impl TerminalPrompter {
    pub fn new() -> Self {
        Self {
            term: console::Term::stderr(),
            theme: dialoguer::theme::ColorfulTheme::default(),
        }
    }
}

impl Default for TerminalPrompter {
    fn default() -> Self {
        Self::new()
    }
}

fn map_dialoguer(e: dialoguer::Error, what: &str) -> PromptError {
    let dialoguer::Error::IO(io) = e;
    match io.kind() {
        std::io::ErrorKind::Interrupted => PromptError::Interrupted,
        std::io::ErrorKind::NotConnected => PromptError::NoTerminal {
            missing: what.to_string(),
        },
        _ => PromptError::Io(io.to_string()),
    }
}

impl Prompter for TerminalPrompter {
    fn input(
        &self,
        prompt: &str,
        default: Option<&str>,
        validate: Validator<'_>,
    ) -> Result<String, PromptError> {
        let mut input = dialoguer::Input::<String>::with_theme(&self.theme)
            .with_prompt(prompt)
            .validate_with(|s: &String| validate(s.trim()));
        if let Some(d) = default {
            input = input.default(d.to_string());
        }
        input
            .interact_text_on(&self.term)
            .map(|s| s.trim().to_string())
            .map_err(|e| map_dialoguer(e, prompt))
    }

    fn secret(&self, prompt: &str, validate: Validator<'_>) -> Result<Secret, PromptError> {
        dialoguer::Password::with_theme(&self.theme)
            .with_prompt(prompt)
            .validate_with(|s: &String| validate(s.as_str()))
            .interact_on(&self.term)
            .map(Secret::new)
            .map_err(|e| map_dialoguer(e, prompt))
    }

    fn select(&self, prompt: &str, items: &[&str], default: usize) -> Result<usize, PromptError> {
        dialoguer::Select::with_theme(&self.theme)
            .with_prompt(prompt)
            .items(items)
            .default(default)
            .interact_on(&self.term)
            .map_err(|e| map_dialoguer(e, prompt))
    }

    fn confirm(&self, prompt: &str, default: bool) -> Result<bool, PromptError> {
        dialoguer::Confirm::with_theme(&self.theme)
            .with_prompt(prompt)
            .default(default)
            .interact_on(&self.term)
            .map_err(|e| map_dialoguer(e, prompt))
    }

    fn pause(&self, prompt: &str) -> Result<(), PromptError> {
        dialoguer::Input::<String>::with_theme(&self.theme)
            .with_prompt(prompt)
            .allow_empty(true)
            .show_default(false)
            .interact_text_on(&self.term)
            .map(|_| ())
            .map_err(|e| map_dialoguer(e, prompt))
    }
}

/// A prompter for `--no-input` runs: every question is an error naming what was needed.
pub struct NoInputPrompter;

impl Prompter for NoInputPrompter {
    fn input(
        &self,
        prompt: &str,
        _: Option<&str>,
        _: Validator<'_>,
    ) -> Result<String, PromptError> {
        Err(PromptError::NoTerminal {
            missing: prompt.to_string(),
        })
    }
    fn secret(&self, prompt: &str, _: Validator<'_>) -> Result<Secret, PromptError> {
        Err(PromptError::NoTerminal {
            missing: prompt.to_string(),
        })
    }
    fn select(&self, prompt: &str, _: &[&str], _: usize) -> Result<usize, PromptError> {
        Err(PromptError::NoTerminal {
            missing: prompt.to_string(),
        })
    }
    fn confirm(&self, prompt: &str, _: bool) -> Result<bool, PromptError> {
        Err(PromptError::NoTerminal {
            missing: prompt.to_string(),
        })
    }
    fn pause(&self, _: &str) -> Result<(), PromptError> {
        Ok(())
    }
}
