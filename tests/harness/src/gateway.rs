//! Supabase's API gateway, reduced to what the worker's HTTP transport
//! meets, in front of a PostgREST-compatible server (`postrust`): it serves
//! `/rest/v1/…`, requires an `apikey` as Supabase does (401 without one or
//! with an unknown one), turns the key into the JWT PostgREST verifies
//! (a legacy JWT key is its own token; a `sb_secret_…` key becomes the
//! `service_role` token) and forwards the rest of the request.
//!
//! For the transport's failure tests, `POST /__faults` (outside `/rest/v1`)
//! arms a fault for every later call whose body contains a marker (a test's
//! own user id): the call is held, its connection dropped, or it reaches
//! the real server as a call of an unknown function, in a schema that is
//! not exposed, or with a token the server refuses. The answers are the
//! server's own.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64ct::{Base64UrlUnpadded, Encoding};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The path of the fault control (not under `/rest/v1`).
pub const FAULTS: &str = "/__faults";
/// The `sb_secret_…` key the gateway accepts for `service_role`.
pub const SECRET_KEY: &str = "sb_secret_conversation_api_test_0123456789";

/// The keys of the test project, derived from PostgREST's JWT secret.
#[derive(Debug, Clone)]
pub struct Keys {
    /// Legacy `service_role` key (an HS256 JWT).
    pub service_role: String,
    /// Legacy `anon` key (the public one).
    pub anon: String,
    /// The newer secret key ([`SECRET_KEY`]).
    pub secret: String,
}

impl Keys {
    /// Keys signed with `jwt_secret` (the server's `PGRST_JWT_SECRET`).
    pub fn new(jwt_secret: &str) -> Keys {
        Keys {
            service_role: jwt(jwt_secret, "service_role"),
            anon: jwt(jwt_secret, "anon"),
            secret: SECRET_KEY.to_string(),
        }
    }
}

/// An HS256 token with Supabase's claims for `role`, valid for ten years.
pub fn jwt(secret: &str, role: &str) -> String {
    let header = Base64UrlUnpadded::encode_string(br#"{"alg":"HS256","typ":"JWT"}"#);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let claims = json!({"iss": "supabase", "role": role, "iat": now, "exp": now + 315_360_000});
    let claims = Base64UrlUnpadded::encode_string(claims.to_string().as_bytes());
    let signing = format!("{header}.{claims}");
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(signing.as_bytes());
    let sig = Base64UrlUnpadded::encode_string(&mac.finalize().into_bytes());
    format!("{signing}.{sig}")
}

/// What an armed fault does to a matching call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fault {
    /// Hold the call this long, then forward it.
    Stall(Duration),
    /// Close the connection without answering.
    Drop,
    /// Call `<function>_missing` instead (the server answers PGRST202).
    UnknownFunction,
    /// Ask for the schema `app`, which is not exposed (PGRST106).
    HiddenSchema,
    /// Send a token the server refuses (PGRST301).
    BadToken,
}

type Faults = Arc<Mutex<Vec<(String, Fault)>>>;

/// The running gateway; dropping it stops it.
pub struct Gateway {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The keys it accepts.
    pub keys: Keys,
    task: JoinHandle<()>,
}

impl Gateway {
    /// `http://127.0.0.1:PORT`: the project URL (`SUPABASE_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    upstream: String,
    keys: Keys,
    client: reqwest::Client,
    faults: Faults,
}

/// Listens on `127.0.0.1:0` and forwards to `upstream` (the server's root).
pub async fn serve(upstream: &str, keys: Keys) -> std::io::Result<Gateway> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        upstream: upstream.trim_end_matches('/').to_string(),
        keys: keys.clone(),
        client: reqwest::Client::new(),
        faults: Faults::default(),
    });
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(shared.clone(), req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(Gateway { addr, keys, task })
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: Value) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", "application/json".parse().expect("static"));
    r
}

