//! The Kite Connect plans an app can have (docs/kite-wire.md "Plans"). One type for the
//! tool's `--plan` flag and metadata file and for the sandbox's apps.

use serde::{Deserialize, Serialize};

/// The Kite Connect plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// Personal: free; orders, GTT, portfolio, margins; no market data.
    Personal,
    /// Connect: ₹500/month per API key; adds WebSocket and historical data.
    Connect,
}

impl Plan {
    /// `personal` or `connect`, any case, surrounding blanks ignored.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "personal" => Some(Self::Personal),
            "connect" => Some(Self::Connect),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Personal => "personal",
            Self::Connect => "connect",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_serde_agree() {
        for p in [Plan::Personal, Plan::Connect] {
            assert_eq!(Plan::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        assert_eq!(Plan::parse(" Connect "), Some(Plan::Connect));
        assert_eq!(Plan::parse("pro"), None);
    }
}
