//! Profiles and their non-secret metadata: one TOML file (`config.toml`) in the platform
//! config directory (or `KITE_SETUP_CONFIG_DIR`), directory 0700, file 0600, written
//! atomically (temp file in the same directory, fsync, rename). Never holds a secret.
//!
//! Files are only ever regular files: a target that is anything else (a symlink, a FIFO,
//! a device such as `/dev/stdout`) is refused, never replaced. A directory kite-setup
//! creates is made 0700; an existing one is never chmod-ed, and is refused when others
//! could write to it or someone else owns it.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::cli::{Plan, StoreChoice};
use crate::error::{Fix, RunFlags};

pub const CONFIG_FILE: &str = "config.toml";

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("the config file {path} cannot be read: {detail}")]
    Corrupt { path: String, detail: String },
    #[error("cannot {op} {path}: {detail}")]
    Io {
        op: String,
        path: String,
        detail: String,
    },
    #[error("{0:?} is not a valid profile name")]
    BadProfileName(String),
    /// Another process kept the config file's lock (or it cannot be taken).
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    /// A path kite-setup reads or writes is there but not a regular file.
    #[error("{path} is {kind}, not a regular file")]
    NotRegular { path: String, kind: String },
    /// An existing directory others could change files in.
    #[error("the directory {path} is not private: {why}")]
    UnsafeDir { path: String, why: String },
}

impl ConfigError {
    /// The fix as a run of the default live profile would read it (tests; commands
    /// render [`ConfigError::fix`] with their run's flags).
    pub fn hint(&self) -> String {
        self.fix().render(&RunFlags::default())
    }

    pub fn fix(&self) -> Fix {
        match self {
            ConfigError::Corrupt { path, .. } => {
                Fix::text(format!("fix or move away {path} (it holds no secrets; "))
                    .and_run("init")
                    .and(" writes a new one)")
            }
            ConfigError::Io { .. } => {
                "check the directory's owner and permissions, or set KITE_SETUP_CONFIG_DIR".into()
            }
            ConfigError::BadProfileName(_) => "use 1-32 letters, digits, '-' or '_'".into(),
            ConfigError::Lock(e) => e.fix(),
            ConfigError::NotRegular { path, .. } => Fix::text(format!(
                "kite-setup reads and writes only regular files (it never replaces anything else): move {path} away, or choose another path"
            )),
            ConfigError::UnsafeDir { path, .. } => Fix::text(format!(
                "use a directory only you own and can write, e.g. `chmod go-w {path}`, or set KITE_SETUP_CONFIG_DIR to a new path (kite-setup creates it 0700)"
            )),
        }
    }
}

/// Checks a profile name: 1-32 of `[A-Za-z0-9_-]`.
pub fn validate_profile_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::BadProfileName(name.to_string()))
    }
}

/// What kite-setup remembers about one profile, besides the secrets in the keyring.
///
/// A profile is one client ID with its own daily session, on one app (docs/apps.md). The
/// app's settings below (`plan`, `redirect_url`, `store`, `app_name`) are the same in every
/// profile on that app: the commands that change them write them to all of its profiles
/// in one config update ([`Config::sync_app_settings`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileMeta {
    /// The Zerodha client ID this profile logs in as.
    pub client_id: String,
    /// The app whose api_key and api_secret this profile uses (keyring entries
    /// `apps/<app>/…`). `None` for a profile an earlier kite-setup wrote, whose credentials
    /// are still filed under its own name until a command migrates them
    /// (`commands::apps::migrate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    pub plan: Plan,
    /// The redirect URL registered for the app; the listener binds exactly there.
    pub redirect_url: String,
    /// Where this profile's secrets are.
    pub store: StoreChoice,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    /// The account holder's name as Kite reported it at verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// False when stored with --skip-verify.
    pub verified: bool,
    /// The last order probe (static IP rule per address family) and when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orders: Option<crate::commands::orders_probe::OrdersRecord>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ProfileMeta {
    /// Takes the app's settings as `src` (a profile on the same app) has them.
    fn copy_app_settings(&mut self, src: &ProfileMeta) {
        self.plan = src.plan;
        self.redirect_url.clone_from(&src.redirect_url);
        self.store = src.store;
        self.app_name.clone_from(&src.app_name);
    }
}

/// The whole metadata file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, ProfileMeta>,
    /// Profiles made against the sandbox, apart from live ones.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sandbox_profiles: BTreeMap<String, ProfileMeta>,
}

impl Config {
    pub fn profiles(&self, sandbox: bool) -> &BTreeMap<String, ProfileMeta> {
        if sandbox {
            &self.sandbox_profiles
        } else {
            &self.profiles
        }
    }

    pub fn profiles_mut(&mut self, sandbox: bool) -> &mut BTreeMap<String, ProfileMeta> {
        if sandbox {
            &mut self.sandbox_profiles
        } else {
            &mut self.profiles
        }
    }

    pub fn get(&self, name: &str, sandbox: bool) -> Option<&ProfileMeta> {
        self.profiles(sandbox).get(name)
    }

