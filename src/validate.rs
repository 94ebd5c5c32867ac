//! Validation of what people type or paste: client IDs, api keys and secrets. Pure; the
//! messages say what is wrong without repeating a secret.

/// Normalizes and checks a Zerodha client ID: trimmed, upper-cased, `^[A-Z]{2,3}[0-9]{3,5}$`.
pub fn client_id(input: &str) -> Result<String, String> {
    let id = input.trim().to_ascii_uppercase();
    if id.is_empty() {
        return Err("enter your Zerodha client ID (like AB1234)".into());
    }
    let letters = id.chars().take_while(char::is_ascii_uppercase).count();
    let digits = id
        .chars()
        .skip(letters)
        .take_while(char::is_ascii_digit)
        .count();
    if (2..=3).contains(&letters)
        && (3..=5).contains(&digits)
        && letters + digits == id.chars().count()
    {
        Ok(id)
    } else {
        Err("a Zerodha client ID is 2-3 letters then 3-5 digits, like AB1234".into())
    }
}

/// Why a pasted credential is not plausible, if it is not: quotes, spaces, line breaks
/// and other characters that come with a sloppy copy.
fn credential_shape(value: &str, what: &str, min: usize, max: usize) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if value.contains(['"', '\'', '`']) {
        return Err(format!("the {what} contains quotes: paste the value only"));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(format!(
            "the {what} contains spaces or line breaks: copy it again, value only"
        ));
    }
    if !value.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "the {what} has characters other than letters and digits"
        ));
    }
    let n = value.chars().count();
    if n < min || n > max {
        return Err(format!(
            "the {what} has {n} characters; Kite's are {min}-{max} (usually {})",
            if what == "api_key" { 16 } else { 32 }
        ));
    }
    Ok(())
}

/// Checks an api_key (trimmed by the caller): letters and digits, 6-64 long (Kite's are 16).
pub fn api_key(value: &str) -> Result<(), String> {
    credential_shape(value, "api_key", 6, 64)
}

/// Checks an api_secret: letters and digits, 16-128 long (Kite's are 32), not the api_key.
pub fn api_secret(value: &str, api_key: Option<&str>) -> Result<(), String> {
    let v = value.trim();
    credential_shape(v, "api_secret", 16, 128)?;
    if api_key.is_some_and(|k| k == v) {
        return Err(
            "that is the api_key; the api_secret is the other, longer value on the app's page"
                .into(),
        );
    }
    Ok(())
}

/// A new secret during `regenerate`: a valid secret that differs from the old one.
pub fn new_api_secret(value: &str, api_key: &str, old_secret: &str) -> Result<(), String> {
    api_secret(value, Some(api_key))?;
    if value.trim() == old_secret {
        return Err("that is the old secret: click \"Regenerate secret\" on the console and paste the new one".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids() {
        assert_eq!(client_id(" ab1234 ").unwrap(), "AB1234");
        assert_eq!(client_id("XYZ12345").unwrap(), "XYZ12345");
        for bad in [
            "", "A1234", "ABCD123", "AB12", "AB123456", "AB 1234", "AB1234X", "12AB34", "ÄB1234",
            "AB-1234",
        ] {
            assert!(client_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn api_keys() {
        assert!(api_key("abcd1234efgh5678").is_ok());
        for bad in [
            "",
            "\"abcd1234efgh5678\"",
            "abcd 1234efgh5678",
            "abcd1234efgh5678\n",
            "abc",
            "abcd-1234-efgh",
            &"a".repeat(65),
        ] {
            assert!(api_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn api_secrets_never_echoed() {
        let key = "abcd1234efgh5678";
        assert!(api_secret("s3cr3ts3cr3ts3cr3ts3cr3ts3cr3t12", Some(key)).is_ok());
        let err = api_secret(key, Some(key)).unwrap_err();
        assert!(err.contains("api_key"));
        for bad in [
            "'s3cr3ts3cr3ts3cr3ts3cr3ts3cr3t12'",
            "s3cr3t s3cr3ts3cr3ts3cr3ts3cr3t1",
            "short",
            "s3cr3t\ns3cr3ts3cr3ts3cr3ts3cr3t12",
        ] {
            let e = api_secret(bad, Some(key)).unwrap_err();
            assert!(!e.contains("s3cr3t"), "{e}");
        }
        assert!(
            new_api_secret(
                "s3cr3ts3cr3ts3cr3ts3cr3ts3cr3t12",
                key,
                "s3cr3ts3cr3ts3cr3ts3cr3ts3cr3t12"
            )
            .is_err()
        );
        assert!(
            new_api_secret(
                "n3wn3wn3wn3wn3wn3wn3wn3wn3wn3w12",
                key,
                "s3cr3ts3cr3ts3cr3ts3cr3ts3cr3t12"
            )
            .is_ok()
        );
    }
}
