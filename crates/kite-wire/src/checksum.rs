//! The token-exchange checksum (docs/kite-wire.md "Checksum").

use sha2::{Digest, Sha256};

use crate::Secret;

/// Lowercase hex SHA-256 of api_key + request_token + api_secret. The secret itself
/// never travels; the sandbox computes the same value to check it.
pub fn checksum(api_key: &Secret, request_token: &str, api_secret: &Secret) -> String {
    let mut h = Sha256::new();
    h.update(api_key.expose().as_bytes());
    h.update(request_token.as_bytes());
    h.update(api_secret.expose().as_bytes());
    hex(&h.finalize())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_vectors() {
        assert_eq!(
            checksum(&"xxx".into(), "yyy", &"zzz".into()),
            "cc6c955cadf2cc09442c0848ce8e165b8f9aa5974916de7186a9e1b6c4e7937e"
        );
        assert_eq!(
            checksum(&"api_key".into(), "request_token", &"api_secret".into()),
            "ff6a6d3d60c9d974df906ba6f787ac38300cfa68b41801b486ea1007e52e8942"
        );
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
