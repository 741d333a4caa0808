//! [`Ctx`]: what every route handler receives, whatever its route.

use std::rc::Rc;

use worker::{Env, Request};

use super::context::RequestContext;
use super::ApiError;
use crate::auth::Principal;
use crate::config::{Config, ConfigError};
use crate::db::Db;

/// Everything a route handler receives; every handler is
/// `async fn(Ctx) -> Result<Response, ApiError>`.
///
/// What the pipeline filled in depends on the route's row in
/// [`crate::app::table`]: routes that open the database get `db`, routes
/// with credentials get `principal`. The accessors turn a missing piece into
/// an error instead of a panic.
pub struct Ctx {
    /// The request itself (body unread).
    pub req: Request,
    /// The captured `{param}` segments of the path, in order.
    pub params: Vec<String>,
    /// The authenticated caller; `None` on public routes.
    pub principal: Option<Principal>,
    /// The database, on routes that use it (whichever transport carries it).
    pub db: Option<Db>,
    env: Env,
    config: &'static Result<Config, ConfigError>,
    rc: Option<Rc<RequestContext>>,
}

impl Ctx {
    /// A context with no caller and no connection yet; `rc` is present
    /// whenever the configuration is valid.
    pub fn new(
        req: Request,
        params: Vec<String>,
        env: Env,
        config: &'static Result<Config, ConfigError>,
        rc: Option<Rc<RequestContext>>,
    ) -> Self {
        Ctx {
            req,
            params,
            principal: None,
            db: None,
            env,
            config,
            rc,
        }
    }

    /// The bindings, vars and secrets (present even when the configuration is invalid).
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The configuration's problems, when it is invalid.
    pub fn config_problems(&self) -> Option<&'static ConfigError> {
        self.config.as_ref().err()
    }

    /// The validated configuration, or the 500 a misconfigured deployment answers.
    pub fn config(&self) -> Result<&'static Config, ApiError> {
        self.config.as_ref().map_err(|_| misconfigured())
    }

    /// The request context (needs a valid configuration).
    pub fn rc(&self) -> Result<Rc<RequestContext>, ApiError> {
        self.rc.clone().ok_or_else(misconfigured)
    }

    /// The authenticated caller (present on every non-public route).
    pub fn principal(&self) -> Result<Principal, ApiError> {
        self.principal
            .ok_or_else(|| ApiError::Internal("a protected handler ran unauthenticated".into()))
    }

    /// Path parameter `i` (`""` when the pattern has none there).
    pub fn param(&self, i: usize) -> String {
        self.params.get(i).cloned().unwrap_or_default()
    }

    /// Takes the database (present on routes that use one).
    pub fn take_db(&mut self) -> Result<Db, ApiError> {
        self.db
            .take()
            .ok_or_else(|| ApiError::Internal("a database handler ran without a connection".into()))
    }
}

/// The answer of every route that needs a configuration when it is invalid.
pub fn misconfigured() -> ApiError {
    ApiError::Misconfigured(
        "the server is misconfigured and refuses to serve; see /health and the log".into(),
    )
}
