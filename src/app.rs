//! The route table, in one place, readable top to bottom.
//!
//! Matching is pure: [`resolve`] maps a method and a path to a [`Route`] and
//! its path parameters, or says why nothing matched (404 or 405).

/// Every route the API serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /health`: liveness, and with `?deep=1` a database round trip.
    Health,
    /// `POST /api/v1/auth/register`.
    Register,
    /// `POST /api/v1/auth/login`.
    Login,
    /// `POST /api/v1/auth/refresh`.
    Refresh,
    /// `POST /api/v1/auth/logout`.
    Logout,
    /// `GET /api/v1/auth/me`.
    Me,
    /// `POST /api/v1/auth/api-keys`.
    CreateApiKey,
    /// `GET /api/v1/auth/api-keys`.
    ListApiKeys,
    /// `DELETE /api/v1/auth/api-keys/{id}`.
    DeleteApiKey,
    /// `GET /api/v1/models`.
    Models,
    /// `POST /api/v1/conversations`.
    CreateConversation,
    /// `GET /api/v1/conversations`.
    ListConversations,
    /// `GET /api/v1/conversations/{id}`.
    GetConversation,
    /// `PATCH /api/v1/conversations/{id}`.
    UpdateConversation,
    /// `DELETE /api/v1/conversations/{id}`.
    DeleteConversation,
    /// `GET /api/v1/conversations/{id}/messages`.
    ListMessages,
    /// `POST /api/v1/conversations/{id}/messages`.
    SendMessage,
    /// `POST /api/v1/conversations/{id}/messages/stream`.
    StreamMessage,
    /// `GET /api/v1/usage/stats`.
    UsageStats,
}

impl Route {
    /// Routes that need no credentials.
    pub fn is_public(self) -> bool {
        matches!(
            self,
            Route::Health | Route::Models | Route::Register | Route::Login | Route::Refresh
        )
    }
}

/// One row of the route table: a method, a path pattern and its route.
struct Spec {
    method: &'static str,
    /// Segments separated by `/`; `{name}` captures one segment.
    pattern: &'static str,
    route: Route,
}

/// The route table. Order does not matter: patterns never overlap.
#[rustfmt::skip]
const TABLE: &[Spec] = &[
    spec("GET",    "/health",                                  Route::Health),
    spec("POST",   "/api/v1/auth/register",                    Route::Register),
    spec("POST",   "/api/v1/auth/login",                       Route::Login),
    spec("POST",   "/api/v1/auth/refresh",                     Route::Refresh),
    spec("POST",   "/api/v1/auth/logout",                      Route::Logout),
    spec("GET",    "/api/v1/auth/me",                          Route::Me),
    spec("POST",   "/api/v1/auth/api-keys",                    Route::CreateApiKey),
    spec("GET",    "/api/v1/auth/api-keys",                    Route::ListApiKeys),
    spec("DELETE", "/api/v1/auth/api-keys/{id}",               Route::DeleteApiKey),
    spec("GET",    "/api/v1/models",                           Route::Models),
    spec("POST",   "/api/v1/conversations",                    Route::CreateConversation),
    spec("GET",    "/api/v1/conversations",                    Route::ListConversations),
    spec("GET",    "/api/v1/conversations/{id}",               Route::GetConversation),
    spec("PATCH",  "/api/v1/conversations/{id}",               Route::UpdateConversation),
    spec("DELETE", "/api/v1/conversations/{id}",               Route::DeleteConversation),
    spec("GET",    "/api/v1/conversations/{id}/messages",      Route::ListMessages),
    spec("POST",   "/api/v1/conversations/{id}/messages",      Route::SendMessage),
    spec("POST",   "/api/v1/conversations/{id}/messages/stream", Route::StreamMessage),
    spec("GET",    "/api/v1/usage/stats",                      Route::UsageStats),
];

const fn spec(method: &'static str, pattern: &'static str, route: Route) -> Spec {
    Spec {
        method,
        pattern,
        route,
    }
}

/// The outcome of matching a request line against the table.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolution {
    /// A route matched; `params` holds the captured segments in order.
    Found { route: Route, params: Vec<String> },
    /// The path exists but not with this method; `allow` lists the methods it has.
    MethodNotAllowed { allow: Vec<&'static str> },
    /// No route has this path.
    NotFound,
}

