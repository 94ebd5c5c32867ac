//! `kite-setup import`, the server's half of `push`: reads one [`Pushed`] JSON line on
//! standard input, asks Kite whether the token is alive and belongs to the profile's
//! client ID (`GET /user/profile`), and only then stores it under the same profile
//! name, with where it came from. Answers one JSON line ([`Reply`]) on stdout, also
//! when it refuses, so `push` can report each host in one line.
//!
//! The store: an existing profile keeps its own; a new one gets `--store` when given,
//! else the kernel user keyring on Linux (a server has no desktop keyring; the README
//! says why that one), else the OS credential store.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::cli::StoreChoice;
use crate::error::{Error, Fix};
use crate::profile::ProfileMeta;
use crate::secret::Secret;
use crate::session::{StoredSession, format_ist};
use crate::store::{AppCredentials, Entries, Store, StoreError, get_json, set_json_verified};

use super::Ctx;
use super::push::{Pushed, Reply, WIRE_VERSION, stored_reply};

/// Where a pushed session came from, kept beside it for `status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Origin {
    /// The sender's host name.
    pub from: String,
    /// The SSH client address it arrived from (`SSH_CONNECTION`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    pub at: Timestamp,
}

impl Origin {
    /// `pushed from laptop (SSH 10.0.0.5) at 2026-12-01 09:02:11 IST`.
    pub fn describe(&self) -> String {
        let via = self
            .via
            .as_deref()
            .map(|v| format!(" (SSH {v})"))
            .unwrap_or_default();
        let from = if self.from.is_empty() {
            "another machine"
        } else {
            &self.from
        };
        format!("pushed from {from}{via} at {} IST", format_ist(self.at))
    }
}

/// The origin of the stored session, if it was pushed (a login here forgets it).
pub fn load_origin(store: &dyn Store, entries: &Entries) -> Result<Option<Origin>, StoreError> {
    get_json(store, &entries.origin())
}

/// `ssh_client`: the client address of the SSH session this runs in, if any.
pub fn run(ctx: &Ctx<'_>, ssh_client: Option<&str>) -> Result<u8, Error> {
    match import(ctx, ssh_client) {
        Ok(reply) => {
            answer(ctx, &reply);
            Ok(0)
        }
        Err(e) => {
            answer(
                ctx,
                &Reply {
                    ok: false,
                    profile: ctx.profile.clone(),
                    user_id: String::new(),
                    expires_ist: None,
                    store: None,
                    error: Some(e.to_string()),
                    hint: e.hint(&ctx.flags()),
                },
            );
            Err(e)
        }
    }
}

fn answer(ctx: &Ctx<'_>, reply: &Reply) {
    let line = serde_json::to_string(reply).expect("plain data serializes");
    ctx.ui.data(&format!("{line}\n"));
}