/// Fails (closing the connection unanswered) only for [`Fault::Drop`].
async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Reply, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(reply(
                StatusCode::BAD_REQUEST,
                json!({"message": e.to_string()}),
            ))
        }
    };
    let path = parts.uri.path().to_string();
    if path == FAULTS {
        return Ok(arm(&shared.faults, &body));
    }
    let Some(rest) = path.strip_prefix("/rest/v1") else {
        return Ok(reply(
            StatusCode::NOT_FOUND,
            json!({"message": "no Route matched with those values"}),
        ));
    };
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let token = match bearer_for(&shared.keys, header("apikey"), header("authorization")) {
        Ok(token) => token,
        Err(message) => return Ok(reply(StatusCode::UNAUTHORIZED, message)),
    };
    let fault = {
        let text = String::from_utf8_lossy(&body);
        let faults = shared
            .faults
            .lock()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        faults
            .iter()
            .find(|(needle, _)| text.contains(needle.as_str()))
            .map(|(_, f)| f.clone())
    };
    let mut target = rest.to_string();
    let mut profile = header("content-profile");
    let mut token = token;
    match fault {
        Some(Fault::Stall(d)) => tokio::time::sleep(d).await,
        Some(Fault::Drop) => return Err(std::io::Error::other("fault: drop")),
        Some(Fault::UnknownFunction) => target.push_str("_missing"),
        Some(Fault::HiddenSchema) => profile = Some("app".into()),
        Some(Fault::BadToken) => token = "not.a.token".into(),
        None => {}
    }
    let url = match parts.uri.query() {
        Some(q) => format!("{}{target}?{q}", shared.upstream),
        None => format!("{}{target}", shared.upstream),
    };
    let mut out = shared
        .client
        .request(parts.method.clone(), url)
        .header("authorization", format!("Bearer {token}"))
        .body(body);
    for name in ["content-type", "accept", "prefer", "accept-profile"] {
        if let Some(v) = header(name) {
            out = out.header(name, v);
        }
    }
    if let Some(p) = profile {
        out = out.header("content-profile", p);
    }
    let answer = match out.send().await {
        Ok(a) => a,
        Err(e) => {
            return Ok(reply(
                StatusCode::BAD_GATEWAY,
                json!({"message": format!("upstream: {e}")}),
            ))
        }
    };
    let status = answer.status();
    let content_type = answer.headers().get("content-type").cloned();
    let bytes = answer.bytes().await.unwrap_or_default();
    let mut r = Response::new(Full::new(bytes));
    *r.status_mut() = status;
    if let Some(ct) = content_type {
        r.headers_mut().insert("content-type", ct);
    }
    Ok(r)
}

/// The token to forward for the presented keys, or the gateway's 401 body.
fn bearer_for(
    keys: &Keys,
    apikey: Option<String>,
    authorization: Option<String>,
) -> Result<String, Value> {
    let Some(apikey) = apikey else {
        return Err(json!({
            "message": "No API key found in request",
            "hint": "No `apikey` request header or url param was found."
        }));
    };
    let bearer = authorization.map(|a| a.strip_prefix("Bearer ").unwrap_or(&a).to_string());
    if apikey == keys.secret {
        // A secret key is no JWT: Authorization may only repeat it.
        return match bearer {
            Some(b) if b != apikey => Err(json!({"message": "Invalid authorization header"})),
            _ => Ok(keys.service_role.clone()),
        };
    }
    if apikey == keys.service_role || apikey == keys.anon {
        return Ok(bearer.unwrap_or(apikey));
    }
    Err(json!({"message": "Invalid API key"}))
}

/// `POST /__faults {"needle", "fault": "stall"|"drop"|"unknown_function"|
/// "hidden_schema"|"bad_token", "ms"?}`.
fn arm(faults: &Faults, body: &[u8]) -> Reply {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let needle = v["needle"].as_str().unwrap_or_default().to_string();
    let fault = match v["fault"].as_str().unwrap_or_default() {
        "stall" => Fault::Stall(Duration::from_millis(v["ms"].as_u64().unwrap_or(1000))),
        "drop" => Fault::Drop,
        "unknown_function" => Fault::UnknownFunction,
        "hidden_schema" => Fault::HiddenSchema,
        "bad_token" => Fault::BadToken,
        other => {
            return reply(
                StatusCode::BAD_REQUEST,
                json!({"message": format!("unknown fault {other:?}")}),
            )
        }
    };
    if needle.len() < 8 {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"message": "needle must be at least 8 characters"}),
        );
    }
    match faults.lock() {
        Ok(mut f) => {
            f.push((needle, fault));
            reply(StatusCode::CREATED, json!({"armed": true}))
        }
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"message": e.to_string()}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_the_token_postgrest_verifies() {
        let keys = Keys::new("a-secret-of-at-least-thirty-two-chars!!");
        assert_eq!(keys.service_role.split('.').count(), 3);
        let ok = |a: Option<&str>, b: Option<&str>| {
            bearer_for(&keys, a.map(Into::into), b.map(Into::into))
        };
        assert_eq!(ok(Some(SECRET_KEY), None), Ok(keys.service_role.clone()));
        let same = format!("Bearer {SECRET_KEY}");
        assert_eq!(
            ok(Some(SECRET_KEY), Some(&same)),
            Ok(keys.service_role.clone())
        );
        assert!(ok(Some(SECRET_KEY), Some("Bearer other")).is_err());
        assert_eq!(ok(Some(&keys.anon), None), Ok(keys.anon.clone()));
        assert_eq!(
            ok(
                Some(&keys.service_role),
                Some(&format!("Bearer {}", keys.service_role))
            ),
            Ok(keys.service_role.clone())
        );
        assert!(ok(None, None).unwrap_err()["message"]
            .as_str()
            .is_some_and(|m| m.contains("No API key")));
        assert!(ok(Some("sb_secret_guess"), None).is_err());
    }

    #[test]
    fn tokens_carry_the_role_claim() {
        let t = jwt("s", "anon");
        let claims = t.split('.').nth(1).unwrap();
        let claims: Value =
            serde_json::from_slice(&Base64UrlUnpadded::decode_vec(claims).unwrap()).unwrap();
        assert_eq!(claims["role"], "anon");
        assert!(claims["exp"].as_u64().unwrap() > claims["iat"].as_u64().unwrap());
    }
}
