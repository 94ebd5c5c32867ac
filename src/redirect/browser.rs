//! Opening the login page in the user's browser, as a seam: commands talk to [`Browser`];
//! the real one is [`SystemBrowser`], tests use the testkit's `RecordingBrowser`. The caller always
//! prints the URL as well, so a browser that does not open costs nothing.

use std::process::{Command, Stdio};

use url::Url;

/// Whether a browser was started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowserOutcome {
    Opened,
    /// Nothing was started; the reason is safe to show ("no display (SSH session)").
    NotOpened(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrowserError {
    #[error("could not start the browser ({program}): {detail}")]
    Spawn { program: String, detail: String },
    /// A browser stand-in (the sandbox's self-play) could not do its part.
    #[error("{0}")]
    Failed(String),
}

pub trait Browser {
    /// Starts a browser at `url` and returns at once (never waits for the browser).
    fn open(&self, url: &Url) -> Result<BrowserOutcome, BrowserError>;

    /// Opens Kite's login page for a login by `client_id`. A person's browser just opens
    /// it (the person logs in as who they are); a stand-in that logs in itself (the
    /// sandbox's self-play) logs in as `client_id`, as the family member would.
    fn open_login(&self, url: &Url, client_id: &str) -> Result<BrowserOutcome, BrowserError> {
        let _ = client_id;
        self.open(url)
    }
}

/// What app.rs reads from the environment for [`SystemBrowser`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrowserEnv {
    /// `$BROWSER`: commands separated by `:`, each with `%s` for the URL or the URL appended.
    pub browser: Option<String>,
    /// A graphical session: on Linux/BSD `$DISPLAY` or `$WAYLAND_DISPLAY` is set; true on
    /// macOS and Windows.
    pub has_display: bool,
    /// `$SSH_CONNECTION` or `$SSH_TTY` is set.
    pub ssh: bool,
}

/// The platform's browser launcher, or `$BROWSER`.
#[derive(Debug, Clone)]
pub struct SystemBrowser {
    env: BrowserEnv,
}

impl SystemBrowser {
    pub fn new(env: BrowserEnv) -> Self {
        Self { env }
    }

    /// The commands that would be tried, in order (program, arguments). Empty when the
    /// session has no display and no `$BROWSER`.
    pub fn commands(&self, url: &Url) -> Vec<(String, Vec<String>)> {
        if let Some(list) = self.env.browser.as_deref().filter(|b| !b.trim().is_empty()) {
            return browser_var_commands(list, url.as_str());
        }
        if self.env.ssh || !self.env.has_display {
            return Vec::new();
        }
        vec![platform_command(url.as_str())]
    }
}

/// `$BROWSER` entries: split on `:`, `%s` replaced by the URL (or the URL appended),
/// `%%` is a literal `%`; arguments split on whitespace (no shell quoting).
fn browser_var_commands(list: &str, url: &str) -> Vec<(String, Vec<String>)> {
    list.split(':')
        .filter_map(|entry| {
            let mut words = entry.split_whitespace();
            let program = words.next()?.to_string();
            let mut substituted = false;
            let mut args: Vec<String> = words
                .map(|w| {
                    if w.contains("%s") {
                        substituted = true;
                    }
                    w.replace("%s", url).replace("%%", "%")
                })
                .collect();
            if !substituted {
                args.push(url.to_string());
            }
            Some((program, args))
        })
        .collect()
}

fn platform_command(url: &str) -> (String, Vec<String>) {
    if cfg!(target_os = "macos") {
        ("open".into(), vec![url.into()])
    } else if cfg!(windows) {
        // cmd treats `&` as a command separator; `^&` passes it through to `start`.
        (
            "cmd".into(),
            vec![
                "/c".into(),
                "start".into(),
                String::new(),
                url.replace('&', "^&"),
            ],
        )
    } else {
        ("xdg-open".into(), vec![url.into()])
    }
}

