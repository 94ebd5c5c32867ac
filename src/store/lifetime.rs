//! How long each store keeps what kite-setup wrote, as `doctor` says it (measured, see the
//! README's "The bot on a server" section).

use crate::cli::StoreChoice;

/// One line on the store's lifetime, for `doctor`.
pub fn describe(choice: StoreChoice) -> &'static str {
    match choice {
        // Measured on Linux 6.18: a key in @u written by an SSH session that then ended,
        // and by a UID whose last process then exited, was still read by a later session.
        StoreChoice::Keyutils => {
            "kept until reboot: outlives SSH sessions, logouts and restarts of the bot as the same user; lost at reboot (push again after one)"
        }
        StoreChoice::File => "survives reboot (a plaintext file: chosen with --store file)",
        StoreChoice::SandboxFile => {
            "survives reboot (the sandbox-only plaintext file; sandbox profiles only)"
        }
        StoreChoice::Auto if cfg!(any(target_os = "macos", target_os = "windows")) => {
            "survives reboot (the OS credential store)"
        }
        StoreChoice::Auto => {
            "survives reboot on disk, but readable only while a Secret Service runs unlocked in your D-Bus session (not on a headless server after you log out)"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_keyring_says_it_is_lost_at_reboot() {
        assert!(describe(StoreChoice::Keyutils).contains("lost at reboot"));
        assert!(describe(StoreChoice::File).contains("plaintext"));
    }
}
