//! Profiles and their non-secret metadata: one TOML file (`config.toml`) in the platform
//! config directory (or `KITE_SETUP_CONFIG_DIR`), directory 0700, file 0600, written
//! atomically (temp file in the same directory, fsync, rename). Never holds a secret.

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileMeta {
    /// The Zerodha client ID the app was created for.
    pub client_id: String,
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

    /// Reads the file; a missing file is an empty config.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let path = self.path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
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

    /// Writes the file atomically with mode 0600 in a 0700 directory.
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

/// Creates `dir` (and parents) and makes it 0700 on Unix.
pub fn create_private_dir(dir: &Path) -> Result<(), ConfigError> {
    fs::create_dir_all(dir).map_err(|e| io_err("create", dir, &e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| io_err("set permissions on", dir, &e))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` through a 0600 temp file in the same directory and a rename,
/// so a crash leaves either the old file or the new one, never half of one.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix).map_err(|e| ConfigError::Io {
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
mod tests {
    use super::*;

    fn meta() -> ProfileMeta {
        ProfileMeta {
            client_id: "AB1234".into(),
            plan: Plan::Personal,
            redirect_url: "http://127.0.0.1:5123/kite-setup/callback".into(),
            store: StoreChoice::Auto,
            app_name: Some("kite-setup AB1234".into()),
            user_name: None,
            verified: true,
            orders: None,
            created_at: "2026-11-26T10:00:00Z".parse().unwrap(),
            updated_at: "2026-11-26T10:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn round_trip_and_private_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let f = ConfigFile::new(tmp.path().join("cfg"));
        assert_eq!(f.load().unwrap(), Config::default());
        let mut c = Config::default();
        c.profiles.insert("default".into(), meta());
        c.sandbox_profiles.insert("default".into(), meta());
        f.save(&c).unwrap();
        assert_eq!(f.load().unwrap(), c);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let fm = fs::metadata(f.path()).unwrap().permissions().mode() & 0o777;
            let dm = fs::metadata(&f.dir).unwrap().permissions().mode() & 0o777;
            assert_eq!((fm, dm), (0o600, 0o700));
        }
        let leftovers: Vec<_> = fs::read_dir(&f.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn corrupt_file_is_a_typed_error() {
        let tmp = tempfile::tempdir().unwrap();
        let f = ConfigFile::new(tmp.path().to_path_buf());
        fs::write(f.path(), "profiles = [[[").unwrap();
        let err = f.load().unwrap_err();
        assert!(matches!(err, ConfigError::Corrupt { .. }));
        assert!(err.hint().contains("holds no secrets"));
    }

    #[test]
    fn profile_names() {
        assert!(validate_profile_name("default").is_ok());
        assert!(validate_profile_name("mom-2").is_ok());
        assert!(validate_profile_name("").is_err());
        assert!(validate_profile_name("a/b").is_err());
        assert!(validate_profile_name(&"x".repeat(33)).is_err());
    }
}
