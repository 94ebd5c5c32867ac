//! Random codes (client IDs, keys, secrets, tokens) and TOTP checks for the sandbox's
//! accounts; `state` re-exports them.

use jiff::Timestamp;
use kite_wire::Secret;

/// Random values from the OS. A failing OS RNG is unrecoverable, so this panics.
pub fn random_from(alphabet: &[u8], len: usize) -> String {
    // Rejection sampling keeps the distribution uniform.
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut buf = [0u8; 64];
        getrandom::fill(&mut buf).expect("the OS random number generator works");
        for b in buf {
            if usize::from(b) < limit && out.len() < len {
                out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
            }
        }
    }
    out
}

pub const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
pub const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// 32 mixed-case alphanumerics (secrets and tokens).
pub fn random_token() -> String {
    random_from(ALNUM, 32)
}

/// Checks a 6-digit TOTP code against a base32 secret at `now`, allowing ±1 step.
pub fn totp_ok(secret_b32: &Secret, code: &str, now: Timestamp) -> bool {
    let Some(totp) = totp_for(secret_b32) else {
        return false;
    };
    let Ok(secs) = u64::try_from(now.as_second()) else {
        return false;
    };
    totp.check(code.trim(), secs).is_some()
}

/// The current code (for the demo convenience line and the banner).
pub fn totp_now(secret_b32: &Secret, now: Timestamp) -> Option<String> {
    let totp = totp_for(secret_b32)?;
    let secs = u64::try_from(now.as_second()).ok()?;
    Some(totp.generate(secs).to_string())
}

fn totp_for(secret_b32: &Secret) -> Option<totp_rs::Totp> {
    let bytes = totp_rs::Secret::try_from_base32(secret_b32.expose()).ok()?;
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(bytes)
        .build()
        .ok()
}
