//! Typed settings, read from Worker vars and secrets and validated once.
//!
//! [`Config::from_lookup`] is pure: it takes a function that answers a
//! variable's value by name, so it is tested natively and used by the worker
//! with `Env` behind the lookup. Every problem is collected, not just the
//! first, so one look at `/health` or the log says everything that is wrong.

use std::fmt;

use crate::db::settings::{self, Transport};
use crate::llm::catalogue::{self, Limits, Model, UNKNOWN_MODEL_LIMITS};
use crate::llm::limits::parse_overrides;

/// Default model when a conversation names none (`DEFAULT_MODEL`).
pub const DEFAULT_MODEL: &str = "openai/gpt-oss-20b";
/// Model tried on the other provider when the first fails (`FALLBACK_MODEL`).
pub const FALLBACK_MODEL: &str = "gemini-2.5-flash-lite";
/// Default `GROQ_BASE_URL`.
pub const GROQ_BASE_URL: &str = "https://api.groq.com/openai/v1";
/// Default `GEMINI_BASE_URL`.
pub const GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";
/// Shortest accepted `JWT_SECRET`, in characters.
pub const MIN_JWT_SECRET_LEN: usize = 32;

/// Which cross-origin callers may use the API (`ALLOWED_ORIGINS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// `*`: any origin.
    Any,
    /// An exact list of origins such as `https://app.example.com`; empty means none.
    List(Vec<String>),
}

impl AllowedOrigins {
    /// Whether a request's `Origin` header value is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            AllowedOrigins::Any => true,
            AllowedOrigins::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }
}

/// The validated configuration of one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// HMAC key for access tokens (`JWT_SECRET`, at least 32 characters).
    pub jwt_secret: String,
    /// Access token lifetime in minutes (`JWT_ACCESS_TOKEN_EXPIRE_MINUTES`, default 30).
    pub access_token_minutes: u32,
    /// Refresh token lifetime in days (`JWT_REFRESH_TOKEN_EXPIRE_DAYS`, default 7).
    pub refresh_token_days: u32,
    /// Groq key (`GROQ_API_KEY`); Groq is skipped when absent.
    pub groq_api_key: Option<String>,
    /// Gemini key (`GOOGLE_AI_API_KEY`); Gemini is skipped when absent.
    pub google_ai_api_key: Option<String>,
    /// Groq or any OpenAI-compatible base URL (`GROQ_BASE_URL`), no trailing slash.
    pub groq_base_url: String,
    /// Gemini base URL (`GEMINI_BASE_URL`), no trailing slash.
    pub gemini_base_url: String,
    /// CORS policy (`ALLOWED_ORIGINS`, comma-separated, or `*`; default none).
    pub allowed_origins: AllowedOrigins,
    /// Model used when a conversation names none (`DEFAULT_MODEL`).
    pub default_model: String,
    /// Model tried when the first provider fails (`FALLBACK_MODEL`).
    pub fallback_model: String,
    /// Requests per user per minute (`RATE_LIMIT_STANDARD`, default 60).
    pub rate_limit_standard: u32,
    /// Sends per user per minute (`RATE_LIMIT_AI`, default 10).
    pub rate_limit_ai: u32,
    /// Register/login/refresh per client IP per minute (`RATE_LIMIT_AUTH`, default 10).
    pub rate_limit_auth: u32,
    /// Requests per client IP per minute that cost a query before their
    /// user is known: API-key requests and `/health?deep=1`
    /// (`RATE_LIMIT_IP`, default 600).
    pub rate_limit_ip: u32,
    /// Login attempts per account (normalised e-mail) per minute, in
    /// addition to the per-IP limit (`RATE_LIMIT_LOGIN`, default 5).
    pub rate_limit_login: u32,
    /// Length of the sliding rate-limit window in seconds
    /// (`RATE_LIMIT_WINDOW_SECONDS`, default 60).
    pub rate_limit_window_seconds: u32,
    /// Longest wait for a provider's first token before trying the next
    /// (`FIRST_TOKEN_TIMEOUT_MS`, default 15000).
    pub first_token_timeout_ms: u64,
    /// Silence on a stream after which a `ping` event is sent
    /// (`STREAM_PING_INTERVAL_MS`, default 15000).
    pub stream_ping_interval_ms: u64,
    /// `MODEL_LIMITS`: per-model context window and answer limit overrides
    /// (e.g. a smaller context served behind `GROQ_BASE_URL`).
    pub model_limits: Vec<(String, Limits)>,
    /// Longest wait for a database connection over Hyperdrive before the
    /// database counts as unreachable (`DATABASE_CONNECT_TIMEOUT_MS`,
    /// default 5000).
    pub database_connect_timeout_ms: u64,
    /// How the database API is reached: the `HYPERDRIVE` binding, else
    /// `SUPABASE_URL` with `SUPABASE_SERVICE_ROLE_KEY`/`SUPABASE_SECRET_KEY`.
    pub database: Transport,
    /// How long a conversation's events stay replayable, in seconds
    /// (`EVENT_RETENTION_SECONDS`, default 3600).
    pub event_retention_seconds: u32,
    /// Event streams one user may hold open at once (`EVENT_STREAMS_PER_USER`, default 5).
    pub event_streams_per_user: u32,
}

