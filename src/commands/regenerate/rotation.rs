//! The rotation record and its rules.
//!
//! A rotation is one [`Step`], persisted in the pending entry's `step` field **before**
//! the next action starts, so a crash or Ctrl-C anywhere leaves the keyring holding the
//! old secret in the main entry, or the new one in the pending entry (and, from the
//! swap on, in the main entry too) — never neither:
//!
//! | step       | main entry      | pending entry                 | action that leaves it      |
//! |------------|-----------------|-------------------------------|----------------------------|
//! | `Captured` | old secret      | new secret (unverified)       | verifying login            |
//! | `Verified` | old (or new)    | new secret + the new session  | write main + session entry,|
//! |            |                 |                               | forget the others' sessions|
//! | `Swapped`  | new secret      | new secret + old tokens       | revoke the old tokens      |
//! | `Revoked`  | new secret      | new secret                    | delete the pending entry   |
//! | `Done`     | new secret      | (gone)                        | —                          |
//!
//! ("old (or new)": a crash inside the swap may have written the main entry already;
//! the swap is idempotent, so `--resume` simply writes it again.)
//!
//! The secret is the app's, shared by every profile on it (docs/apps.md): the pending
//! entry is the app's too, and the rotation revokes the tokens of all of them. The other
//! profiles' tokens are taken into the pending entry when the new secret is saved (and
//! any token one of them got meanwhile, before its session is forgotten at the swap), so
//! whatever step a crash stops at, `--resume` still knows every token to revoke.
//!
//! The pending payload keeps what finishing needs after a crash: the api_key (checked
//! against the main entry), the old secret (for the leak scan), the old access token (to
//! revoke) and the verifying login's session. It is a keyring entry like the others and
//! is deleted as the last action of the rotation, which is why the pending entry outlives
//! the swap (deleting it before the revoke would lose the old token).
//!
//! [`transition`] is the pure rule, tested transition by transition; [`Rotation::advance`]
//! applies it and persists the step reached; the steps' actions are performed elsewhere.

use crate::error::{Error, Fix};
use crate::secret::Secret;
use crate::store::{AppCredentials, OtherToken, PendingSecret, Store, get_json, set_json_verified};

use super::RegenerateEnv;
use crate::commands::Ctx;

/// Where a rotation is. See the module documentation for what the keyring holds at each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The new secret is in the pending entry, not yet verified.
    Captured,
    /// A login with the new secret worked; its session is in the pending entry.
    Verified,
    /// The main entry holds the new secret, the session entry the new token.
    Swapped,
    /// The previous access token is dead at Kite (or there was none).
    Revoked,
    /// The pending entry is gone: the rotation is over.
    Done,
}

/// The action that takes a rotation out of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A login with the new secret succeeded.
    Verify,
    /// The main entry (and the session entry) were written and read back.
    Swap,
    /// The previous token was revoked, was already dead, or there was none.
    Revoke,
    /// The pending entry was deleted.
    Finish,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 5] = [
        Step::Captured,
        Step::Verified,
        Step::Swapped,
        Step::Revoked,
        Step::Done,
    ];

    /// The name persisted in the pending entry (and used by the crash-test hook).
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Captured => "captured",
            Step::Verified => "verified",
            Step::Swapped => "swapped",
            Step::Revoked => "revoked",
            Step::Done => "done",
        }
    }

    pub fn parse(text: &str) -> Option<Step> {
        Step::ALL
            .into_iter()
            .find(|s| s.as_str() == text.trim().to_ascii_lowercase())
    }

    /// The action that leaves this step; `None` at the end.
    pub fn action(self) -> Option<Action> {
        match self {
            Step::Captured => Some(Action::Verify),
            Step::Verified => Some(Action::Swap),
            Step::Swapped => Some(Action::Revoke),
            Step::Revoked => Some(Action::Finish),
            Step::Done => None,
        }
    }

    /// Whether the main entry already holds the new secret at this step (after a crash
    /// inside the swap it may already at `Verified` too; that is harmless).
    pub fn main_is_new(self) -> bool {
        matches!(self, Step::Swapped | Step::Revoked | Step::Done)
    }

    /// Where the rotation stands, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Step::Captured => "the new secret was saved but not yet verified",
            Step::Verified => "the new secret was verified but not yet swapped in",
            Step::Swapped => {
                "the new secret is in place; the previous access token is not yet revoked"
            }
            Step::Revoked => "the new secret is in place and the previous token revoked",
            Step::Done => "the rotation is complete",
        }
    }
}

/// An action that does not leave the step it was done at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTransition {
    pub from: Step,
    pub action: Action,
}

/// The pure rule: the step a rotation reaches when `action` is done at `from`. Only the
/// step's own action moves it, one step forward; anything else is refused.
pub fn transition(from: Step, action: Action) -> Result<Step, InvalidTransition> {
    match (from, action) {
        (Step::Captured, Action::Verify) => Ok(Step::Verified),
        (Step::Verified, Action::Swap) => Ok(Step::Swapped),
        (Step::Swapped, Action::Revoke) => Ok(Step::Revoked),
        (Step::Revoked, Action::Finish) => Ok(Step::Done),
        _ => Err(InvalidTransition { from, action }),
    }
}