fn import(ctx: &Ctx<'_>, ssh_client: Option<&str>) -> Result<Reply, Error> {
    let line = Secret::new(
        (ctx.ports.read_stdin_line)().map_err(|e| Error::StdinUnreadable {
            what: "the pushed session",
            detail: e.to_string(),
        })?,
    );
    let bad = |why: &str| {
        Error::usage(
            format!("standard input is not a session sent by `kite-setup push` ({why})"),
            Fix::text("run ")
                .and_run("push HOST")
                .and(" on the machine you logged in on; import is its other half"),
        )
    };
    let pushed: Pushed = serde_json::from_str(line.expose()).map_err(|e| {
        // serde's message can quote the input: only its position is shown.
        bad(&format!("line {} column {}", e.line(), e.column()))
    })?;
    drop(line);
    if pushed.kite_setup_push != WIRE_VERSION {
        return Err(Error::usage(
            format!(
                "the session was sent in format {} and this kite-setup reads format {WIRE_VERSION}",
                pushed.kite_setup_push
            ),
            "install the same kite-setup version on both machines",
        ));
    }
    let now = ctx.ports.clock.now();
    if pushed.expires_at <= now {
        return Err(Error::login_needed(
            format!(
                "the session sent expired at {} IST",
                format_ist(pushed.expires_at)
            ),
            Fix::text("log in on the laptop and push again: ").and_run("login --push HOST"),
        ));
    }
    let config = ctx.config.load()?;
    let existing = config.get(&ctx.profile, ctx.sandbox).cloned();
    if let Some(meta) = &existing
        && !meta.client_id.eq_ignore_ascii_case(&pushed.client_id)
    {
        return Err(Error::failed(
            format!(
                "profile {} here is for client {}, the session sent is for {}",
                ctx.profile_label(),
                meta.client_id,
                pushed.client_id
            ),
            "push with --profile naming a profile of the same client, or remove this one here first",
        ));
    }
    // Kite decides: the token must be alive and be the client's own.
    let user = ctx
        .ports
        .kite
        .profile(&pushed.api_key, &pushed.access_token)
        .map_err(|e| {
            Error::from(e).with_fix(Fix::text(
                "nothing was stored; log in on the laptop and push again",
            ))
        })?;
    if !user.user_id.eq_ignore_ascii_case(&pushed.client_id) {
        return Err(Error::failed(
            format!(
                "Kite says the token sent belongs to {}, not to client {}",
                user.user_id, pushed.client_id
            ),
            "nothing was stored; push the session of the profile made for this client",
        ));
    }

    let choice = ctx.store_flag.unwrap_or_else(|| {
        existing
            .as_ref()
            .map_or(server_default_store(), |m| m.store)
    });
    let (store, used_choice) = ctx.ports.stores.open(choice)?;
    // A profile the previous release wrote here keeps its secret: moved first (it may be
    // the only copy of the api_secret on this server, or of a rotation's new one).
    let existing = match existing {
        Some(m) if m.app.is_none() && m.store == used_choice => {
            Some(super::apps::migrate(ctx, store.as_ref(), m)?)
        }
        other => other,
    };
    let app_id = import_app_id(ctx, store.as_ref(), existing.as_ref(), &pushed.api_key)?;
    // The profile's lock and the lock of the app it is filed under, for the writes below:
    // a concurrent init, login, remove or a family member's rotation waits (or this does),
    // and config.toml is merged, not overwritten.
    let _section = super::txn::section_of(ctx, &ctx.profile, "import", Some(&app_id))?;
    if import_app_id(ctx, store.as_ref(), existing.as_ref(), &pushed.api_key)? != app_id {
        return Err(Error::failed(
            "another kite-setup process changed this server's apps while the session was checked; nothing was stored",
            "push again",
        ));
    }
    let entries = Entries::new(&ctx.profile, ctx.sandbox, Some(&app_id));
    let stored_app = crate::store::load_app(store.as_ref(), &entries)?
        .filter(|a| a.api_key.ct_eq(&pushed.api_key));
    match (&pushed.api_secret, stored_app) {
        // A secret already here for the same app stays (a server that logs in itself):
        // not written again, so a rotation that swapped it meanwhile is never undone.
        (None, Some(_)) => {}
        (secret, _) => {
            let app = AppCredentials {
                api_key: pushed.api_key.clone(),
                api_secret: secret.clone().unwrap_or_else(|| Secret::new(String::new())),
            };
            set_json_verified(store.as_ref(), &entries.app(), &app)?;
        }
    }
    let session = StoredSession {
        access_token: pushed.access_token.clone(),
        user_id: user.user_id.clone(),
        user_name: user.user_name.clone(),
        login_time: pushed.login_time,
        expires_at: pushed.expires_at,
    };
    set_json_verified(store.as_ref(), &entries.session(), &session)?;
    let origin = Origin {
        from: pushed.from.clone(),
        via: ssh_client.map(str::to_string),
        at: now,
    };
    set_json_verified(store.as_ref(), &entries.origin(), &origin)?;
    // A profile an earlier kite-setup wrote had its app under its own name.
    store.delete(&entries.legacy_app())?;
    store.delete(&entries.legacy_pending())?;

    let meta = ProfileMeta {
        client_id: pushed.client_id.clone(),
        app: Some(app_id),
        plan: pushed.plan,
        redirect_url: pushed.redirect_url.clone(),
        store: used_choice,
        app_name: existing.as_ref().and_then(|m| m.app_name.clone()),
        user_name: Some(user.user_name.clone()).filter(|n| !n.is_empty()),
        verified: true,
        orders: None,
        created_at: existing.as_ref().map_or(now, |m| m.created_at),
        updated_at: now,
    };
    ctx.config.update(|c| {
        c.profiles_mut(ctx.sandbox)
            .insert(ctx.profile.clone(), meta);
        c.sync_app_settings(&ctx.profile, ctx.sandbox);
    })?;
    ctx.ui.ok(format!(
        "Stored the session pushed from {} for {} ({}) in the {}",
        if origin.from.is_empty() {
            "another machine"
        } else {
            &origin.from
        },
        ctx.profile_label(),
        user.user_id,
        store.describe()
    ));
    Ok(stored_reply(
        &ctx.profile,
        &user.user_id,
        pushed.expires_at,
        store.describe(),
    ))
}

/// The app a pushed session is filed under: the app here with the same api_key (a family
/// member pushed before), else the profile's own app when nobody else uses it, else a new
/// one.
fn import_app_id(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    existing: Option<&ProfileMeta>,
    api_key: &Secret,
) -> Result<String, Error> {
    let config = ctx.config.load()?;
    Ok(
        super::apps::app_for_key(ctx, store, &config, api_key).unwrap_or_else(|| {
            existing
                .and_then(|m| m.app.clone())
                .filter(|id| !config.app_used_by_others(id, &ctx.profile, ctx.sandbox))
                .unwrap_or_else(|| config.fresh_app_id(&ctx.profile, ctx.sandbox))
        }),
    )
}

/// A new profile's store on a server: the kernel user keyring on Linux (it outlives the
/// SSH session and the bot's restarts, and is not a file), else the OS store.
pub fn server_default_store() -> StoreChoice {
    if cfg!(target_os = "linux") {
        StoreChoice::Keyutils
    } else {
        StoreChoice::Auto
    }
}