    /// The profiles on app `app`, by name.
    pub fn profiles_on_app<'a>(
        &'a self,
        app: &'a str,
        sandbox: bool,
    ) -> impl Iterator<Item = (&'a String, &'a ProfileMeta)> + 'a {
        self.profiles(sandbox)
            .iter()
            .filter(move |(_, m)| m.app.as_deref() == Some(app))
    }

    /// Whether a profile other than `except` uses app `app`.
    pub fn app_used_by_others(&self, app: &str, except: &str, sandbox: bool) -> bool {
        self.profiles_on_app(app, sandbox)
            .any(|(name, _)| name != except)
    }

    /// A name for a new app: `wanted` (the first profile's name) unless an app or another
    /// profile's legacy entries already go by it, then `wanted-2`, `wanted-3`, ...
    pub fn fresh_app_id(&self, wanted: &str, sandbox: bool) -> String {
        let taken = |id: &str| {
            self.profiles(sandbox).iter().any(|(name, m)| {
                m.app.as_deref() == Some(id) || (m.app.is_none() && name == id && name != wanted)
            })
        };
        if !taken(wanted) {
            return wanted.to_string();
        }
        // At most one id per profile is taken, so one of the next `len + 1` is free.
        (2..=self.profiles(sandbox).len() + 2)
            .map(|n| format!("{wanted}-{n}"))
            .find(|id| !taken(id))
            .unwrap_or_else(|| format!("{wanted}-x"))
    }

    /// Gives `to` the app settings its app's other profiles have (a profile that has just
    /// joined the app); nothing when it is the app's only profile.
    pub fn sync_app_settings_into(&mut self, to: &str, sandbox: bool) {
        let Some(app) = self.get(to, sandbox).and_then(|m| m.app.clone()) else {
            return;
        };
        let Some(src) = self
            .profiles(sandbox)
            .iter()
            .find(|(n, m)| *n != to && m.app.as_deref() == Some(app.as_str()))
            .map(|(_, m)| m.clone())
        else {
            return;
        };
        if let Some(m) = self.profiles_mut(sandbox).get_mut(to) {
            m.copy_app_settings(&src);
        }
    }

    /// Copies the app settings of `from` to every other profile on its app (they share
    /// the app, so they share its plan, redirect URL, store and name). A name `from` does
    /// not know (a profile made by `--no-input` or `import`) is taken from the others
    /// instead of wiping theirs.
    pub fn sync_app_settings(&mut self, from: &str, sandbox: bool) {
        let Some(mut src) = self.get(from, sandbox).cloned() else {
            return;
        };
        let Some(app) = src.app.clone() else {
            return;
        };
        let on_app =
            |name: &String, m: &ProfileMeta| name != from && m.app.as_deref() == Some(app.as_str());
        if src.app_name.is_none() {
            src.app_name = self
                .profiles(sandbox)
                .iter()
                .filter(|(n, m)| on_app(n, m))
                .find_map(|(_, m)| m.app_name.clone());
        }
        for (name, m) in self.profiles_mut(sandbox).iter_mut() {
            if name == from {
                m.app_name.clone_from(&src.app_name);
            } else if on_app(name, m) {
                m.copy_app_settings(&src);
            }
        }
    }
}

/// The metadata file in one directory.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub dir: PathBuf,
}

impl ConfigFile {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// Reads the file; a missing file is an empty config. A FIFO or other non-regular
    /// file is refused before it is opened (reading one would block forever), and bytes
    /// that are not UTF-8 are a damaged file, not an I/O problem.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let path = self.path();
        match fs::metadata(&path) {
            Ok(m) if !m.is_file() => return Err(not_regular(&path, &m)),
            Ok(_) => check_private_dir(&self.dir)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(io_err("read", &path, &e)),
        }
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(ConfigError::Corrupt {
                    path: path.display().to_string(),
                    detail: "it is not UTF-8 text".into(),
                });
            }
            Err(e) => return Err(io_err("read", &path, &e)),
        };
        toml::from_str(&text).map_err(|e| ConfigError::Corrupt {
            path: path.display().to_string(),
            detail: e.message().to_string(),
        })
    }

    /// The permission bits of the file and of its directory (`None` when the file does
    /// not exist yet; 0 for a directory that cannot be read), for `doctor`.
    #[cfg(unix)]
    pub fn modes(&self) -> Option<(u32, u32)> {
        use std::os::unix::fs::PermissionsExt;
        let file = fs::metadata(self.path()).ok()?.permissions().mode() & 0o777;
        let dir = fs::metadata(&self.dir).map_or(0, |m| m.permissions().mode() & 0o777);
        Some((file, dir))
    }

    /// Read-modify-write under the config file's lock: re-reads the file, applies `change`
    /// (which should touch only the caller's own profile) and writes the result back, so
    /// two processes changing different profiles at once both keep their change.
    pub fn update<T>(&self, change: impl FnOnce(&mut Config) -> T) -> Result<T, ConfigError> {
        // The lock file goes into the dir: refuse a shared one before writing anything.
        create_private_dir(&self.dir)?;
        let _lock = crate::lock::config_lock(&self.dir)?;
        let mut config = self.load()?;
        let out = change(&mut config);
        self.save(&config)?;
        Ok(out)
    }

    /// Writes the whole file atomically with mode 0600 in a 0700 directory. Commands use
    /// [`ConfigFile::update`], which merges with what other processes wrote meanwhile.
    pub fn save(&self, config: &Config) -> Result<(), ConfigError> {
        create_private_dir(&self.dir)?;
        let text = toml::to_string_pretty(config).expect("config serializes");
        write_private_atomic(&self.path(), text.as_bytes())
    }
}