/// A rotation in progress: its step and the pending payload. Its step moves only through
/// [`Rotation::advance`].
pub(super) struct Rotation {
    step: Step,
    pub(super) data: PendingSecret,
    pub(super) api_key: Secret,
    /// The pending entry as this run last wrote or read it (`None`: there was none). The
    /// entry is the app's, so another profile's run may take it over, finish or abort it
    /// while this one waits for a person: each write first checks it is still this
    /// ([`Rotation::still_ours`]).
    pub(super) seen: Option<PendingSecret>,
}

impl Rotation {
    /// A fresh rotation: the new secret captured, nothing else done yet.
    pub(super) fn captured(api_key: Secret, new_secret: Secret, old: Old, profile: &str) -> Self {
        Self {
            step: Step::Captured,
            data: PendingSecret {
                api_secret: new_secret,
                step: Step::Captured.as_str().to_string(),
                api_key: Some(api_key.clone()),
                old_api_secret: old.api_secret,
                old_access_token: old.access_token,
                new_session: None,
                profile: Some(profile.to_string()),
                other_tokens: old.other_tokens,
            },
            api_key,
            seen: None,
        }
    }

    /// Whether the pending entry is still what this run last saw. Called with the
    /// section held, before each write of the rotation.
    pub(super) fn still_ours(&self, ctx: &Ctx<'_>, store: &dyn Store) -> Result<bool, Error> {
        let now = get_json::<PendingSecret>(store, &ctx.entries().pending())?;
        Ok(now == self.seen)
    }

    pub(super) fn step(&self) -> Step {
        self.step
    }

    /// Loads the pending entry; `None` when there is none.
    pub(super) fn load(ctx: &Ctx<'_>, store: &dyn Store) -> Result<Option<PendingSecret>, Error> {
        Ok(get_json::<PendingSecret>(store, &ctx.entries().pending())?)
    }

    pub(super) fn from_pending(
        data: PendingSecret,
        main: Option<&AppCredentials>,
    ) -> Result<Self, Error> {
        let abort_hint = Fix::text("drop it with ")
            .and_run("regenerate --abort")
            .and(" and start again");
        let step = Step::parse(&data.step).ok_or_else(|| {
            Error::failed(
                format!(
                    "the pending rotation is at a step this version does not know ({:?})",
                    data.step
                ),
                abort_hint.clone(),
            )
        })?;
        let api_key = match (&data.api_key, main) {
            (Some(p), Some(m)) if !p.ct_eq(&m.api_key) => {
                return Err(Error::failed(
                    "the pending secret belongs to another app than the one stored for this profile",
                    abort_hint,
                ));
            }
            (Some(p), _) => p.clone(),
            (None, Some(m)) => m.api_key.clone(),
            (None, None) => {
                return Err(Error::failed(
                    "the pending secret's app is unknown: no api_key is stored for this profile",
                    abort_hint,
                ));
            }
        };
        Ok(Self {
            step,
            seen: Some(data.clone()),
            data,
            api_key,
        })
    }

    /// Does `action`'s transition and persists the step reached (read back) before
    /// anything else happens; then the crash-test hook may abort. The caller holds the
    /// profile's section (`flow::unchanged`).
    pub(super) fn advance(
        &mut self,
        ctx: &Ctx<'_>,
        store: &dyn Store,
        env: &RegenerateEnv<'_>,
        action: Action,
    ) -> Result<(), Error> {
        let next = transition(self.step, action).map_err(|t| {
            Error::failed(
                format!(
                    "internal error: {:?} is not the next action at step {}",
                    t.action,
                    t.from.as_str()
                ),
                "please report this; the keyring still holds the secrets",
            )
        })?;
        if next == Step::Done {
            store.delete(&ctx.entries().pending())?;
            self.seen = None;
            crate::interrupt::note(format!(
                "the secret rotation of profile {} is complete",
                ctx.profile_label()
            ));
        } else {
            next.as_str().clone_into(&mut self.data.step);
            set_json_verified(store, &ctx.entries().pending(), &self.data)?;
            self.seen = Some(self.data.clone());
            crate::interrupt::note(format!(
                "the secret rotation is saved at step {:?} ({}): `{}` finishes it",
                next.as_str(),
                next.describe(),
                ctx.command("regenerate --resume")
            ));
        }
        self.step = next;
        checkpoint(env, next);
        Ok(())
    }

    /// Writes the pending entry as it is now, at the same step (read back). The caller
    /// holds the profile's section.
    pub(super) fn save(&mut self, ctx: &Ctx<'_>, store: &dyn Store) -> Result<(), Error> {
        set_json_verified(store, &ctx.entries().pending(), &self.data)?;
        self.seen = Some(self.data.clone());
        Ok(())
    }

    /// Whether `token` is one the rotation already knows to revoke.
    pub(super) fn knows_token(&self, token: &Secret) -> bool {
        self.data.old_access_token.as_ref() == Some(token)
            || self.data.new_session.as_ref().map(|s| &s.access_token) == Some(token)
            || self
                .data
                .other_tokens
                .iter()
                .any(|o| o.access_token == *token)
    }