/// Everything wrong with the configuration, one line per problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Human-readable problems naming the variable concerned; never a secret's value.
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}", self.problems.join("; "))
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// [`Config::from_sources`] for a deployment with the `HYPERDRIVE` binding.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::from_sources(lookup, true)
    }

    /// Reads and validates every setting through `lookup` (name → value);
    /// `hyperdrive` says whether the `HYPERDRIVE` binding exists (it picks
    /// the database transport, see [`settings::choose`]).
    ///
    /// Empty values count as unset.
    pub fn from_sources(
        lookup: impl Fn(&str) -> Option<String>,
        hyperdrive: bool,
    ) -> Result<Config, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut problems = Vec::new();

        let jwt_secret = match get("JWT_SECRET") {
            None => {
                problems.push("JWT_SECRET is not set (it must be at least 32 characters)".into());
                String::new()
            }
            Some(s) if s.chars().count() < MIN_JWT_SECRET_LEN => {
                problems.push(format!(
                    "JWT_SECRET is too short ({} characters; at least {MIN_JWT_SECRET_LEN} required)",
                    s.chars().count()
                ));
                String::new()
            }
            Some(s) => s,
        };

        let mut number = |name: &str, default: u32, min: u32, max: u32| -> u32 {
            match get(name) {
                None => default,
                Some(raw) => match raw.parse::<u32>() {
                    Ok(n) if (min..=max).contains(&n) => n,
                    _ => {
                        problems.push(format!(
                            "{name} must be a whole number from {min} to {max} (got {raw:?})"
                        ));
                        default
                    }
                },
            }
        };
        let access_token_minutes = number("JWT_ACCESS_TOKEN_EXPIRE_MINUTES", 30, 1, 7 * 24 * 60);
        let refresh_token_days = number("JWT_REFRESH_TOKEN_EXPIRE_DAYS", 7, 1, 365);
        let rate_limit_standard = number("RATE_LIMIT_STANDARD", 60, 1, 1_000_000);
        let rate_limit_ai = number("RATE_LIMIT_AI", 10, 1, 1_000_000);
        let rate_limit_auth = number("RATE_LIMIT_AUTH", 10, 1, 1_000_000);
        let rate_limit_ip = number("RATE_LIMIT_IP", 600, 1, 1_000_000);
        let rate_limit_login = number("RATE_LIMIT_LOGIN", 5, 1, 1_000_000);
        let rate_limit_window_seconds = number("RATE_LIMIT_WINDOW_SECONDS", 60, 1, 3_600);
        let first_token_timeout_ms =
            u64::from(number("FIRST_TOKEN_TIMEOUT_MS", 15_000, 100, 120_000));
        let stream_ping_interval_ms =
            u64::from(number("STREAM_PING_INTERVAL_MS", 15_000, 100, 60_000));
        let database_connect_timeout_ms =
            u64::from(number("DATABASE_CONNECT_TIMEOUT_MS", 5_000, 100, 120_000));
        let event_retention_seconds = number("EVENT_RETENTION_SECONDS", 3_600, 5, 604_800);
        let event_streams_per_user = number("EVENT_STREAMS_PER_USER", 5, 1, 100);

        let mut base_url = |name: &str, default: &str| -> String {
            let raw = get(name).unwrap_or_else(|| default.to_string());
            if !(raw.starts_with("https://") || raw.starts_with("http://")) {
                problems.push(format!("{name} must be an http:// or https:// URL"));
            }
            raw.trim_end_matches('/').to_string()
        };
        let groq_base_url = base_url("GROQ_BASE_URL", GROQ_BASE_URL);
        let gemini_base_url = base_url("GEMINI_BASE_URL", GEMINI_BASE_URL);

        let database = settings::choose(hyperdrive, get, &mut problems);

        let default_model = get("DEFAULT_MODEL").unwrap_or_else(|| DEFAULT_MODEL.into());
        let fallback_model = get("FALLBACK_MODEL").unwrap_or_else(|| FALLBACK_MODEL.into());
        for (name, id) in [
            ("DEFAULT_MODEL", &default_model),
            ("FALLBACK_MODEL", &fallback_model),
        ] {
            if catalogue::find(id).is_none() {
                problems.push(format!("{name} {id:?} is not in the model catalogue"));
            }
        }

        let model_limits = parse_overrides(get("MODEL_LIMITS").as_deref(), &mut problems);

        let config = Config {
            jwt_secret,
            access_token_minutes,
            refresh_token_days,
            groq_api_key: get("GROQ_API_KEY"),
            google_ai_api_key: get("GOOGLE_AI_API_KEY"),
            groq_base_url,
            gemini_base_url,
            allowed_origins: parse_origins(get("ALLOWED_ORIGINS").as_deref()),
            default_model,
            fallback_model,
            rate_limit_standard,
            rate_limit_ai,
            rate_limit_auth,
            rate_limit_ip,
            rate_limit_login,
            rate_limit_window_seconds,
            first_token_timeout_ms,
            stream_ping_interval_ms,
            model_limits,
            database_connect_timeout_ms,
            database,
            event_retention_seconds,
            event_streams_per_user,
        };
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }
}

