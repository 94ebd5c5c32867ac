//! The real stores: OS credential store through keyring-core (Secret Service on
//! Linux/BSD, Keychain on macOS, Credential Manager on Windows), the Linux kernel keyring,
//! and the explicit plaintext file. Built in `app.rs`.
