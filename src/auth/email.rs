//! E-mail addresses: normalised to lower case and checked for a plausible
//! shape (the contract asks for validation, not deliverability).

/// Longest accepted address (RFC 5321 path limit).
pub const MAX_LEN: usize = 254;

/// Trims and lower-cases `raw`, then checks its shape: one `@`, a local part
/// of 1–64 characters without spaces or quotes, and a domain of dot-separated
/// labels (letters, digits, hyphens; not starting or ending with a hyphen)
/// with at least two labels.
pub fn normalise(raw: &str) -> Result<String, &'static str> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err("is required");
    }
    if email.chars().count() > MAX_LEN {
        return Err("must be at most 254 characters");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err("is not a valid e-mail address");
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&*+-/=?^_`{|}~.".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if local_ok && domain_ok {
        Ok(email)
    } else {
        Err("is not a valid e-mail address")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_space() {
        assert_eq!(normalise("  Bob@Example.COM ").unwrap(), "bob@example.com");
        assert_eq!(
            normalise("a.b+tag@sub.example.co").unwrap(),
            "a.b+tag@sub.example.co"
        );
    }

    #[test]
    fn rejects_bad_shapes() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a@@example.com",
            "a b@example.com",
            "a'; DROP TABLE users;--@x.com",
            "a@-x.com",
            "a@x..com",
            ".a@x.com",
            "\"q\"@x.com",
        ] {
            assert!(normalise(bad).is_err(), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(normalise(&long).is_err());
    }
}
