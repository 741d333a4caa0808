//! Which transport reaches the database API, chosen once from the
//! bindings and settings: the `HYPERDRIVE` binding when it is configured,
//! otherwise Supabase's HTTP API when `SUPABASE_URL` and a server key
//! (`SUPABASE_SERVICE_ROLE_KEY` or `SUPABASE_SECRET_KEY`) are set.

/// The chosen transport and what it needs.
#[derive(Clone, PartialEq, Eq)]
pub enum Transport {
    /// The Postgres wire protocol through the `HYPERDRIVE` binding.
    Hyperdrive,
    /// `POST {url}/rest/v1/rpc/{op}` with a server key (PostgREST behind
    /// Supabase's API gateway).
    Http {
        /// `SUPABASE_URL` without a trailing `/`.
        url: String,
        /// The service-role JWT or `sb_secret_…` key.
        key: String,
    },
}

impl Transport {
    /// The transport's name for logs and docs: `hyperdrive` or `http`.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Hyperdrive => "hyperdrive",
            Transport::Http { .. } => "http",
        }
    }
}

/// Never prints the key.
impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Hyperdrive => f.write_str("Hyperdrive"),
            Transport::Http { url, .. } => write!(f, "Http({url})"),
        }
    }
}

/// Chooses the transport. `hyperdrive` says whether the binding exists;
/// `get` answers a setting (trimmed, empty as unset). Problems name the
/// variables, never a key's value.
pub fn choose(
    hyperdrive: bool,
    get: impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Transport {
    if hyperdrive {
        return Transport::Hyperdrive;
    }
    let url = get("SUPABASE_URL");
    let key = match (get("SUPABASE_SERVICE_ROLE_KEY"), get("SUPABASE_SECRET_KEY")) {
        (Some(a), Some(b)) if a != b => {
            problems.push(
                "SUPABASE_SERVICE_ROLE_KEY and SUPABASE_SECRET_KEY are both set and differ; \
                 set only one"
                    .into(),
            );
            None
        }
        (a, b) => a.or(b),
    };
    let both = get("SUPABASE_SERVICE_ROLE_KEY").is_some() && get("SUPABASE_SECRET_KEY").is_some();
    match (url, key) {
        (Some(url), Some(key)) => {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                problems.push("SUPABASE_URL must be an http:// or https:// URL".into());
            }
            if key.bytes().any(|b| !b.is_ascii_graphic()) {
                problems.push(
                    "the Supabase key (SUPABASE_SERVICE_ROLE_KEY or SUPABASE_SECRET_KEY) \
                     must be printable ASCII without spaces"
                        .into(),
                );
            }
            let url = url.trim_end_matches('/');
            let url = url.strip_suffix("/rest/v1").unwrap_or(url).to_string();
            Transport::Http { url, key }
        }
        (Some(_), None) if both => Transport::Hyperdrive,
        (Some(_), None) => {
            problems.push(
                "SUPABASE_URL is set without SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_SECRET_KEY)"
                    .into(),
            );
            Transport::Hyperdrive
        }
        (None, Some(_)) => {
            problems.push("a Supabase key is set without SUPABASE_URL".into());
            Transport::Hyperdrive
        }
        (None, None) => {
            problems.push(
                "no database: bind HYPERDRIVE in wrangler.toml, or set SUPABASE_URL and \
                 SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_SECRET_KEY)"
                    .into(),
            );
            Transport::Hyperdrive
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn pick(hyperdrive: bool, pairs: &[(&str, &str)]) -> (Transport, Vec<String>) {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        let mut problems = Vec::new();
        let t = choose(
            hyperdrive,
            |n| map.get(n).map(|v| v.to_string()),
            &mut problems,
        );
        (t, problems)
    }

    #[test]
    fn the_binding_wins() {
        let (t, p) = pick(true, &[("SUPABASE_URL", "https://x.supabase.co")]);
        assert_eq!((t, p.len()), (Transport::Hyperdrive, 0));
    }

    #[test]
    fn http_needs_a_url_and_a_key_under_either_name() {
        for name in ["SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_SECRET_KEY"] {
            let (t, p) = pick(
                false,
                &[
                    ("SUPABASE_URL", "https://x.supabase.co/rest/v1/"),
                    (name, "k1"),
                ],
            );
            assert!(p.is_empty(), "{p:?}");
            assert_eq!(
                t,
                Transport::Http {
                    url: "https://x.supabase.co".into(),
                    key: "k1".into()
                }
            );
            assert_eq!(t.name(), "http");
            assert!(
                !format!("{t:?}").contains("k1"),
                "the key stays out of logs"
            );
        }
    }

    #[test]
    fn incomplete_or_absent_settings_are_clear_problems() {
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[], "no database"),
            (
                &[("SUPABASE_URL", "https://x.supabase.co")],
                "without SUPABASE_SERVICE_ROLE_KEY",
            ),
            (
                &[("SUPABASE_SECRET_KEY", "sb_secret_x")],
                "without SUPABASE_URL",
            ),
            (
                &[
                    ("SUPABASE_URL", "https://x"),
                    ("SUPABASE_SECRET_KEY", "a"),
                    ("SUPABASE_SERVICE_ROLE_KEY", "b"),
                ],
                "both set",
            ),
            (
                &[
                    ("SUPABASE_URL", "x.supabase.co"),
                    ("SUPABASE_SECRET_KEY", "a"),
                ],
                "http:// or https://",
            ),
        ];
        for (pairs, says) in cases {
            let (_, p) = pick(false, pairs);
            assert_eq!(p.len(), 1, "{pairs:?}: {p:?}");
            assert!(p[0].contains(says), "{p:?}");
            assert!(!p[0].contains("sb_secret_x"));
        }
    }
}