/// Matches `method` and `path` against the route table.
///
/// `OPTIONS` is not routed here: CORS preflight is answered before routing
/// for any path that [`path_exists`].
pub fn resolve(method: &str, path: &str) -> Resolution {
    let mut allow = Vec::new();
    for spec in TABLE {
        if let Some(params) = match_pattern(spec.pattern, path) {
            if spec.method == method {
                return Resolution::Found {
                    route: spec.route,
                    params,
                };
            }
            allow.push(spec.method);
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
    TABLE
        .iter()
        .any(|spec| match_pattern(spec.pattern, path).is_some())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_is_found() {
        assert_eq!(
            resolve("GET", "/health"),
            Resolution::Found {
                route: Route::Health,
                params: vec![]
            }
        );
    }

    #[test]
    fn wrong_method_on_known_path_is_405_with_allow() {
        assert_eq!(
            resolve("POST", "/health"),
            Resolution::MethodNotAllowed {
                allow: vec!["GET", "OPTIONS"]
            }
        );
    }

    #[test]
    fn unknown_paths_are_404() {
        for path in ["/", "/nope", "/health/", "/healthz", "/api/v1", ""] {
            assert_eq!(resolve("GET", path), Resolution::NotFound, "{path}");
        }
    }

    #[test]
    fn params_are_captured_and_never_empty() {
        assert_eq!(
            match_pattern("/a/{id}/b", "/a/42/b"),
            Some(vec!["42".to_string()])
        );
        assert_eq!(match_pattern("/a/{id}/b", "/a//b"), None);
        assert_eq!(match_pattern("/a/{id}", "/a/1/extra"), None);
    }

    #[test]
    fn auth_routes_resolve_with_params() {
        assert_eq!(
            resolve("DELETE", "/api/v1/auth/api-keys/abc"),
            Resolution::Found {
                route: Route::DeleteApiKey,
                params: vec!["abc".into()]
            }
        );
        assert_eq!(
            resolve("PUT", "/api/v1/auth/api-keys"),
            Resolution::MethodNotAllowed {
                allow: vec!["POST", "GET", "OPTIONS"]
            }
        );
        assert!(Route::Login.is_public());
        assert!(!Route::Me.is_public());
    }

    #[test]
    fn conversation_routes_resolve() {
        assert_eq!(
            resolve("GET", "/api/v1/conversations/abc/messages"),
            Resolution::Found {
                route: Route::ListMessages,
                params: vec!["abc".into()]
            }
        );
        assert_eq!(
            resolve("PUT", "/api/v1/conversations/abc"),
            Resolution::MethodNotAllowed {
                allow: vec!["GET", "PATCH", "DELETE", "OPTIONS"]
            }
        );
        assert!(Route::Models.is_public());
        assert!(!Route::ListConversations.is_public());
    }

    /// An example request line per route; the match is exhaustive, so a new
    /// route cannot be added without a line here and a row in `TABLE`.
    fn example(route: Route) -> (&'static str, &'static str) {
        match route {
            Route::Health => ("GET", "/health"),
            Route::Register => ("POST", "/api/v1/auth/register"),
            Route::Login => ("POST", "/api/v1/auth/login"),
            Route::Refresh => ("POST", "/api/v1/auth/refresh"),
            Route::Logout => ("POST", "/api/v1/auth/logout"),
            Route::Me => ("GET", "/api/v1/auth/me"),
            Route::CreateApiKey => ("POST", "/api/v1/auth/api-keys"),
            Route::ListApiKeys => ("GET", "/api/v1/auth/api-keys"),
            Route::DeleteApiKey => ("DELETE", "/api/v1/auth/api-keys/x"),
            Route::Models => ("GET", "/api/v1/models"),
            Route::CreateConversation => ("POST", "/api/v1/conversations"),
            Route::ListConversations => ("GET", "/api/v1/conversations"),
            Route::GetConversation => ("GET", "/api/v1/conversations/x"),
            Route::UpdateConversation => ("PATCH", "/api/v1/conversations/x"),
            Route::DeleteConversation => ("DELETE", "/api/v1/conversations/x"),
            Route::ListMessages => ("GET", "/api/v1/conversations/x/messages"),
            Route::SendMessage => ("POST", "/api/v1/conversations/x/messages"),
            Route::StreamMessage => ("POST", "/api/v1/conversations/x/messages/stream"),
            Route::UsageStats => ("GET", "/api/v1/usage/stats"),
        }
    }

    const ALL: [Route; 19] = [
        Route::Health,
        Route::Register,
        Route::Login,
        Route::Refresh,
        Route::Logout,
        Route::Me,
        Route::CreateApiKey,
        Route::ListApiKeys,
        Route::DeleteApiKey,
        Route::Models,
        Route::CreateConversation,
        Route::ListConversations,
        Route::GetConversation,
        Route::UpdateConversation,
        Route::DeleteConversation,
        Route::ListMessages,
        Route::SendMessage,
        Route::StreamMessage,
        Route::UsageStats,
    ];

    #[test]
    fn every_route_is_in_the_table() {
        assert_eq!(TABLE.len(), ALL.len());
        for want in ALL {
            let (method, path) = example(want);
            assert!(
                matches!(resolve(method, path), Resolution::Found { route, .. } if route == want),
                "{method} {path}"
            );
        }
        for route in TABLE.iter().map(|s| s.route) {
            assert_eq!(
                TABLE.iter().filter(|s| s.route == route).count(),
                1,
                "{route:?}"
            );
        }
    }

    #[test]
    fn path_exists_ignores_method() {
        assert!(path_exists("/health"));
        assert!(!path_exists("/nope"));
    }
}