    pub(super) fn creds(&self) -> AppCredentials {
        AppCredentials {
            api_key: self.api_key.clone(),
            api_secret: self.data.api_secret.clone(),
        }
    }
}

/// What a new rotation replaces: the old secret and the access tokens issued with it.
pub(super) struct Old {
    pub api_secret: Option<Secret>,
    /// The run's profile's token.
    pub access_token: Option<Secret>,
    /// The tokens of the app's other profiles.
    pub other_tokens: Vec<OtherToken>,
}

/// The crash-test hook: dies like a `kill -9` would, right after `step` was persisted.
pub(super) fn checkpoint(env: &RegenerateEnv<'_>, step: Step) {
    if env.abort_after == Some(step) {
        crash();
    }
}

#[cfg(not(test))]
fn crash() -> ! {
    std::process::abort();
}

/// In unit tests the crash unwinds instead, so that a flow test can look at the store a
/// crash leaves and resume from it (`SimulatedCrash` is the payload it catches). Nothing
/// is written to the store on the way out (the locks are released, as the kernel
/// releases a killed process's): it holds exactly what an abort would leave.
#[cfg(test)]
fn crash() -> ! {
    std::panic::panic_any(SimulatedCrash);
}

/// The payload of a crash simulated in unit tests.
#[cfg(test)]
pub struct SimulatedCrash;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_moves_only_by_its_own_action() {
        assert_eq!(
            transition(Step::Captured, Action::Verify),
            Ok(Step::Verified)
        );
        assert_eq!(transition(Step::Verified, Action::Swap), Ok(Step::Swapped));
        assert_eq!(transition(Step::Swapped, Action::Revoke), Ok(Step::Revoked));
        assert_eq!(transition(Step::Revoked, Action::Finish), Ok(Step::Done));
    }

    #[test]
    fn every_other_pair_is_refused() {
        let actions = [Action::Verify, Action::Swap, Action::Revoke, Action::Finish];
        let mut legal = 0;
        for from in Step::ALL {
            for action in actions {
                match transition(from, action) {
                    Ok(to) => {
                        legal += 1;
                        assert_eq!(from.action(), Some(action), "{from:?} by {action:?}");
                        let i = Step::ALL.iter().position(|s| *s == from).unwrap();
                        assert_eq!(to, Step::ALL[i + 1], "one step forward");
                    }
                    Err(e) => assert_eq!(e, InvalidTransition { from, action }),
                }
            }
        }
        assert_eq!(legal, 4);
        assert_eq!(Step::Done.action(), None);
    }

    #[test]
    fn walking_the_actions_reaches_done_in_order() {
        let mut step = Step::Captured;
        let mut seen = vec![step];
        while let Some(a) = step.action() {
            step = transition(step, a).unwrap();
            seen.push(step);
        }
        assert_eq!(seen, Step::ALL);
    }

    #[test]
    fn step_names_round_trip_and_unknown_ones_are_none() {
        for s in Step::ALL {
            assert_eq!(Step::parse(s.as_str()), Some(s));
        }
        assert_eq!(Step::parse(" Swapped "), Some(Step::Swapped));
        assert_eq!(Step::parse("pending"), None);
        assert_eq!(Step::parse(""), None);
    }

    #[test]
    fn main_entry_holds_the_new_secret_from_the_swap_on() {
        let new: Vec<Step> = Step::ALL.into_iter().filter(|s| s.main_is_new()).collect();
        assert_eq!(new, [Step::Swapped, Step::Revoked, Step::Done]);
    }

    #[test]
    fn pending_payloads_of_the_first_format_still_load() {
        let old: PendingSecret =
            serde_json::from_str(r#"{"api_secret":"abc","step":"captured"}"#).unwrap();
        assert_eq!(Step::parse(&old.step), Some(Step::Captured));
        assert!(old.api_key.is_none() && old.old_access_token.is_none());
        assert!(old.new_session.is_none() && old.old_api_secret.is_none());
        assert!(old.profile.is_none() && old.other_tokens.is_empty());
    }

    #[test]
    fn the_other_profiles_tokens_round_trip_and_are_left_out_when_none() {
        let mut rot = Rotation::captured(
            "key".into(),
            "new".into(),
            Old {
                api_secret: Some("old".into()),
                access_token: Some("mine".into()),
                other_tokens: Vec::new(),
            },
            "default",
        );
        let raw = serde_json::to_string(&rot.data).unwrap();
        assert!(!raw.contains("other_tokens"), "{raw}");
        rot.data.other_tokens.push(OtherToken {
            profile: "spouse".into(),
            access_token: "theirs".into(),
        });
        let back: PendingSecret =
            serde_json::from_str(&serde_json::to_string(&rot.data).unwrap()).unwrap();
        assert_eq!(back.other_tokens, rot.data.other_tokens);
        assert_eq!(back.profile.as_deref(), Some("default"));
        assert!(rot.knows_token(&"theirs".into()) && rot.knows_token(&"mine".into()));
        assert!(!rot.knows_token(&"later".into()));
    }
}
