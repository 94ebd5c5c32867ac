//! Where this run's sandbox is: `--sandbox-url`, one already at the default address, or
//! one started in this process.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::cli::GlobalArgs;
use crate::clock::SystemClock;
use crate::error::Error;
use crate::sandbox_client::SandboxClient;
use crate::ui::Ui;

use super::settings::Settings;

/// Where a sandbox is looked for before one is started in-process.
pub const DEFAULT_SANDBOX_URL: &str = "http://127.0.0.1:5010";

/// How long a call to the sandbox's control API may take (it is local).
const SANDBOX_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `--sandbox` waits for a sandbox at the default address before starting one.
const SANDBOX_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Where the sandbox is for this run, and the in-process one if we had to start it.
pub(super) struct SandboxSetup {
    pub(super) client: SandboxClient,
    _in_process: Option<crate::sandbox::SandboxHandle>,
}

pub(super) fn resolve_sandbox(
    global: &GlobalArgs,
    settings: &Settings,
    ui: &Ui,
) -> Result<Option<SandboxSetup>, Error> {
    if let Some(u) = &global.sandbox_url {
        let url = Url::parse(u).map_err(|e| {
            Error::usage(
                format!("--sandbox-url {u:?} is not a URL: {e}"),
                "e.g. --sandbox-url http://127.0.0.1:5010",
            )
        })?;
        if !crate::kite::client::is_loopback(&url) {
            // The sandbox is local by definition; a remote "sandbox" would receive the
            // api_key, checksums and tokens of every sandbox profile.
            return Err(Error::usage(
                format!(
                    "--sandbox-url {u:?} is not a loopback address: a sandbox runs on this machine"
                ),
                "e.g. --sandbox-url http://127.0.0.1:5010 (start one with `kite-setup sandbox`)",
            ));
        }
        let client = SandboxClient::new(&url, SANDBOX_TIMEOUT)?;
        client.clock_offset().map_err(|_| {
            Error::failed(
                format!("no sandbox answers at {url}"),
                "start one with `kite-setup sandbox`, or use --sandbox to run one in-process",
            )
        })?;
        return Ok(Some(SandboxSetup {
            client,
            _in_process: None,
        }));
    }
    if !global.sandbox {
        return Ok(None);
    }
    let default = Url::parse(DEFAULT_SANDBOX_URL).expect("static URL");
    let probe = SandboxClient::new(&default, SANDBOX_PROBE_TIMEOUT)?;
    if probe.clock_offset().is_ok() {
        return Ok(Some(SandboxSetup {
            client: SandboxClient::new(&default, SANDBOX_TIMEOUT)?,
            _in_process: None,
        }));
    }
    let handle = crate::sandbox::start(
        crate::sandbox::SandboxOptions {
            addr: "127.0.0.1:0".into(),
            state_path: Some(settings.data_dir()?.join("sandbox.json")),
            auto_approve: false,
        },
        Arc::new(SystemClock::default()),
    )?;
    handle.quiet();
    ui.say(format!(
        "(no sandbox at {DEFAULT_SANDBOX_URL}: started one in this process at {})",
        handle.url
    ));
    let client = SandboxClient::new(&handle.url, SANDBOX_TIMEOUT)?;
    Ok(Some(SandboxSetup {
        client,
        _in_process: Some(handle),
    }))
}
