//! The Worker's entry points: `start` installs the panic hook, `fetch`
//! stamps every response (request id, security headers, CORS) and runs the
//! request through one pipeline driven by its row in the route table:
//! match → authenticate → limit → handle → stamp headers.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::OnceLock;

use worker::{console_error, console_log, event, Context, Env, Request, Response};

use crate::app::{self, Access, Ctx, Kind, Resolution, RouteSpec};
use crate::auth::{self, Principal, Verified};
use crate::config::{Config, ConfigError};
use crate::db;
use crate::http::context::RequestContext;
use crate::http::ctx::misconfigured;
use crate::http::headers::{cors_headers, hides_timing, preflight_headers, request_id};
use crate::http::{respond, ApiError};
use crate::rate_limit;

/// The configuration, parsed and validated once per isolate.
static CONFIG: OnceLock<Result<Config, ConfigError>> = OnceLock::new();

fn config(env: &Env) -> &'static Result<Config, ConfigError> {
    CONFIG.get_or_init(|| {
        let lookup = |name: &str| {
            env.var(name)
                .map(|v| v.to_string())
                .or_else(|_| env.secret(name).map(|v| v.to_string()))
                .ok()
        };
        let parsed = Config::from_sources(lookup, env.hyperdrive(db::BINDING).is_ok());
        match &parsed {
            Ok(c) => {
                db::set_connect_timeout_ms(c.database_connect_timeout_ms);
                console_log!("database transport: {}", c.database.name())
            }
            Err(e) => console_error!("refusing to serve: {e}"),
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
            respond::empty(204).map_err(ApiError::from)
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
    if hides_timing(&path) {
        cors.retain(|(name, _)| !name.eq_ignore_ascii_case("Server-Timing"));
    } else {
        let took = crate::runtime::now_ms().saturating_sub(started);
        cors.push(("Server-Timing", format!("total;dur={took}")));
    }
    respond::stamp(&resp, &rid, &cors)?;
    console_log!(
        "[{rid}] {method} {path} {} {}ms",
        resp.status_code(),
        crate::runtime::now_ms().saturating_sub(started)
    );
    Ok(resp)
}

/// Matches the route, authenticates, applies the rate limits and runs the
/// handler, as the route's row in [`app::table`] says.
///
/// Order matters: credentials are checked and the limiter decides before
/// any query runs where possible: the per-IP limit of the public routes
/// before the connection opens, an access token's user limit while it opens
/// (a refused request closes it unused); an API key counts against its
/// client IP's lookup limit first, then is looked up, then its user's
/// limit decides.
/// Routes that open no database (see [`RouteSpec::opens_database`]) run
/// straight away, even when the configuration is invalid.
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
    let rc = config.as_ref().ok().map(|config| {
        Rc::new(RequestContext {
            env: env.clone(),
            ctx,
            config,
            request_id: rid.to_string(),
            response_headers,
        })
    });
    let mut handler_ctx = Ctx::new(req, params, env.clone(), config, rc.clone());
    if !route.opens_database() {
        return (route.handler)(handler_ctx).await;
    }
    let rc = rc.ok_or_else(misconfigured)?;
    let verified = authenticate(route, &rc, &handler_ctx.req, &handler_ctx.params)?;
    limit_by_ip(route, &rc, &handler_ctx.req, verified.as_ref()).await?;
    // An access token names its user: the limiter decides while the
    // database connection opens, and no query runs for a refused request.
    let gate = {
        let rc = rc.clone();
        let key = match (&verified, route.limit) {
            (Some(Verified::Jwt(user_id)), Some(kind)) => Some((format!("user:{user_id}"), kind)),
            _ => None,
        };
        async move {
            match key {
                Some((key, kind)) => rate_limit::enforce(&rc, &key, kind).await,
                None => Ok(()),
            }
        }
    };
    db::with_db_after(&env, &rc.config.database, gate, move |db| async move {
        rc.timing("db", db.connect_ms(), None);
        handler_ctx.principal = match verified {
            Some(v) => Some(principal(route, &rc, v, &db).await?),
            None => None,
        };
        handler_ctx.db = Some(db);
        (route.handler)(handler_ctx).await
    })
    .await
}

/// Checks the credentials a non-public route needs, without I/O (an API
/// key is only looked up once the connection is open).
fn authenticate(
    route: &RouteSpec,
    rc: &RequestContext,
    req: &Request,
    params: &[String],
) -> Result<Option<Verified>, ApiError> {
    match route.access {
        Access::Public => Ok(None),
        Access::AnyCredentialOrEventToken => match crate::events::token::from_query(req) {
            Some(token) => crate::events::token::verify(rc, &token, params).map(Some),
            None => auth::verify(rc, req).map(Some),
        },
        Access::AnyCredential | Access::AccessTokenOnly => auth::verify(rc, req).map(Some),
    }
}

/// Counts a request against the client IP's limits before any connection
/// opens: a public route's own limit, and for an API key (whose user is
/// known only after a query) the per-IP limit of lookups.
async fn limit_by_ip(
    route: &RouteSpec,
    rc: &RequestContext,
    req: &Request,
    verified: Option<&Verified>,
) -> Result<(), ApiError> {
    match (route.access, route.limit, verified) {
        (Access::Public, Some(kind), _) => {
            rate_limit::enforce(rc, &rate_limit::ip_key(req), kind).await
        }
        (_, _, Some(Verified::ApiKey(_))) => {
            rate_limit::enforce(rc, &rate_limit::ip_key(req), Kind::Ip).await
        }
        _ => Ok(()),
    }
}

/// Looks the credential up; an API key's user limit is decided now (an
/// access token's was decided while connecting); a route for access tokens
/// only refuses an API key with 403.
async fn principal(
    route: &RouteSpec,
    rc: &RequestContext,
    verified: Verified,
    db: &db::Db,
) -> Result<Principal, ApiError> {
    let by_key = matches!(verified, Verified::ApiKey(_));
    let p = auth::resolve(verified, db).await?;
    if let (true, Some(kind)) = (by_key, route.limit) {
        rate_limit::enforce(rc, &format!("user:{}", p.user_id), kind).await?;
    }
    if route.access == Access::AccessTokenOnly {
        p.require_session()?;
    }
    Ok(p)
}
