use super::*;

fn meta() -> ProfileMeta {
    ProfileMeta {
        client_id: "AB1234".into(),
        app: Some("default".into()),
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

/// Threads updating different profiles at once (each its own lock descriptor, as
/// processes would) never lose one another's profile.
#[test]
fn concurrent_updates_of_different_profiles_all_land() {
    let tmp = tempfile::tempdir().unwrap();
    let f = ConfigFile::new(tmp.path().join("cfg"));
    let names: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
    let start = std::sync::Arc::new(std::sync::Barrier::new(names.len()));
    let handles: Vec<_> = names
        .iter()
        .cloned()
        .map(|name| {
            let f = f.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                f.update(|c| c.profiles.insert(name, meta())).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let got: Vec<String> = f.load().unwrap().profiles.into_keys().collect();
    assert_eq!(got, names);
    f.update(|c| c.profiles.remove("p3")).unwrap();
    assert_eq!(f.load().unwrap().profiles.len(), 7);
}

#[test]
fn the_sandbox_only_file_store_is_recorded_as_its_own_choice() {
    let tmp = tempfile::tempdir().unwrap();
    let f = ConfigFile::new(tmp.path().join("cfg"));
    let mut c = Config::default();
    c.sandbox_profiles.insert(
        "default".into(),
        ProfileMeta {
            store: StoreChoice::SandboxFile,
            ..meta()
        },
    );
    f.save(&c).unwrap();
    let text = fs::read_to_string(f.path()).unwrap();
    assert!(text.contains("store = \"sandbox-file\""), "{text}");
    assert_eq!(f.load().unwrap(), c);
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
fn a_fifo_or_non_utf8_config_is_its_own_error_and_never_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let f = ConfigFile::new(tmp.path().to_path_buf());
    fs::write(f.path(), b"profiles = \xff\xfe").unwrap();
    let err = f.load().unwrap_err();
    assert!(matches!(err, ConfigError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("not UTF-8"), "{err}");
    fs::remove_file(f.path()).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(f.path())
        .status()
        .unwrap();
    assert!(made.success());
    let err = f.load().unwrap_err();
    assert!(err.to_string().contains("is a FIFO"), "{err}");
    // Writing refuses it too, and leaves it a FIFO.
    let err = f.save(&Config::default()).unwrap_err();
    assert!(matches!(err, ConfigError::NotRegular { .. }), "{err:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        assert!(
            fs::symlink_metadata(f.path())
                .unwrap()
                .file_type()
                .is_fifo()
        );
    }
}

#[cfg(unix)]
#[test]
fn writers_refuse_a_symlink_and_keep_it() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real.env");
    fs::write(&real, "old").unwrap();
    let link = tmp.path().join("link.env");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let err = write_private_atomic(&link, b"new").unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read_to_string(&real).unwrap(), "old");
}

#[cfg(unix)]
#[test]
fn an_existing_dir_is_checked_never_chmod_ed() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let shared = tmp.path().join("shared");
    fs::create_dir(&shared).unwrap();
    for bits in [0o777, 0o1777, 0o770] {
        fs::set_permissions(&shared, fs::Permissions::from_mode(bits)).unwrap();
        let err = ConfigFile::new(shared.clone())
            .save(&Config::default())
            .unwrap_err();
        assert!(
            matches!(err, ConfigError::UnsafeDir { .. }),
            "{bits:o}: {err:?}"
        );
        assert!(err.hint().contains("chmod go-w"), "{}", err.hint());
        assert_eq!(mode(&shared), bits, "never chmod-ed");
        assert!(!shared.join(CONFIG_FILE).exists());
    }
    // Readable by others but not writable: used as it is, mode kept.
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
    ConfigFile::new(shared.clone())
        .save(&Config::default())
        .unwrap();
    assert_eq!(mode(&shared), 0o755);
    // A missing one is created 0700, missing parents too (existing ones untouched).
    let fresh = tmp.path().join("a/b/kite-setup");
    ConfigFile::new(fresh.clone())
        .save(&Config::default())
        .unwrap();
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&tmp.path().join("a/b")), 0o700);
    assert_eq!(mode(&tmp.path().join("a")), 0o700);
    assert_eq!(mode(&shared), 0o755);
    // A store in a subdirectory of a missing config dir leaves the config dir 0700.
    let config = tmp.path().join("cfg2");
    create_private_dir(&config.join("sandbox-store")).unwrap();
    assert_eq!(mode(&config), 0o700);
}

#[test]
fn a_dir_owned_by_someone_else_or_writable_by_others_is_not_private() {
    assert_eq!(dir_problem(0o40700, 1000, 1000), None);
    assert_eq!(dir_problem(0o40755, 1000, 1000), None);
    assert!(
        dir_problem(0o40700, 0, 1000)
            .unwrap()
            .contains("owned by user id 0")
    );
    assert!(
        dir_problem(0o40700, 1000, 0)
            .unwrap()
            .contains("owned by user id 1000")
    );
    assert!(dir_problem(0o41777, 1000, 1000).unwrap().contains("1777"));
    assert!(dir_problem(0o40720, 1000, 1000).is_some());
}

#[test]
fn profile_names() {
    assert!(validate_profile_name("default").is_ok());
    assert!(validate_profile_name("mom-2").is_ok());
    assert!(validate_profile_name("").is_err());
    assert!(validate_profile_name("a/b").is_err());
    assert!(validate_profile_name(&"x".repeat(33)).is_err());
}

#[test]
fn app_settings_are_copied_to_the_family_and_an_unknown_name_wipes_none() {
    let on = |app: &str, name: Option<&str>| ProfileMeta {
        app: Some(app.into()),
        app_name: name.map(str::to_string),
        ..meta()
    };
    let mut c = Config::default();
    c.profiles
        .insert("default".into(), on("family", Some("Family bot")));
    c.profiles
        .insert("other".into(), on("other", Some("Other bot")));
    let mut spouse = on("family", None);
    spouse.plan = Plan::Connect;
    c.profiles.insert("spouse".into(), spouse);
    c.sync_app_settings("spouse", false);
    let d = &c.profiles["default"];
    assert_eq!(d.plan, Plan::Connect, "the plan is the app's");
    assert_eq!(d.app_name.as_deref(), Some("Family bot"), "not wiped");
    assert_eq!(
        c.profiles["spouse"].app_name.as_deref(),
        Some("Family bot"),
        "learnt from the family"
    );
    assert_eq!(
        c.profiles["other"].plan,
        meta().plan,
        "another app is untouched"
    );
    assert_eq!(c.profiles["other"].app_name.as_deref(), Some("Other bot"));
}
