//! The Worker's entry points: `start` installs the panic hook, `fetch`
//! stamps every response (request id, security headers, CORS) and hands the
//! request to its route.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::OnceLock;

use tokio_postgres::Client;

use worker::{console_error, console_log, event, Context, Env, Request, Response};

use crate::app::{self, Resolution, Route};
use crate::auth::{self, routes, Principal, Verified};
use crate::config::{Config, ConfigError};
use crate::conversations::routes as conversations;
use crate::db;
use crate::health;
use crate::http::context::RequestContext;
use crate::http::headers::{cors_headers, preflight_headers, request_id};
use crate::http::request::header;
use crate::http::{respond, ApiError};
use crate::llm;
use crate::messages::routes as messages;
use crate::messages::send;
use crate::rate_limit::{self, client::Kind};
use crate::usage;

/// The configuration, parsed and validated once per isolate.
static CONFIG: OnceLock<Result<Config, ConfigError>> = OnceLock::new();

fn config(env: &Env) -> &'static Result<Config, ConfigError> {
    CONFIG.get_or_init(|| {
        let parsed = Config::from_lookup(|name| {
            env.var(name)
                .map(|v| v.to_string())
                .or_else(|_| env.secret(name).map(|v| v.to_string()))
                .ok()
        });
        if let Err(e) = &parsed {
            console_error!("refusing to serve: {e}");
        }
        parsed
    })
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let started = crate::runtime::now_ms();
    let rid = request_id(
        req.headers().get("X-Request-Id").ok().flatten().as_deref(),
        || uuid::Uuid::new_v4().to_string(),
    );
    let origin = req.headers().get("Origin").ok().flatten();
    let method = req.method().to_string();
    let path = req.path();
    let config = config(&env);
    let response_headers: Rc<RefCell<Vec<(&'static str, String)>>> = Rc::default();

    let (result, mut cors) = if method == "OPTIONS" {
        let cors = match config {
            Ok(c) => preflight_headers(&c.allowed_origins, origin.as_deref()),
            Err(_) => Vec::new(),
        };
        let result = if app::path_exists(&path) {
            respond::empty(204).map_err(|e| ApiError::Internal(e.to_string()))
        } else {
            Err(ApiError::NotFound(format!("no route for {path}")))
        };
        (result, cors)
    } else {
        let cors = match config {
            Ok(c) => cors_headers(&c.allowed_origins, origin.as_deref()),
            Err(_) => Vec::new(),
        };
        let result = dispatch(
            req,
            env,
            ctx,
            config,
            &method,
            &path,
            &rid,
            response_headers.clone(),
        )
        .await;
        (result, cors)
    };

    let resp = match result {
        Ok(resp) => resp,
        Err(err) => {
            if let Some(detail) = err.log_detail() {
                console_error!("[{rid}] {method} {path}: {detail}");
            }
            respond::error(&err, &rid)?
        }
    };
    cors.extend(response_headers.take());
    let took = crate::runtime::now_ms().saturating_sub(started);
    cors.push(("Server-Timing", format!("total;dur={took}")));
    respond::stamp(&resp, &rid, &cors)?;
    console_log!(
        "[{rid}] {method} {path} {} {}ms",
        resp.status_code(),
        crate::runtime::now_ms().saturating_sub(started)
    );
    Ok(resp)
}