impl Config {
    /// The limits of a model in this deployment: `MODEL_LIMITS`' override,
    /// else the catalogue's, else [`UNKNOWN_MODEL_LIMITS`] for an id no
    /// longer offered.
    pub fn limits(&self, model: &str) -> Limits {
        self.model_limits
            .iter()
            .find(|(id, _)| id == model)
            .map(|(_, l)| *l)
            .or_else(|| catalogue::find(model).map(Model::limits))
            .unwrap_or(UNKNOWN_MODEL_LIMITS)
    }
}

/// Parses `ALLOWED_ORIGINS`: `*`, or origins separated by commas (trailing `/` ignored).
fn parse_origins(raw: Option<&str>) -> AllowedOrigins {
    let Some(raw) = raw else {
        return AllowedOrigins::List(Vec::new());
    };
    let list: Vec<String> = raw
        .split(',')
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
        .collect();
    if list.iter().any(|o| o == "*") {
        AllowedOrigins::Any
    } else {
        AllowedOrigins::List(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_apply_with_only_a_secret() {
        let c = config(&[("JWT_SECRET", SECRET)]).expect("valid");
        assert_eq!(c.access_token_minutes, 30);
        assert_eq!(c.refresh_token_days, 7);
        assert_eq!(c.default_model, DEFAULT_MODEL);
        assert_eq!(c.fallback_model, FALLBACK_MODEL);
        assert_eq!(c.groq_base_url, GROQ_BASE_URL);
        assert_eq!(c.gemini_base_url, GEMINI_BASE_URL);
        assert_eq!(
            (c.rate_limit_standard, c.rate_limit_ai, c.rate_limit_auth),
            (60, 10, 10)
        );
        assert_eq!((c.rate_limit_ip, c.rate_limit_login), (600, 5));
        assert_eq!(c.groq_api_key, None);
        assert_eq!(c.allowed_origins, AllowedOrigins::List(vec![]));
        assert_eq!(
            (c.event_retention_seconds, c.event_streams_per_user),
            (3_600, 5)
        );
    }

    #[test]
    fn missing_or_short_secret_is_reported_without_its_value() {
        let err = config(&[]).unwrap_err();
        assert!(err.problems[0].contains("JWT_SECRET is not set"));
        let err = config(&[("JWT_SECRET", "short-secret-value")]).unwrap_err();
        assert!(err.problems[0].contains("too short (18 characters"));
        assert!(!err.to_string().contains("short-secret-value"));
    }

    #[test]
    fn every_problem_is_collected() {
        let err = config(&[
            ("JWT_SECRET", "x"),
            ("RATE_LIMIT_AI", "ten"),
            ("JWT_REFRESH_TOKEN_EXPIRE_DAYS", "0"),
            ("GROQ_BASE_URL", "ftp://example.com"),
        ])
        .unwrap_err();
        assert_eq!(err.problems.len(), 4, "{err}");
    }

    #[test]
    fn numbers_and_urls_are_parsed() {
        let c = config(&[
            ("JWT_SECRET", SECRET),
            ("JWT_ACCESS_TOKEN_EXPIRE_MINUTES", "1"),
            ("RATE_LIMIT_STANDARD", " 5 "),
            ("GROQ_BASE_URL", "http://127.0.0.1:9999/groq/openai/v1/"),
            ("GROQ_API_KEY", ""),
            ("GOOGLE_AI_API_KEY", "k"),
        ])
        .expect("valid");
        assert_eq!(c.access_token_minutes, 1);
        assert_eq!(c.rate_limit_standard, 5);
        assert_eq!(c.groq_base_url, "http://127.0.0.1:9999/groq/openai/v1");
        assert_eq!(c.groq_api_key, None, "empty counts as unset");
        assert_eq!(c.google_ai_api_key.as_deref(), Some("k"));
    }

    #[test]
    fn models_must_be_in_the_catalogue() {
        let err = config(&[
            ("JWT_SECRET", SECRET),
            ("DEFAULT_MODEL", "llama-3.1-8b-instant"),
        ])
        .unwrap_err();
        assert!(err.problems[0].contains("DEFAULT_MODEL"), "{err}");
    }

    #[test]
    fn the_database_transport_is_chosen_from_the_binding_and_settings() {
        assert_eq!(
            config(&[("JWT_SECRET", SECRET)]).unwrap().database,
            Transport::Hyperdrive
        );
        let map: HashMap<&str, &str> = [
            ("JWT_SECRET", SECRET),
            ("SUPABASE_URL", "https://x.supabase.co"),
            ("SUPABASE_SECRET_KEY", "sb_secret_k"),
        ]
        .into();
        let lookup = |n: &str| map.get(n).map(|v| v.to_string());
        let c = Config::from_sources(lookup, false).unwrap();
        assert_eq!(c.database.name(), "http");
        let err = Config::from_sources(|n| (n == "JWT_SECRET").then(|| SECRET.into()), false)
            .unwrap_err();
        assert!(err.problems[0].contains("no database"), "{err}");
    }

    #[test]
    fn model_limits_override_the_catalogue() {
        let c = config(&[
            ("JWT_SECRET", SECRET),
            (
                "MODEL_LIMITS",
                " openai/gpt-oss-120b = 4096/1024 ; gemini-2.5-flash-lite=2048/256;",
            ),
        ])
        .unwrap();
        let l = c.limits("openai/gpt-oss-120b");
        assert_eq!((l.context_window, l.max_output_tokens), (4096, 1024));
        assert_eq!(c.limits("gemini-2.5-flash-lite").context_window, 2048);
        assert_eq!(c.limits("openai/gpt-oss-20b").context_window, 131_072);
        assert_eq!(c.limits("llama-3.1-8b-instant"), UNKNOWN_MODEL_LIMITS);
        for bad in [
            "gpt-9=4096/1024",
            "openai/gpt-oss-20b=4096",
            "openai/gpt-oss-20b=1024/4096",
            "openai/gpt-oss-20b=100/10",
            "openai/gpt-oss-20b=400/100",
            "openai/gpt-oss-20b=x/y",
        ] {
            let e = config(&[("JWT_SECRET", SECRET), ("MODEL_LIMITS", bad)]).unwrap_err();
            assert_eq!(e.problems.len(), 1, "{bad}: {:?}", e.problems);
            assert!(e.problems[0].contains("MODEL_LIMITS"), "{bad}");
        }
    }

    #[test]
    fn origins_parse() {
        assert_eq!(parse_origins(Some("*")), AllowedOrigins::Any);
        let list = parse_origins(Some("https://a.example, http://localhost:3000/ ,"));
        assert!(list.allows("https://a.example"));
        assert!(list.allows("http://localhost:3000"));
        assert!(!list.allows("https://evil.example"));
        assert!(!parse_origins(None).allows("https://a.example"));
        assert!(AllowedOrigins::Any.allows("https://anything"));
    }
}
