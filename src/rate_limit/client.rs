//! Asking the limiter: one round trip to the principal's object per request.

use worker::{console_error, Env};

use super::window::Decision;
use crate::config::Config;
use crate::http::ApiError;

/// Name of the Durable Object binding in `wrangler.toml`.
pub const BINDING: &str = "RATE_LIMITER";

/// Which limits a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any authenticated request: `RATE_LIMIT_STANDARD`.
    Standard,
    /// A send: `RATE_LIMIT_STANDARD` and `RATE_LIMIT_AI`.
    Ai,
    /// Register, login, refresh, per client IP: `RATE_LIMIT_AUTH`.
    Auth,
    /// Per client IP, before a query whose user is not known yet (an API
    /// key's lookup, the deep health check): `RATE_LIMIT_IP`.
    Ip,
    /// Login attempts per account: `RATE_LIMIT_LOGIN`.
    Login,
}

impl Kind {
    /// Whether an admitted request reports this limit in its
    /// `X-RateLimit-*` headers. The guard limits (per IP before a lookup,
    /// per account at login) report only a refusal: the headers describe
    /// the route's own budget.
    pub fn reports_admission(self) -> bool {
        matches!(self, Kind::Standard | Kind::Ai | Kind::Auth)
    }
}

/// The object's URL for these limits (the host is never resolved: a
/// Durable Object stub receives the request directly).
pub fn check_url(kind: Kind, config: &Config) -> String {
    let buckets = match kind {
        Kind::Standard => format!("bucket=standard:{}", config.rate_limit_standard),
        Kind::Ai => format!(
            "bucket=standard:{}&bucket=ai:{}",
            config.rate_limit_standard, config.rate_limit_ai
        ),
        Kind::Auth => format!("bucket=auth:{}", config.rate_limit_auth),
        Kind::Ip => format!("bucket=ip:{}", config.rate_limit_ip),
        Kind::Login => format!("bucket=login:{}", config.rate_limit_login),
    };
    format!(
        "https://rate-limiter.internal/check?window_ms={}&{buckets}",
        u64::from(config.rate_limit_window_seconds) * 1000
    )
}

async fn ask(env: &Env, key: &str, url: &str) -> Result<Decision, String> {
    let namespace = env.durable_object(BINDING).map_err(|e| e.to_string())?;
    let stub = namespace
        .id_from_name(key)
        .and_then(|id| id.get_stub())
        .map_err(|e| e.to_string())?;
    let mut resp = stub.fetch_with_str(url).await.map_err(|e| e.to_string())?;
    if resp.status_code() != 200 {
        return Err(format!("the limiter answered {}", resp.status_code()));
    }
    resp.json::<Decision>().await.map_err(|e| e.to_string())
}

/// Takes or renews (or with `close`, gives back) event stream `lease` of
/// the principal `key`: false when `max` streams are already open. An
/// unreachable limiter lets the stream through (it is logged).
pub async fn stream_lease(env: &Env, key: &str, lease: &str, max: u32, close: bool) -> bool {
    let url = format!(
        "https://rate-limiter.internal/streams?lease={lease}&max={max}{}",
        if close { "&close=1" } else { "" }
    );
    let asked = async {
        let namespace = env.durable_object(BINDING)?;
        namespace.get_by_name(key)?.fetch_with_str(&url).await
    };
    match asked.await {
        Ok(resp) => resp.status_code() != 429,
        Err(e) => {
            console_error!("rate limiter unreachable for the streams of {key}: {e}");
            true
        }
    }
}

/// Counts one request of `key` (e.g. `user:<id>`, `ip:<addr>`).
///
/// `Ok(Some(d))` with `d.allowed` false is a refusal for the caller to turn
/// into a 429. When the limiter cannot be reached the request is let through
/// (`Ok(None)`) unless it is a send or a login, which are refused with 503
/// (see [`when_unreachable`]).
pub async fn count(
    env: &Env,
    config: &Config,
    key: &str,
    kind: Kind,
) -> Result<Option<Decision>, ApiError> {
    match ask(env, key, &check_url(kind, config)).await {
        Ok(decision) => Ok(Some(decision)),
        Err(e) => {
            console_error!("rate limiter unreachable for {key} ({kind:?}): {e}");
            when_unreachable(kind).map(|()| None)
        }
    }
}

/// The policy when the limiter cannot answer: fail open for ordinary
/// requests, closed (503) for sends (an outage of the limiter must not open
/// the costly path) and for the per-account login limit (it must not open
/// password guessing against one account).
pub fn when_unreachable(kind: Kind) -> Result<(), ApiError> {
    match kind {
        Kind::Ai | Kind::Login => Err(ApiError::Unavailable(
            "the rate limiter is unavailable; try again shortly".into(),
        )),
        Kind::Standard | Kind::Auth | Kind::Ip => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_lookup(|name| {
            (name == "JWT_SECRET").then(|| "0123456789abcdef0123456789abcdef".to_string())
        })
        .expect("valid")
    }

    #[test]
    fn urls_name_every_bucket_and_the_window() {
        let c = config();
        assert_eq!(
            check_url(Kind::Ai, &c),
            "https://rate-limiter.internal/check?window_ms=60000&bucket=standard:60&bucket=ai:10"
        );
        assert!(check_url(Kind::Standard, &c).ends_with("&bucket=standard:60"));
        assert!(check_url(Kind::Auth, &c).ends_with("&bucket=auth:10"));
        assert!(check_url(Kind::Ip, &c).ends_with("&bucket=ip:600"));
        assert!(check_url(Kind::Login, &c).ends_with("&bucket=login:5"));
    }

    #[test]
    fn fails_open_except_for_sends_and_logins() {
        assert!(when_unreachable(Kind::Standard).is_ok());
        assert!(when_unreachable(Kind::Auth).is_ok());
        assert!(when_unreachable(Kind::Ip).is_ok());
        assert_eq!(when_unreachable(Kind::Ai).unwrap_err().status(), 503);
        assert_eq!(when_unreachable(Kind::Login).unwrap_err().status(), 503);
    }
}
