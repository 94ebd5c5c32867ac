//! Order readiness, checked with Kite's own answer (docs/orders.md): is this machine's IP
//! on the developer account's IP Whitelist, per address family, and which plan does the
//! app really have. The probe asks Kite to cancel an order ID that cannot exist: Kite
//! applies the static IP rule before it looks the order up, so its answer tells whether
//! this address may send orders. No order is ever placed, modified or cancelled.
//!
//! The flows here talk to [`ReadinessPort`]; the real adapter is `kite::probe`.

use std::net::IpAddr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::cli::Plan;
use crate::error::Fix;
use crate::kite::KiteError;
use crate::kite::error::Refusal;
use crate::secret::Secret;

/// The one-line promise shown before the probe runs.
pub const PROBE_LINE: &str = "Checking: asking Kite to cancel an order that does not exist, over IPv4 and IPv6 (no order is placed or changed).";

/// Where Kite's IP Whitelist is on the live console.
pub const LIVE_WHITELIST: &str =
    "developers.kite.trade → Profile (top right) → IP Whitelist → Update (not the app's page)";

/// The order-permission and plan probes, as the flows need them.
pub trait ReadinessPort {
    /// The API host's addresses in the order the system resolver gives them (the order a
    /// Python or Go bot tries them in).
    fn api_addresses(&self) -> Result<Vec<IpAddr>, String>;
    /// `DELETE /orders/regular/<an ID that cannot exist>`, connecting to `addr`: a probe,
    /// never an order. `Ok` would mean Kite cancelled something, which cannot happen.
    fn cancel_probe(&self, addr: IpAddr, api_key: &Secret, token: &Secret)
    -> Result<(), KiteError>;
    /// `GET /quote?i=NSE:INFY`: data on Connect, PermissionException on Personal.
    fn quote_probe(&self, api_key: &Secret, token: &Secret) -> Result<(), KiteError>;
    /// The source address this machine would use to reach `addr` (no packet is sent).
    fn source_address(&self, addr: IpAddr) -> Option<IpAddr>;
    /// This machine's public IP from an echo service (the sandbox's in sandbox mode).
    /// Called only with the person's consent.
    fn public_ip(&self) -> Result<IpAddr, String>;
    /// What `public_ip` asks, for the consent question.
    fn public_ip_service(&self) -> String;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Self {
        if ip.is_ipv4() { Self::Ipv4 } else { Self::Ipv6 }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Ipv4 => "IPv4",
            Self::Ipv6 => "IPv6",
        }
    }

    fn loopback(self) -> IpAddr {
        match self {
            Self::Ipv4 => IpAddr::from([127, 0, 0, 1]),
            Self::Ipv6 => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        }
    }
}

/// What Kite said for one address family.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Kite did not refuse this IP (it answered with another error, e.g. no such order).
    Allowed { source: Option<IpAddr> },
    /// Kite's static IP refusal; `seen` is the address in its message.
    Refused { seen: Option<String>, listed: bool },
    /// Not checked, and why.
    Skipped(String),
    /// Kite or the network failed in another way: the rule could not be checked.
    Unknown(KiteError),
}

#[derive(Debug, Clone)]
pub struct FamilyCheck {
    pub family: Family,
    /// The API address connected to.
    pub target: Option<IpAddr>,
    pub outcome: Outcome,
}

/// Both families and which one the system prefers.
#[derive(Debug, Clone)]
pub struct OrdersCheck {
    pub ipv4: FamilyCheck,
    pub ipv6: FamilyCheck,
    pub preferred: Option<Family>,
}

/// The Kite Connect ID that cannot exist (real ones are 19 digits and never start with 0).
pub const PROBE_ORDER_ID: &str = "0000000000000000000";

/// The IP in Kite's `IP (…) is not allowed…` message.
pub fn seen_ip(message: &str) -> Option<String> {
    let rest = message.strip_prefix("IP (")?;
    let end = rest.find(')')?;
    Some(rest[..end].to_string())
}

