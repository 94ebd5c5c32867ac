//! Randomness: the one module that asks the OS random source (login nonces, temporary
//! file names, keyring probe names). Nothing here needs to be replayed in a test: a test
//! reads the nonce back from the login URL it was given.

/// Fills `buf` from the OS random source.
pub fn fill(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    #[allow(clippy::disallowed_methods)] // the one call site of the OS random source
    getrandom::fill(buf)
}
