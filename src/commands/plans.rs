//! The Kite Connect plans as presented to the user, in one table that is
//! easy to update when Zerodha changes prices.

use crate::cli::Plan;

pub struct PlanText {
    pub plan: Plan,
    pub name: &'static str,
    pub price: &'static str,
    pub can: &'static str,
    pub cannot: &'static str,
}

pub const PLANS: [PlanText; 2] = [
    PlanText {
        plan: Plan::Personal,
        name: "Personal",
        price: "free",
        can: "orders, GTT, portfolio, positions, margins, profile",
        cannot: "no live (WebSocket) or historical market data",
    },
    PlanText {
        plan: Plan::Connect,
        name: "Connect",
        price: "₹500 per month per API key",
        can: "everything in Personal plus live WebSocket quotes and historical candles",
        cannot: "billed monthly; a lapsed subscription makes every API call fail",
    },
];

pub fn text(plan: Plan) -> &'static PlanText {
    PLANS
        .iter()
        .find(|p| p.plan == plan)
        .expect("every plan has a text")
}
