//! The HTTP transport: Supabase's Data API (PostgREST behind Supabase's
//! gateway). A call is `POST {SUPABASE_URL}/rest/v1/rpc/{op}` whose JSON
//! body is the argument: PostgREST hands the whole body of a POST to a
//! function whose only parameter is an unnamed `jsonb`, which every `api`
//! function is. One request is one round trip and one transaction.
//!
//! Failures are classified from the status and PostgREST's
//! `{code, message, details, hint}` for the log only: the client sees the
//! envelope of [`DbError`] (503 unreachable, 504 too slow, 500 otherwise).

use std::time::Duration;

use futures::future::LocalBoxFuture;
use serde_json::Value;
use worker::{AbortController, Fetch, Headers, Method, Request, RequestInit};

use super::call::{by_sqlstate, check_op, Database, DbError, SCHEMA_HINT};
use crate::runtime::timeout;

/// The schema of the functions (sent as `Content-Profile`).
pub const SCHEMA: &str = "api";
/// How long one call may take, answer included, before it is a 504.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Sent as `User-Agent`: Supabase refuses secret keys from browser-like agents.
const USER_AGENT: &str = concat!("conversation-api/", env!("CARGO_PKG_VERSION"));

/// Calls over HTTP with a server key (configured once per isolate).
pub struct Rest {
    /// `SUPABASE_URL` without a trailing `/`.
    pub url: &'static str,
    /// The service-role JWT or `sb_secret_…` key.
    pub key: &'static str,
}

/// The headers of a call: the key as `apikey` (and, for a legacy JWT key,
/// as the bearer token too; a `sb_…` key is not a JWT and goes in `apikey`
/// only), the functions' schema and a non-browser agent.
pub fn headers(key: &str) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("Content-Type", "application/json".to_string()),
        ("Accept", "application/json".to_string()),
        ("Content-Profile", SCHEMA.to_string()),
        ("User-Agent", USER_AGENT.to_string()),
        ("apikey", key.to_string()),
    ];
    if !key.starts_with("sb_") {
        h.push(("Authorization", format!("Bearer {key}")));
    }
    h
}

impl Database for Rest {
    fn call<'a>(
        &'a self,
        op: &'static str,
        args: Value,
    ) -> LocalBoxFuture<'a, Result<Value, DbError>> {
        Box::pin(async move {
            check_op(op)?;
            let fetch = |detail: String| DbError::Unavailable(format!("api.{op}: {detail}"));
            let h = Headers::new();
            for (name, value) in headers(self.key) {
                h.set(name, &value).map_err(|e| fetch(e.to_string()))?;
            }
            let mut init = RequestInit::new();
            init.with_method(Method::Post)
                .with_headers(h)
                .with_body(Some(args.to_string().into()));
            let url = format!("{}/rest/v1/rpc/{op}", self.url);
            let req = Request::new_with_init(&url, &init).map_err(|e| fetch(e.to_string()))?;
            let abort = AbortController::default();
            let signal = abort.signal();
            let answered = timeout(CALL_TIMEOUT, async {
                let mut resp = Fetch::Request(req).send_with_signal(&signal).await?;
                let body = resp.text().await?;
                Ok::<_, worker::Error>((resp.status_code(), body))
            })
            .await;
            let (status, body) = match answered {
                None => {
                    abort.abort();
                    return Err(DbError::Timeout(format!(
                        "api.{op}: no answer within {} s",
                        CALL_TIMEOUT.as_secs()
                    )));
                }
                Some(Err(e)) => return Err(fetch(e.to_string())),
                Some(Ok(answer)) => answer,
            };
            if (200..300).contains(&status) {
                serde_json::from_str(&body).map_err(|e| DbError::Decode(format!("api.{op}: {e}")))
            } else {
                Err(classify(op, status, &body))
            }
        })
    }
}

