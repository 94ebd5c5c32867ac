//! Kite's `error_type` field: the exception class an SDK raises for an error envelope
//! (docs/kite-wire.md "Error types").

/// Kite's `error_type`, with unknown types kept as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorType {
    Token,
    Permission,
    Input,
    Network,
    Data,
    General,
    User,
    Order,
    Margin,
    Holding,
    Other(String),
}

impl ErrorType {
    pub fn parse(s: &str) -> Self {
        match s {
            "TokenException" => Self::Token,
            "PermissionException" => Self::Permission,
            "InputException" => Self::Input,
            "NetworkException" => Self::Network,
            "DataException" => Self::Data,
            "GeneralException" => Self::General,
            "UserException" => Self::User,
            "OrderException" => Self::Order,
            "MarginException" => Self::Margin,
            "HoldingException" => Self::Holding,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Token => "TokenException",
            Self::Permission => "PermissionException",
            Self::Input => "InputException",
            Self::Network => "NetworkException",
            Self::Data => "DataException",
            Self::General => "GeneralException",
            Self::User => "UserException",
            Self::Order => "OrderException",
            Self::Margin => "MarginException",
            Self::Holding => "HoldingException",
            Self::Other(s) => s,
        }
    }

    /// The error_type Kite gives an HTTP status, for bodies without one.
    pub fn for_status(status: u16) -> Self {
        match status {
            403 => Self::Token,
            400 => Self::Input,
            429 | 503 => Self::Network,
            502 => Self::Data,
            _ => Self::General,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_kept() {
        for name in [
            "TokenException",
            "PermissionException",
            "InputException",
            "NetworkException",
            "DataException",
            "GeneralException",
            "UserException",
            "OrderException",
            "MarginException",
            "HoldingException",
            "ShinyNewException",
        ] {
            assert_eq!(ErrorType::parse(name).as_str(), name);
        }
        assert_eq!(
            ErrorType::parse("ShinyNewException"),
            ErrorType::Other("ShinyNewException".into())
        );
    }

    #[test]
    fn statuses_without_a_type_get_kites_type() {
        assert_eq!(ErrorType::for_status(403), ErrorType::Token);
        assert_eq!(ErrorType::for_status(400), ErrorType::Input);
        assert_eq!(ErrorType::for_status(429), ErrorType::Network);
        assert_eq!(ErrorType::for_status(503), ErrorType::Network);
        assert_eq!(ErrorType::for_status(502), ErrorType::Data);
        assert_eq!(ErrorType::for_status(500), ErrorType::General);
    }
}
