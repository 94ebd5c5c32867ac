//! What doctor shows of the order readiness (its `orders ipv4`, `orders ipv6` and `plan`
//! probes) and the plan check after the verification login.

#[allow(clippy::wildcard_imports)] // the parent's types and imports, split for length only
use super::*;

/// One doctor probe: name, verdict (`pass`, `fail`, `skip`), detail, fix.
pub struct DoctorLine {
    pub name: &'static str,
    pub verdict: &'static str,
    pub detail: String,
    pub fix: Option<String>,
}

/// doctor's `orders ipv4`, `orders ipv6` and `plan`, with the profile's stored app and
/// today's token; the result is kept in the profile's metadata for `status`.
pub fn doctor_lines(
    ctx: &crate::commands::Ctx<'_>,
    store: Option<&dyn crate::store::Store>,
    meta: Option<&crate::profile::ProfileMeta>,
) -> Vec<DoctorLine> {
    let skip_all = |why: String, fix: Option<String>| {
        ["orders ipv4", "orders ipv6", "plan"]
            .into_iter()
            .map(|name| DoctorLine {
                name,
                verdict: "skip",
                detail: why.clone(),
                fix: fix.clone(),
            })
            .collect()
    };
    let (Some(store), Some(meta)) = (store, meta) else {
        return skip_all(
            "not checked: no profile with stored credentials".into(),
            None,
        );
    };
    let entries = ctx.entries();
    let app = crate::store::load_app(store, &entries).ok().flatten();
    let session = crate::store::load_session(store, &entries)
        .ok()
        .flatten()
        .filter(|s| s.is_valid_at(ctx.ports.clock.now()));
    let (Some(app), Some(session)) = (app, session) else {
        return skip_all(
            "not checked: Kite is asked with today's access token, and there is none".into(),
            Some(ctx.render(&crate::error::login_fix())),
        );
    };
    let (key, token) = (&app.api_key, &session.access_token);
    let check = check_orders(ctx.ports.readiness, ctx.sandbox, key, token);
    let console_profile = ctx.sandbox.then(|| {
        format!(
            "{}/profile",
            ctx.endpoints.console.as_str().trim_end_matches('/')
        )
    });
    let mut lines = Vec::new();
    for (name, c) in [("orders ipv4", &check.ipv4), ("orders ipv6", &check.ipv6)] {
        let fix = match &c.outcome {
            Outcome::Refused { seen, .. } => {
                let ips: Vec<String> = seen.iter().cloned().collect();
                Some(ctx.render(&whitelist_fix(&ips, console_profile.as_deref())))
            }
            Outcome::Unknown(e) => Some(ctx.render(&e.fix())),
            _ => None,
        };
        lines.push(DoctorLine {
            name,
            verdict: c.verdict(),
            detail: c.detail(check.preferred),
            fix,
        });
    }
    let console = ctx.endpoints.console.as_str();
    let seen = check_plan(ctx.ports.readiness, key, token);
    let plan_line = match (&seen, meta.plan) {
        (PlanSeen::Personal, Plan::Connect) => DoctorLine {
            name: "plan",
            verdict: "fail",
            detail: plan_mismatch_message(console),
            fix: Some(format!(
                "subscribe the app to Connect on {} (or use Personal: no market data)",
                billing_place(console)
            )),
        },
        (PlanSeen::Unknown(e), _) => DoctorLine {
            name: "plan",
            verdict: "skip",
            detail: format!("not checked: {e}"),
            fix: Some(ctx.render(&e.fix())),
        },
        (s, _) => DoctorLine {
            name: "plan",
            verdict: "pass",
            detail: match s {
                PlanSeen::Connect => "Connect: Kite serves market data (/quote)".into(),
                _ => "Personal: orders and portfolio; Kite refuses market data (/quote), as it should".into(),
            },
            fix: None,
        },
    };
    lines.push(plan_line);
    // Best effort: a metadata file that cannot be written does not change the verdicts.
    let _ = save_record(ctx, Some(check.record(ctx.ports.clock.now())), seen.plan());
    lines
}

/// What one `/quote` call says about the plan.
#[derive(Debug, Clone)]
pub enum PlanSeen {
    /// Market data answered: Connect.
    Connect,
    /// `Insufficient permission for that call.`: Personal (or Connect not active).
    Personal,
    /// The call failed otherwise: the plan could not be told.
    Unknown(KiteError),
}

/// One `/quote?i=NSE:INFY` call.
pub fn check_plan(port: &dyn ReadinessPort, api_key: &Secret, token: &Secret) -> PlanSeen {
    match port.quote_probe(api_key, token) {
        Ok(()) => PlanSeen::Connect,
        Err(e) if e.refusal() == Some(Refusal::InsufficientPermission) => PlanSeen::Personal,
        Err(e) => PlanSeen::Unknown(e),
    }
}

impl PlanSeen {
    pub fn plan(&self) -> Option<Plan> {
        match self {
            Self::Connect => Some(Plan::Connect),
            Self::Personal => Some(Plan::Personal),
            Self::Unknown(_) => None,
        }
    }
}

/// Where the plan and subscription are managed.
pub fn billing_place(console: &str) -> String {
    format!("{}/billing", console.trim_end_matches('/'))
}

/// The message for an app said to be on Connect that Kite refuses market data.
pub fn plan_mismatch_message(console: &str) -> String {
    format!(
        "Kite refused market data (/quote: \"Insufficient permission for that call.\"): the app is on Personal, or its Connect subscription is not active; check {} (recorded as Personal)",
        billing_place(console)
    )
}
