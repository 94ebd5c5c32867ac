//! `Secret`: the one type that carries an api_secret, api_key, password or token.
//!
//! It has no `Display` and a redacted `Debug`, so a secret cannot reach a log line or an
//! error message by accident; the bytes are wiped when it is dropped. Reading the value
//! takes an explicit, greppable `expose()` call.

use std::fmt;

use zeroize::Zeroize;

/// A secret string: redacted `Debug`, no `Display`, zeroized on drop.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value. The caller's copy moves in, so no unwiped copy stays behind.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret value. Every call site is a place where the secret leaves its wrapper:
    /// keep them few (checksum, HTTP request, keyring write, input validation, the leak
    /// scan's needles, `token`/`env`/`exec` output, the sandbox's own answers).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The value without surrounding whitespace (a pasted secret often ends in a
    /// newline or space). Copies inside the wrapper, so no unwiped `String` is left over.
    #[must_use]
    pub fn trimmed(&self) -> Self {
        Self(self.0.trim().to_string())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// A display form that is safe to show: the first and last four characters of a
    /// long value (`abcd…wxyz`), or only stars for a short one. Used for api keys only.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() >= 12 {
            let head: String = chars[..4].iter().collect();
            let tail: String = chars[chars.len() - 4..].iter().collect();
            format!("{head}…{tail}")
        } else {
            "****".to_string()
        }
    }

    /// Compares in time that does not depend on where the values differ.
    pub fn ct_eq(&self, other: &Secret) -> bool {
        let a = self.0.as_bytes();
        let b = other.0.as_bytes();
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other)
    }
}

impl Eq for Secret {}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// Serializes the real value: only for the keyring payloads and the sandbox's wire
/// answers, which are the places a secret is meant to go. Never derive `Serialize` on
/// a type that is logged or written to the metadata file.
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::from("canary-secret-value");
        let shown = format!("{s:?} {:?}", vec![s.clone()]);
        assert!(!shown.contains("canary"), "{shown}");
        assert!(shown.contains("REDACTED"));
    }

    #[test]
    fn masked_shows_only_ends() {
        assert_eq!(Secret::from("abcd1234efgh5678").masked(), "abcd…5678");
        assert_eq!(Secret::from("short").masked(), "****");
    }

    #[test]
    fn equality_is_by_value() {
        assert_eq!(Secret::from("a1"), Secret::from("a1"));
        assert_ne!(Secret::from("a1"), Secret::from("a2"));
        assert_ne!(Secret::from("a1"), Secret::from("a12"));
    }
}
