//! The route table: every route's facts in one place (method, path pattern,
//! who may call it, which rate limit it counts against, its handler and its
//! documentation), read by the request pipeline (`entry.rs`) and by the
//! OpenAPI document's tests.
//!
//! Matching is pure: [`resolve`] maps a method and a path to a
//! [`RouteSpec`] and its path parameters, or says why nothing matched (404
//! or 405).

mod table;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;

use worker::Response;

pub use crate::http::ctx::Ctx;
use crate::http::ApiError;
pub use crate::rate_limit::client::Kind;

/// What a handler's future resolves to.
pub type HandlerResult = Result<Response, ApiError>;

/// A handler's future, boxed so every handler fits one [`Handler`] type.
pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult>>>;

/// Every handler has one shape: `async fn(Ctx) -> Result<Response, ApiError>`,
/// boxed by [`handler!`](crate::handler).
pub type Handler = fn(Ctx) -> HandlerFuture;

/// Wraps `async fn(Ctx) -> Result<Response, ApiError>` into a [`Handler`].
#[macro_export]
macro_rules! handler {
    ($f:path) => {{
        fn boxed(ctx: $crate::app::Ctx) -> $crate::app::HandlerFuture {
            Box::pin($f(ctx))
        }
        boxed as $crate::app::Handler
    }};
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials needed (none are looked at).
    Public,
    /// A bearer access token or an API key.
    AnyCredential,
    /// A bearer access token only: an API key is refused with 403.
    AccessTokenOnly,
    /// Any credential, or a browser event token for the conversation in the
    /// path (`?token=`; see [`crate::events::token`]).
    AnyCredentialOrEventToken,
}

/// A route's documentation, the source of its OpenAPI operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteDoc {
    /// The OpenAPI `operationId`, unique in the table.
    pub operation_id: &'static str,
    /// One line for humans.
    pub summary: &'static str,
    /// The OpenAPI tag grouping it.
    pub tag: &'static str,
    /// Every non-2xx status the route can answer (405 is for the path, not the route).
    pub errors: &'static [u16],
}

/// One row of the route table.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    /// `GET`, `POST`, `PATCH` or `DELETE`.
    pub method: &'static str,
    /// Segments separated by `/`; `{name}` captures one non-empty segment.
    pub pattern: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The limits it counts against: per client IP on public routes, per
    /// user otherwise; `None` for none.
    pub limit: Option<Kind>,
    /// What answers it.
    pub handler: Handler,
    /// Its documentation.
    pub doc: RouteDoc,
}

impl RouteSpec {
    /// Whether the pipeline opens a database connection (and requires a
    /// valid configuration) before the handler runs. A public route without
    /// a rate limit must not: it runs when the database is down or the
    /// configuration invalid (health, models, the documentation).
    pub fn opens_database(&self) -> bool {
        self.access != Access::Public || self.limit.is_some()
    }
}

/// A route is identified by its method and pattern.
impl PartialEq for RouteSpec {
    fn eq(&self, other: &Self) -> bool {
        self.method == other.method && self.pattern == other.pattern
    }
}

impl Eq for RouteSpec {}

/// Every route the API serves. Order does not matter: no two patterns match
/// the same path.
pub fn table() -> &'static [RouteSpec] {
    table::TABLE
}

/// The outcome of matching a request line against the table.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolution {
    /// A route matched; `params` holds the captured segments in order.
    Found {
        /// The matched row.
        route: &'static RouteSpec,
        /// The captured `{param}` segments.
        params: Vec<String>,
    },
    /// The path exists but not with this method; `allow` lists the methods it has.
    MethodNotAllowed {
        /// The path's methods, then `OPTIONS`.
        allow: Vec<&'static str>,
    },
    /// No route has this path.
    NotFound,
}

/// Matches `method` and `path` against the route table.
///
/// `OPTIONS` is not routed here: CORS preflight is answered before routing
/// for any path that [`path_exists`].
pub fn resolve(method: &str, path: &str) -> Resolution {
    let mut allow = Vec::new();
    for route in table() {
        if let Some(params) = match_pattern(route.pattern, path) {
            if route.method == method {
                return Resolution::Found { route, params };
            }
            allow.push(route.method);
        }
    }
    if allow.is_empty() {
        Resolution::NotFound
    } else {
        allow.push("OPTIONS");
        Resolution::MethodNotAllowed { allow }
    }
}

/// Whether any route has this path, whatever its method.
pub fn path_exists(path: &str) -> bool {
    table()
        .iter()
        .any(|route| match_pattern(route.pattern, path).is_some())
}

/// Matches one pattern; returns the captured `{param}` segments.
fn match_pattern(pattern: &str, path: &str) -> Option<Vec<String>> {
    let mut params = Vec::new();
    let mut want = pattern.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(h)) if w.starts_with('{') && w.ends_with('}') => {
                if h.is_empty() {
                    return None;
                }
                params.push(h.to_string());
            }
            (Some(w), Some(h)) if w == h => {}
            _ => return None,
        }
    }
}