/// Resolves the route, applies the rate limits, and runs its handler.
///
/// Order matters: credentials are checked and the limiter decides before
/// any query runs where possible: the per-IP limit of the auth routes before
/// the connection opens, an access token's user limit while it opens (a
/// refused request closes it unused); an API key is looked up first.
#[allow(clippy::too_many_arguments)]
async fn dispatch(
    req: Request,
    env: Env,
    ctx: Context,
    config: &'static Result<Config, ConfigError>,
    method: &str,
    path: &str,
    rid: &str,
    response_headers: Rc<RefCell<Vec<(&'static str, String)>>>,
) -> Result<Response, ApiError> {
    let (route, params) = match app::resolve(method, path) {
        Resolution::Found { route, params } => (route, params),
        Resolution::MethodNotAllowed { allow } => return Err(ApiError::MethodNotAllowed { allow }),
        Resolution::NotFound => {
            return Err(ApiError::NotFound(format!("no route for {method} {path}")))
        }
    };
    if route == Route::Health {
        return health::handle(&req, &env, config.as_ref().map(|_| ())).await;
    }
    let Ok(config) = config else {
        return Err(ApiError::Misconfigured(
            "the server is misconfigured and refuses to serve; see /health and the log".into(),
        ));
    };
    if route == Route::Models {
        return llm::routes::models(config);
    }
    let rc = RequestContext {
        env: env.clone(),
        ctx,
        config,
        request_id: rid.to_string(),
        response_headers,
    };
    let kind = rate_limit::kind_of(route);
    let verified = if route.is_public() {
        if kind == Kind::Auth {
            let ip = header(&req, "CF-Connecting-IP").unwrap_or_else(|| "unknown".into());
            rate_limit::enforce(&rc, &format!("ip:{ip}"), kind).await?;
        }
        None
    } else {
        Some(auth::verify(&rc, &req)?)
    };
    // An access token names its user: the limiter decides while the
    // database connection opens, and no query runs for a refused request.
    let jwt_user = match &verified {
        Some(Verified::Jwt(user_id)) => Some(format!("user:{user_id}")),
        _ => None,
    };
    let rc = &rc;
    let limited = async {
        match &jwt_user {
            Some(key) => rate_limit::enforce(rc, key, kind).await,
            None => Ok(()),
        }
    };
    let connecting = crate::runtime::now_ms();
    db::with_client_after(&env, limited, |mut client| async move {
        rc.timing(
            "db",
            crate::runtime::now_ms().saturating_sub(connecting),
            None,
        );
        let principal = match verified {
            None => None,
            Some(v) => {
                let by_key = matches!(v, Verified::ApiKey(_));
                let p = auth::resolve(rc, v, &client).await?;
                if by_key {
                    rate_limit::enforce(rc, &format!("user:{}", p.user_id), kind).await?;
                }
                Some(p)
            }
        };
        let result = handle(route, &params, req, rc, principal, &mut client).await;
        drop(client);
        result
    })
    .await
}

/// Runs one database-backed route.
async fn handle(
    route: Route,
    params: &[String],
    req: Request,
    rc: &RequestContext,
    principal: Option<Principal>,
    c: &mut Client,
) -> Result<Response, ApiError> {
    match route {
        Route::Register => return routes::register(rc, req, c).await,
        Route::Login => return routes::login(rc, req, c).await,
        Route::Refresh => return routes::refresh(rc, req, c).await,
        _ => {}
    }
    let p =
        principal.ok_or_else(|| ApiError::Internal(format!("{route:?} ran unauthenticated")))?;
    let param = |i: usize| params.get(i).map(String::as_str).unwrap_or_default();
    match route {
        Route::Logout => routes::logout(&p, req, c).await,
        Route::Me => routes::me(&p, c).await,
        Route::CreateApiKey => routes::create_api_key(&p, req, c).await,
        Route::ListApiKeys => routes::list_api_keys(&p, c).await,
        Route::DeleteApiKey => routes::delete_api_key(&p, param(0), c).await,
        Route::CreateConversation => conversations::create(rc, &p, req, c).await,
        Route::ListConversations => conversations::list(&p, &req, c).await,
        Route::GetConversation => conversations::get(&p, param(0), c).await,
        Route::UpdateConversation => conversations::update(&p, req, param(0), c).await,
        Route::DeleteConversation => conversations::delete(&p, param(0), c).await,
        Route::ListMessages => messages::list(&p, &req, param(0), c).await,
        Route::SendMessage => send::send(rc, &p, req, param(0), c).await,
        Route::StreamMessage => send::stream(rc, &p, req, param(0), c).await,
        Route::UsageStats => usage::stats::stats(&p, &req, c).await,
        Route::Health | Route::Models | Route::Register | Route::Login | Route::Refresh => Err(
            ApiError::Internal(format!("{route:?} reached the protected table")),
        ),
    }
}