/// Runs the order probe once per family. In sandbox mode a family the API host does not
/// resolve to is tried on that family's loopback (the sandbox may serve both).
pub fn check_orders(
    port: &dyn ReadinessPort,
    sandbox: bool,
    api_key: &Secret,
    token: &Secret,
) -> OrdersCheck {
    let resolved = port.api_addresses();
    let addrs = resolved.clone().unwrap_or_default();
    let preferred = addrs.first().copied().map(Family::of);
    let one = |family: Family| -> FamilyCheck {
        let target = addrs
            .iter()
            .copied()
            .find(|a| Family::of(*a) == family)
            .or_else(|| sandbox.then(|| family.loopback()));
        let Some(addr) = target else {
            let why = match &resolved {
                Err(e) => format!("the API host could not be resolved: {e}"),
                Ok(_) => format!("the API host has no {} address", family.name()),
            };
            return FamilyCheck {
                family,
                target: None,
                outcome: Outcome::Skipped(why),
            };
        };
        let outcome = match port.cancel_probe(addr, api_key, token) {
            Ok(()) => Outcome::Allowed {
                source: port.source_address(addr),
            },
            Err(e) => classify(port, addr, sandbox, family, e),
        };
        FamilyCheck {
            family,
            target: Some(addr),
            outcome,
        }
    };
    OrdersCheck {
        ipv4: one(Family::Ipv4),
        ipv6: one(Family::Ipv6),
        preferred,
    }
}

fn classify(
    port: &dyn ReadinessPort,
    addr: IpAddr,
    sandbox: bool,
    family: Family,
    e: KiteError,
) -> Outcome {
    match &e {
        KiteError::Api {
            refusal: Refusal::IpNotAllowed { listed },
            message,
            ..
        } => Outcome::Refused {
            // With no IP listed Kite names none; a sandbox's peer is the loopback used.
            seen: seen_ip(message).or_else(|| {
                sandbox
                    .then(|| port.source_address(addr).map(|a| a.to_string()))
                    .flatten()
            }),
            listed: *listed,
        },
        // A token Kite does not accept says nothing about the IP.
        KiteError::Api { .. } if e.is_token_error() => Outcome::Unknown(e),
        // Kite answered, and not with the IP rule: this IP may send orders.
        KiteError::Api { .. } => Outcome::Allowed {
            source: port.source_address(addr),
        },
        KiteError::Connect { .. } if sandbox => {
            Outcome::Skipped(format!("the sandbox does not serve {addr}"))
        }
        KiteError::Connect { .. } => Outcome::Skipped(format!(
            "this machine cannot reach Kite over {} (a bot will not use it either)",
            family.name()
        )),
        _ => Outcome::Unknown(e),
    }
}

impl OrdersCheck {
    pub fn family(&self, f: Family) -> &FamilyCheck {
        match f {
            Family::Ipv4 => &self.ipv4,
            Family::Ipv6 => &self.ipv6,
        }
    }

    /// True when the family a bot uses first is refused.
    pub fn preferred_refused(&self) -> bool {
        self.preferred
            .is_some_and(|f| matches!(self.family(f).outcome, Outcome::Refused { .. }))
    }