/// Maps a refused call to a [`DbError`] whose text (for the log) says what
/// the operator can do.
pub fn classify(op: &str, status: u16, body: &str) -> DbError {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let field = |k: &str| parsed.get(k).and_then(Value::as_str).unwrap_or("");
    let (code, message) = (field("code"), field("message"));
    let said = if code.is_empty() && message.is_empty() {
        format!("api.{op}: HTTP {status}")
    } else {
        format!("api.{op}: HTTP {status} {code} {message}")
    };
    match code {
        // Unknown function (not migrated, or a stale schema cache), schema
        // not exposed, schema cache not loaded.
        "PGRST202" | "PGRST205" | "PGRST106" | "PGRST002" => {
            DbError::Unavailable(format!("{said}; {SCHEMA_HINT}"))
        }
        // PostgREST cannot reach PostgreSQL.
        "PGRST000" | "PGRST001" => DbError::Unavailable(said),
        // No connection free in PostgREST's pool in time.
        "PGRST003" => DbError::Timeout(said),
        // The key was refused.
        "PGRST300" | "PGRST301" | "PGRST302" | "PGRST303" | "42501" => DbError::Unavailable(format!(
            "{said}; check SUPABASE_SERVICE_ROLE_KEY / SUPABASE_SECRET_KEY (a server key is needed)"
        )),
        "" => match status {
            401 | 403 => DbError::Unavailable(format!(
                "{said}; the API gateway refused the key: check SUPABASE_SERVICE_ROLE_KEY / SUPABASE_SECRET_KEY"
            )),
            404 => DbError::Unavailable(format!("{said}; is SUPABASE_URL the project's URL?")),
            504 => DbError::Timeout(said),
            500.. => DbError::Unavailable(said),
            _ => DbError::Failed(said),
        },
        sqlstate => by_sqlstate(&said, sqlstate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: &str) -> String {
        format!(r#"{{"code":"{code}","message":"m","details":null,"hint":null}}"#)
    }

    #[test]
    fn both_kinds_of_key_are_sent_as_supabase_expects() {
        let jwt = headers("eyJhbGciOiJIUzI1NiJ9.e30.x");
        assert!(jwt.contains(&("apikey", "eyJhbGciOiJIUzI1NiJ9.e30.x".into())));
        assert!(jwt.contains(&("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x".into())));
        let secret = headers("sb_secret_abc");
        assert!(secret.contains(&("apikey", "sb_secret_abc".into())));
        assert!(secret.iter().all(|(n, _)| *n != "Authorization"));
        for h in [jwt, secret] {
            assert!(h.contains(&("Content-Profile", "api".into())));
            assert!(h
                .iter()
                .any(|(n, v)| *n == "User-Agent" && v.starts_with("conversation-api/")));
        }
    }

    #[test]
    fn postgrest_errors_map_to_statuses_and_say_what_to_do() {
        use crate::http::ApiError;
        let status = |e: DbError| ApiError::from(e).status();
        let cases: [(u16, String, u16, &str); 13] = [
            (404, err("PGRST202"), 503, "npm run migrate"),
            (406, err("PGRST106"), 503, "exposed"),
            (503, err("PGRST002"), 503, "schema"),
            (503, err("PGRST001"), 503, "PGRST001"),
            (504, err("PGRST003"), 504, "PGRST003"),
            (401, err("PGRST301"), 503, "SUPABASE_SERVICE_ROLE_KEY"),
            (401, err("42501"), 503, "SUPABASE_SECRET_KEY"),
            (
                401,
                r#"{"message":"Invalid API key"}"#.into(),
                503,
                "gateway",
            ),
            (502, "<html>bad gateway</html>".into(), 503, "HTTP 502"),
            (504, String::new(), 504, "HTTP 504"),
            (500, err("57014"), 504, "57014"),
            (500, err("08006"), 503, "08006"),
            (400, err("P0001"), 500, "P0001"),
        ];
        for (http, body, want, says) in cases {
            let e = classify("me", http, &body);
            let text = format!("{e:?}");
            assert!(text.contains("api.me"), "{text}");
            assert!(text.contains(says), "{http} {body}: {text}");
            assert_eq!(status(e), want, "{http} {body}");
        }
    }

    #[test]
    fn the_client_never_sees_what_the_server_said() {
        use crate::http::ApiError;
        let body = r#"{"code":"23505","message":"duplicate key value violates unique constraint \"users_email_key\"","details":"Key (email)=(a@b.c) already exists.","hint":null}"#;
        let e = ApiError::from(classify("register", 409, body));
        assert_eq!(e.status(), 500);
        assert!(!e.public_message().contains("users_email_key"));
        assert!(!e.public_message().contains("a@b.c"));
    }
}