impl Browser for SystemBrowser {
    fn open(&self, url: &Url) -> Result<BrowserOutcome, BrowserError> {
        let commands = self.commands(url);
        if commands.is_empty() {
            let reason = if self.env.ssh {
                "no display (SSH session)"
            } else {
                "no display"
            };
            return Ok(BrowserOutcome::NotOpened(reason.into()));
        }
        let mut last_error = None;
        for (program, args) in &commands {
            #[allow(clippy::disallowed_methods)] // the browser adapter starts the opener
            let mut cmd = Command::new(program);
            match cmd
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(mut child) => {
                    // Reap it in the background so it leaves no zombie; nobody waits on it.
                    let _ = std::thread::Builder::new()
                        .name("kite-setup-browser".into())
                        .spawn(move || child.wait());
                    return Ok(BrowserOutcome::Opened);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    last_error = Some((program.clone(), None));
                }
                Err(e) => last_error = Some((program.clone(), Some(e.to_string()))),
            }
        }
        match last_error {
            Some((program, Some(detail))) => Err(BrowserError::Spawn { program, detail }),
            Some((program, None)) => Ok(BrowserOutcome::NotOpened(format!(
                "{program} is not installed"
            ))),
            None => Ok(BrowserOutcome::NotOpened("no browser command".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login() -> Url {
        Url::parse(
            "https://kite.zerodha.com/connect/login?v=3&api_key=k&redirect_params=state%3Dab",
        )
        .unwrap()
    }

    #[test]
    fn ssh_without_browser_var_does_not_try() {
        let b = SystemBrowser::new(BrowserEnv {
            browser: None,
            has_display: true,
            ssh: true,
        });
        assert!(b.commands(&login()).is_empty());
        assert_eq!(
            b.open(&login()).unwrap(),
            BrowserOutcome::NotOpened("no display (SSH session)".into())
        );
        let b = SystemBrowser::new(BrowserEnv::default());
        assert_eq!(
            b.open(&login()).unwrap(),
            BrowserOutcome::NotOpened("no display".into())
        );
    }

    #[test]
    fn browser_var_splits_on_colon_and_substitutes() {
        let b = SystemBrowser::new(BrowserEnv {
            browser: Some("w3m:firefox --new-tab %s:echo 100%% %s".into()),
            has_display: false,
            ssh: true,
        });
        let u = login();
        let cmds = b.commands(&u);
        assert_eq!(cmds.len(), 3);
        assert_eq!(cmds[0], ("w3m".into(), vec![u.to_string()]));
        assert_eq!(
            cmds[1],
            ("firefox".into(), vec!["--new-tab".into(), u.to_string()])
        );
        assert_eq!(cmds[2], ("echo".into(), vec!["100%".into(), u.to_string()]));
    }

    #[cfg(unix)]
    #[test]
    fn browser_var_falls_through_to_a_program_that_exists_and_does_not_wait() {
        let b = SystemBrowser::new(BrowserEnv {
            browser: Some("/nonexistent/kite-browser:sleep 5 %s".into()),
            has_display: false,
            ssh: false,
        });
        // `sleep 5 URL` fails at once or sleeps; either way open() must not wait on it.
        let started = std::time::Instant::now();
        assert_eq!(b.open(&login()).unwrap(), BrowserOutcome::Opened);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn missing_launcher_is_not_opened_not_an_error() {
        let b = SystemBrowser::new(BrowserEnv {
            browser: Some("/nonexistent/kite-browser".into()),
            has_display: true,
            ssh: false,
        });
        assert_eq!(
            b.open(&login()).unwrap(),
            BrowserOutcome::NotOpened("/nonexistent/kite-browser is not installed".into())
        );
    }

    #[test]
    fn platform_default_when_display_and_no_var() {
        let b = SystemBrowser::new(BrowserEnv {
            browser: Some("  ".into()),
            has_display: true,
            ssh: false,
        });
        let cmds = b.commands(&login());
        assert_eq!(cmds.len(), 1);
        assert!(cmds[0].1.last().unwrap().contains("kite.zerodha.com"));
    }
}
