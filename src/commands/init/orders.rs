//! After the verifying login: the plan as Kite shows it, and step 7, "Static IP for
//! orders" (the order probe of `orders_probe`; no order is ever placed). Neither can fail
//! init: what Kite accepted is stored before, and the result and the fix are reported.

use crate::cli::{InitArgs, OrdersFrom, Plan};
use crate::commands::Ctx;
use crate::commands::orders_probe::{
    self, OrdersCheck, OrdersRecord, PROBE_LINE, PlanSeen, check_orders, check_plan,
};
use crate::error::Error;
use crate::session::StoredSession;

use super::{Draft, plans};

/// One `/quote` call: the plan Kite shows replaces the one typed.
pub(super) fn verify_plan(ctx: &Ctx<'_>, draft: &mut Draft, session: &StoredSession) {
    let seen = check_plan(
        ctx.ports.readiness,
        &draft.creds.api_key,
        &session.access_token,
    );
    match (&seen, draft.plan) {
        (PlanSeen::Personal, Plan::Connect) => {
            ctx.ui.warn(orders_probe::plan_mismatch_message(
                ctx.endpoints.console.as_str(),
            ));
        }
        (PlanSeen::Connect, Plan::Personal) => ctx
            .ui
            .say("Kite serves market data to this app: it is on Connect (recorded as Connect)."),
        (PlanSeen::Unknown(e), _) => {
            ctx.ui.warn(format!(
                "Could not check the plan with Kite ({e}); recorded as typed."
            ));
            return;
        }
        _ => {}
    }
    if let Some(p) = seen.plan() {
        if p == draft.plan {
            ctx.ui
                .ok(format!("Plan checked with Kite: {}", plans::text(p).name));
        }
        draft.plan = p;
    }
}

/// Step 7: explains the rule, probes this machine, and says what to enter where.
/// Returns the record to keep, when a probe ran.
pub(super) fn step_orders(
    ctx: &Ctx<'_>,
    args: &InitArgs,
    draft: &Draft,
    session: Option<&StoredSession>,
    interactive: bool,
) -> Result<Option<OrdersRecord>, Error> {
    if interactive {
        ctx.ui.heading("Step 7 of 7 — Static IP for orders");
        ctx.ui.say("Kite accepts orders (place, modify, cancel) only from an IP on your developer account's");
        ctx.ui.say("IP Whitelist: the console's Profile (top right) → IP Whitelist, not the app's page. Up to two");
        ctx.ui.say("IPs; one change per week, so check before saving; shared only within your immediate family.");
    }
    if args.orders_from == OrdersFrom::Elsewhere {
        say_elsewhere(ctx, "--orders-from elsewhere");
        return Ok(None);
    }
    let Some(session) = session else {
        ctx.ui
            .say("Orders not checked: there is no verified login to ask Kite with.");
        return Ok(None);
    };
    let key = &draft.creds.api_key;
    let token = &session.access_token;
    ctx.ui.say(PROBE_LINE);
    let mut check = check_orders(ctx.ports.readiness, ctx.sandbox, key, token);
    report(ctx, &check);
    if !check.any_refused() {
        return Ok(Some(check.record(ctx.ports.clock.now())));
    }
    if interactive {
        let items = [
            "My bot runs on this machine: tell me what to register",
            "My bot runs on another machine",
        ];
        if ctx
            .ports
            .prompter
            .select("Where will your bot send orders from?", &items, 0)?
            == 1
        {
            say_elsewhere(ctx, "");
            return Ok(Some(check.record(ctx.ports.clock.now())));
        }
        if let Some(control) = ctx.ports.sandbox_control {
            let ips = check.refused_ips();
            if !ips.is_empty()
                && ctx.ports.prompter.confirm(
                    &format!(
                        "Register {} on the sandbox account's IP Whitelist (as its console's profile page would)?",
                        ips.join(" and ")
                    ),
                    true,
                )?
            {
                let refs: Vec<&str> = ips.iter().map(String::as_str).collect();
                control.set_ips(&draft.client_id, &refs)?;
                ctx.ui.ok("Saved the sandbox IP Whitelist; checking again");
                check = check_orders(ctx.ports.readiness, ctx.sandbox, key, token);
                report(ctx, &check);
            }
        } else if args.lookup_public_ip
            || ctx.ports.prompter.confirm(
                &format!(
                    "Look up this machine's public IP through {}?",
                    ctx.ports.readiness.public_ip_service()
                ),
                false,
            )?
        {
            lookup(ctx);
        }
    } else if args.lookup_public_ip {
        lookup(ctx);
    }
    if check.any_refused() {
        let fix =
            orders_probe::whitelist_fix(&check.refused_ips(), console_profile(ctx).as_deref());
        ctx.ui
            .warn(format!("To send orders from here: {}", ctx.render(&fix)));
        ctx.ui.say(format!(
            "Then check again with `{}` (probes `orders ipv4` and `orders ipv6`).",
            ctx.command("doctor")
        ));
    }
    Ok(Some(check.record(ctx.ports.clock.now())))
}

/// The sandbox console's profile page, in sandbox mode.
pub(crate) fn console_profile(ctx: &Ctx<'_>) -> Option<String> {
    ctx.sandbox.then(|| {
        format!(
            "{}/profile",
            ctx.endpoints.console.as_str().trim_end_matches('/')
        )
    })
}

fn lookup(ctx: &Ctx<'_>) {
    match ctx.ports.readiness.public_ip() {
        Ok(ip) => ctx.ui.say(format!(
            "This machine's public IP, as {} sees it: {ip}",
            ctx.ports.readiness.public_ip_service()
        )),
        Err(e) => ctx.ui.warn(format!("Could not look up the public IP: {e}")),
    }
}

fn report(ctx: &Ctx<'_>, check: &OrdersCheck) {
    for c in [&check.ipv4, &check.ipv6] {
        let line = c.detail(check.preferred);
        match c.verdict() {
            "pass" => ctx.ui.ok(line),
            "fail" => ctx.ui.warn(line),
            _ => ctx.ui.say(line),
        }
    }
    if check.preferred_refused() {
        ctx.ui.warn(format!(
            "A Python or Go bot here connects over {} first, the refused family: its orders will fail.",
            check.preferred.map_or("?", |f| f.name())
        ));
    }
}

fn say_elsewhere(ctx: &Ctx<'_>, why: &str) {
    let why = if why.is_empty() {
        String::new()
    } else {
        format!(" ({why})")
    };
    ctx.ui.say(format!(
        "Orders from this machine not checked{why}: on the machine your bot runs on, install kite-setup and run `{}`; its `orders ipv4` and `orders ipv6` probes say what to register.",
        ctx.command("doctor")
    ));
}