fn io_err(op: &str, path: &Path, e: &std::io::Error) -> ConfigError {
    ConfigError::Io {
        op: op.into(),
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

/// Makes sure `dir` exists and is private. A missing one is created and made 0700, and so
/// are missing parents (as the XDG base directory rules ask; the sandbox-only store in
/// `<config>/sandbox-store` would otherwise leave the config dir itself 0755); an
/// existing one is never chmod-ed (it may be shared, such as `/tmp`), only checked with
/// [`check_private_dir`].
pub fn create_private_dir(dir: &Path) -> Result<(), ConfigError> {
    if let Some(parent) = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && !p.exists())
    {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(parent)
            .map_err(|e| io_err("create", parent, &e))?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                    .map_err(|e| io_err("set permissions on", dir, &e))?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => check_private_dir(dir),
        Err(e) => Err(io_err("create", dir, &e)),
    }
}

/// Refuses an existing directory that someone else owns or that group or others may
/// write to. There is no exception for the sticky bit (as on `/tmp`): it stops others
/// from deleting or renaming our files, but not from creating `config.toml` or
/// `secrets.json` first, which kite-setup would then read as its own.
pub fn check_private_dir(dir: &Path) -> Result<(), ConfigError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(dir).map_err(|e| io_err("inspect", dir, &e))?;
        if !m.is_dir() {
            return Err(not_regular_dir(dir));
        }
        let me = rustix::process::geteuid().as_raw();
        if let Some(why) = dir_problem(m.mode(), m.uid(), me) {
            return Err(ConfigError::UnsafeDir {
                path: dir.display().to_string(),
                why,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Why a directory with these mode bits and owner is not private to user `me`, if it is
/// not: owned by another user, or writable by group or others.
pub fn dir_problem(mode: u32, owner: u32, me: u32) -> Option<String> {
    if owner != me {
        Some(format!("it is owned by user id {owner}, not by you ({me})"))
    } else if mode & 0o022 != 0 {
        Some(format!(
            "group or others can write to it (mode {:o})",
            mode & 0o7777
        ))
    } else {
        None
    }
}

fn not_regular_dir(dir: &Path) -> ConfigError {
    ConfigError::Io {
        op: "use".into(),
        path: dir.display().to_string(),
        detail: "it is not a directory".into(),
    }
}

/// "is a FIFO" and the like, for [`ConfigError::NotRegular`].
fn not_regular(path: &Path, m: &fs::Metadata) -> ConfigError {
    let t = m.file_type();
    #[cfg(unix)]
    let special = {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            Some("a FIFO (named pipe)")
        } else if t.is_char_device() || t.is_block_device() {
            Some("a device")
        } else if t.is_socket() {
            Some("a socket")
        } else {
            None
        }
    };
    #[cfg(not(unix))]
    let special: Option<&str> = None;
    let kind = if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else {
        special.unwrap_or("not a file")
    };
    ConfigError::NotRegular {
        path: path.display().to_string(),
        kind: kind.into(),
    }
}

/// Refuses to write over `path` when it exists and is not a regular file: a rename would
/// replace a symlink, a FIFO or a device node (`/dev/stdout` as root) with a file.
pub fn check_writable_target(path: &Path) -> Result<(), ConfigError> {
    match fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_file() => Err(not_regular(path, &m)),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("inspect", path, &e)),
    }
}

/// Writes `bytes` to `path` through a 0600 temp file in the same directory and a rename,
/// so a crash leaves either the old file or the new one, never half of one. A `path`
/// that exists and is not a regular file is refused (see [`check_writable_target`]).
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    check_writable_target(path)?;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut suffix = [0u8; 6];
    crate::random::fill(&mut suffix).map_err(|e| ConfigError::Io {
        op: "get randomness for".into(),
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    let tmp = dir.join(format!(".{name}.{}.tmp", hex(&suffix)));
    let result = (|| {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        #[allow(clippy::disallowed_methods)] // the one private-file writer (0600, atomic)
        let mut f = opts.open(&tmp).map_err(|e| io_err("create", &tmp, &e))?;
        f.write_all(bytes).map_err(|e| io_err("write", &tmp, &e))?;
        f.sync_all().map_err(|e| io_err("sync", &tmp, &e))?;
        fs::rename(&tmp, path).map_err(|e| io_err("replace", path, &e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Lowercase hex of some bytes.
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
mod tests;