    /// The addresses Kite named in its refusals.
    pub fn refused_ips(&self) -> Vec<String> {
        [&self.ipv4, &self.ipv6]
            .iter()
            .filter_map(|c| match &c.outcome {
                Outcome::Refused { seen: Some(ip), .. } => Some(ip.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn any_refused(&self) -> bool {
        [&self.ipv4, &self.ipv6]
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Refused { .. }))
    }

    /// The record kept in the profile's metadata (no secrets).
    pub fn record(&self, at: Timestamp) -> OrdersRecord {
        OrdersRecord {
            checked_at: at,
            preferred: self.preferred,
            ipv4: FamilyRecord::of(&self.ipv4),
            ipv6: FamilyRecord::of(&self.ipv6),
        }
    }
}

impl FamilyCheck {
    /// `pass`, `fail` or `skip` (a check that could not be made is a skip with its reason).
    pub fn verdict(&self) -> &'static str {
        match self.outcome {
            Outcome::Allowed { .. } => "pass",
            Outcome::Refused { .. } => "fail",
            Outcome::Skipped(_) | Outcome::Unknown(_) => "skip",
        }
    }

    /// One line for a person or the `detail` of a doctor probe; names the IP.
    pub fn detail(&self, preferred: Option<Family>) -> String {
        let name = self.family.name();
        let pref = if preferred == Some(self.family) {
            " (the family this machine prefers: bots use it first)"
        } else {
            ""
        };
        match &self.outcome {
            Outcome::Allowed { source } => match source {
                Some(ip) if is_public(*ip) || ip.is_loopback() => {
                    format!("orders from this machine: allowed over {name} {ip}{pref}")
                }
                Some(ip) => format!(
                    "orders from this machine: allowed over {name} (from {ip} behind NAT: Kite sees your router's public IP){pref}"
                ),
                None => format!("orders from this machine: allowed over {name}{pref}"),
            },
            Outcome::Refused { seen, listed } => {
                let ip = seen.as_deref().unwrap_or("this machine's address");
                if *listed {
                    format!(
                        "orders over {name} are refused: Kite saw IP {ip}, which is not on the IP Whitelist{pref}"
                    )
                } else {
                    format!(
                        "orders over {name} are refused: no IPs are on the IP Whitelist (Kite saw {ip}){pref}"
                    )
                }
            }
            Outcome::Skipped(why) => format!("{name} not checked: {why}"),
            Outcome::Unknown(e) => format!("{name} not checked: {e}"),
        }
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_private() || v4.is_link_local() || v4.is_loopback()),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xe000) == 0x2000,
    }
}

/// What to enter where, for the refused addresses. `console_profile` is the sandbox
/// console's profile page (sandbox mode), `None` for the live console.
pub fn whitelist_fix(ips: &[String], console_profile: Option<&str>) -> Fix {
    let what = if ips.is_empty() {
        "this machine's public IP".to_string()
    } else {
        ips.join(" and ")
    };
    let place = console_profile.map_or_else(
        || LIVE_WHITELIST.to_string(),
        |u| format!("the sandbox console's profile page {u} → IP Whitelist"),
    );
    format!(
        "add {what} on {place}; at most two IPs, one change per week, so check before saving (the IPs may be shared only within your immediate family)"
    )
    .into()
}

/// The last order probe, as the profile's metadata keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrdersRecord {
    pub checked_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred: Option<Family>,
    pub ipv4: FamilyRecord,
    pub ipv6: FamilyRecord,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyRecord {
    /// `pass`, `fail` or `skip`.
    pub verdict: String,
    pub detail: String,
}

impl FamilyRecord {
    fn of(c: &FamilyCheck) -> Self {
        Self {
            verdict: c.verdict().into(),
            detail: c.detail(None),
        }
    }
}

/// Keeps `record` (and, when Kite told it, the plan it showed) in the profile's metadata.
pub fn save_record(
    ctx: &super::Ctx<'_>,
    record: Option<OrdersRecord>,
    plan: Option<Plan>,
) -> Result<(), crate::error::Error> {
    // Under the config file's lock, re-read and merged: a concurrent command changing
    // another profile keeps its change (a load and a save here would drop it).
    ctx.config.update(|config| {
        if let Some(meta) = config.profiles_mut(ctx.sandbox).get_mut(&ctx.profile) {
            if let Some(r) = record {
                meta.orders = Some(r);
            }
            if let Some(p) = plan {
                meta.plan = p;
            }
        }
        if plan.is_some() {
            // The plan is the app's: the family's other profiles see what Kite showed.
            config.sync_app_settings(&ctx.profile, ctx.sandbox);
        }
    })?;
    Ok(())
}

pub use report::*;

mod report;

#[cfg(test)]
mod tests;
