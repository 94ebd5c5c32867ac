//! A prompter that answers from a script.

use crate::prompt::{PromptError, Prompter, Validator};
use crate::secret::Secret;

/// One scripted answer for `ScriptedPrompter`.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A typed line (input or secret); goes through the validator like a real answer.
    Text(String),
    /// A choice by the text of the item it must contain.
    Choose(String),
    Yes,
    No,
    /// Enter at a pause.
    Enter,
    /// Ctrl-C at this question.
    Interrupt,
}

/// A prompter for flow tests: answers come from a script of (question substring, answer).
/// It panics on a question the script did not expect and, when dropped, on answers left
/// unused, so a test notices when the flow asks more or less than it should. Validator
/// rejections are recorded in `rejections` and the next scripted answer is used.
pub struct ScriptedPrompter {
    script: std::sync::Mutex<std::collections::VecDeque<(String, Answer)>>,
    /// Every question asked, in order.
    pub asked: std::sync::Mutex<Vec<String>>,
    /// Validator messages for rejected answers.
    pub rejections: std::sync::Mutex<Vec<String>>,
}

impl ScriptedPrompter {
    pub fn new(script: Vec<(&str, Answer)>) -> Self {
        Self {
            script: std::sync::Mutex::new(
                script
                    .into_iter()
                    .map(|(q, a)| (q.to_string(), a))
                    .collect(),
            ),
            asked: std::sync::Mutex::default(),
            rejections: std::sync::Mutex::default(),
        }
    }

    fn next(&self, prompt: &str) -> Answer {
        self.asked.lock().expect("lock").push(prompt.to_string());
        let Some((expect, answer)) = self.script.lock().expect("lock").pop_front() else {
            panic!("unexpected question (script is empty): {prompt:?}");
        };
        assert!(
            prompt.to_lowercase().contains(&expect.to_lowercase()),
            "unexpected question: {prompt:?}, the script expected one containing {expect:?}"
        );
        answer
    }

    fn text(&self, prompt: &str, validate: Validator<'_>) -> Result<String, PromptError> {
        loop {
            match self.next(prompt) {
                Answer::Text(t) => match validate(t.trim()) {
                    Ok(()) => return Ok(t),
                    Err(msg) => self.rejections.lock().expect("lock").push(msg),
                },
                Answer::Interrupt => return Err(PromptError::Interrupted),
                other => panic!("question {prompt:?} wants text, the script has {other:?}"),
            }
        }
    }

    pub fn remaining(&self) -> usize {
        self.script.lock().expect("lock").len()
    }
}

impl Drop for ScriptedPrompter {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let left = self.script.lock().expect("lock");
            assert!(left.is_empty(), "scripted answers never used: {left:?}");
        }
    }
}

impl Prompter for ScriptedPrompter {
    fn input(
        &self,
        prompt: &str,
        default: Option<&str>,
        validate: Validator<'_>,
    ) -> Result<String, PromptError> {
        let t = self.text(prompt, validate)?;
        if t.is_empty()
            && let Some(d) = default
        {
            return Ok(d.to_string());
        }
        Ok(t.trim().to_string())
    }

    fn secret(&self, prompt: &str, validate: Validator<'_>) -> Result<Secret, PromptError> {
        self.text(prompt, validate).map(Secret::new)
    }

    fn select(&self, prompt: &str, items: &[&str], _default: usize) -> Result<usize, PromptError> {
        match self.next(prompt) {
            Answer::Choose(want) => Ok(items
                .iter()
                .position(|i| i.to_lowercase().contains(&want.to_lowercase()))
                .unwrap_or_else(|| panic!("no item containing {want:?} in {items:?}"))),
            Answer::Interrupt => Err(PromptError::Interrupted),
            other => panic!("question {prompt:?} wants a choice, the script has {other:?}"),
        }
    }

    fn confirm(&self, prompt: &str, _default: bool) -> Result<bool, PromptError> {
        match self.next(prompt) {
            Answer::Yes => Ok(true),
            Answer::No => Ok(false),
            Answer::Interrupt => Err(PromptError::Interrupted),
            other => panic!("question {prompt:?} wants yes/no, the script has {other:?}"),
        }
    }

    fn pause(&self, prompt: &str) -> Result<(), PromptError> {
        match self.next(prompt) {
            Answer::Enter => Ok(()),
            Answer::Interrupt => Err(PromptError::Interrupted),
            other => panic!("pause {prompt:?} wants Enter, the script has {other:?}"),
        }
    }
}
