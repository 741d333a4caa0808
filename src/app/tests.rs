use super::*;

fn found(method: &str, path: &str) -> (&'static str, Vec<String>) {
    match resolve(method, path) {
        Resolution::Found { route, params } => (route.doc.operation_id, params),
        other => panic!("{method} {path}: {other:?}"),
    }
}

fn route(operation_id: &str) -> &'static RouteSpec {
    table()
        .iter()
        .find(|r| r.doc.operation_id == operation_id)
        .unwrap_or_else(|| panic!("no route {operation_id}"))
}

#[test]
fn health_is_found() {
    assert_eq!(found("GET", "/health"), ("getHealth", vec![]));
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
    for path in [
        "/",
        "/nope",
        "/health/",
        "/healthz",
        "/api/v1",
        "",
        "/docs/",
        "/openapi.yaml",
    ] {
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
        found("DELETE", "/api/v1/auth/api-keys/abc"),
        ("deleteApiKey", vec!["abc".to_string()])
    );
    assert_eq!(
        resolve("PUT", "/api/v1/auth/api-keys"),
        Resolution::MethodNotAllowed {
            allow: vec!["POST", "GET", "OPTIONS"]
        }
    );
}

#[test]
fn conversation_routes_resolve() {
    assert_eq!(
        found("GET", "/api/v1/conversations/abc/messages"),
        ("listMessages", vec!["abc".to_string()])
    );
    assert_eq!(
        resolve("PUT", "/api/v1/conversations/abc"),
        Resolution::MethodNotAllowed {
            allow: vec!["GET", "PATCH", "DELETE", "OPTIONS"]
        }
    );
}

#[test]
fn doc_routes_are_public_unlimited_and_405_like_any_other() {
    for (path, id) in [
        ("/openapi.json", "getOpenApi"),
        ("/docs", "getSwaggerUi"),
        ("/redoc", "getRedoc"),
    ] {
        assert_eq!(found("GET", path), (id, vec![]));
        let r = route(id);
        assert_eq!((r.access, r.limit), (Access::Public, None), "{id}");
        assert!(!r.opens_database(), "{id}");
        assert_eq!(
            resolve("POST", path),
            Resolution::MethodNotAllowed {
                allow: vec!["GET", "OPTIONS"]
            }
        );
        assert!(path_exists(path));
    }
}

#[test]
fn access_and_limits_follow_the_contract() {
    let public: Vec<&str> = table()
        .iter()
        .filter(|r| r.access == Access::Public)
        .map(|r| r.doc.operation_id)
        .collect();
    assert_eq!(
        public,
        [
            "getHealth",
            "getOpenApi",
            "getSwaggerUi",
            "getRedoc",
            "register",
            "login",
            "refreshToken",
            "listModels"
        ]
    );
    for id in ["register", "login", "refreshToken"] {
        assert_eq!(route(id).limit, Some(Kind::Auth), "{id}");
        assert!(route(id).opens_database(), "{id}");
    }
    for id in ["sendMessage", "streamMessage"] {
        assert_eq!(route(id).limit, Some(Kind::Ai), "{id}");
    }
    for id in ["createApiKey", "listApiKeys", "deleteApiKey"] {
        assert_eq!(route(id).access, Access::AccessTokenOnly, "{id}");
    }
    let unlimited: Vec<&str> = table()
        .iter()
        .filter(|r| r.limit.is_none())
        .map(|r| r.doc.operation_id)
        .collect();
    assert_eq!(
        unlimited,
        [
            "getHealth",
            "getOpenApi",
            "getSwaggerUi",
            "getRedoc",
            "listModels"
        ]
    );
    // Every authenticated route counts against the caller's limits and
    // opens the database (credentials are looked up there).
    for r in table().iter().filter(|r| r.access != Access::Public) {
        assert!(
            matches!(r.limit, Some(Kind::Standard | Kind::Ai)),
            "{}",
            r.pattern
        );
        assert!(r.opens_database(), "{}", r.pattern);
    }
}

/// An example request line for a pattern: each `{param}` becomes `x`.
fn example(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|seg| if seg.starts_with('{') { "x" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_route_appears_once_and_resolves_to_itself() {
    assert_eq!(table().len(), 24);
    for r in table() {
        let path = example(r.pattern);
        match resolve(r.method, &path) {
            Resolution::Found { route, .. } => assert_eq!(route, r, "{path}"),
            other => panic!("{} {path}: {other:?}", r.method),
        }
        let same = table()
            .iter()
            .filter(|o| o.method == r.method && o.pattern == r.pattern)
            .count();
        assert_eq!(same, 1, "{} {}", r.method, r.pattern);
    }
}

#[test]
fn patterns_never_overlap() {
    // Two patterns overlap when some path matches both: same number of
    // segments, and each pair of segments equal or one of them a `{param}`.
    let param = |s: &str| s.starts_with('{') && s.ends_with('}');
    let overlap = |a: &str, b: &str| {
        let (a, b): (Vec<&str>, Vec<&str>) = (a.split('/').collect(), b.split('/').collect());
        a.len() == b.len()
            && a.iter()
                .zip(&b)
                .all(|(x, y)| x == y || param(x) || param(y))
    };
    let patterns: std::collections::BTreeSet<&str> = table().iter().map(|r| r.pattern).collect();
    for a in &patterns {
        for b in &patterns {
            if a != b {
                assert!(!overlap(a, b), "{a} overlaps {b}");
            }
        }
    }
    assert!(
        overlap("/a/{id}", "/a/b"),
        "the check itself finds overlaps"
    );
}

#[test]
fn operation_ids_are_unique_and_docs_complete() {
    let mut seen = std::collections::BTreeSet::new();
    for r in table() {
        let d = &r.doc;
        assert!(seen.insert(d.operation_id), "{} twice", d.operation_id);
        assert!(
            !d.summary.is_empty() && !d.tag.is_empty(),
            "{}",
            d.operation_id
        );
        assert!(
            d.errors.windows(2).all(|w| w[0] < w[1]),
            "{}: errors sorted, no repeats",
            d.operation_id
        );
        assert!(
            d.errors.iter().all(|s| (400..600).contains(s) && *s != 405),
            "{}",
            d.operation_id
        );
        assert!(d.errors.contains(&500), "{}", d.operation_id);
    }
}

#[test]
fn errors_follow_access_limits_and_bodies() {
    for r in table() {
        let d = &r.doc;
        let has = |s: u16| d.errors.contains(&s);
        let id = d.operation_id;
        // The deep health check is limited per IP inside its handler (the
        // route itself runs without the database).
        assert_eq!(
            has(429),
            r.limit.is_some() || id == "getHealth",
            "{id}: 429 iff limited"
        );
        assert_eq!(
            has(503),
            r.opens_database() || id == "getHealth",
            "{id}: 503"
        );
        assert_eq!(has(504), r.opens_database(), "{id}: 504");
        if r.access != Access::Public {
            assert!(has(401), "{id}: 401");
        }
        if r.access == Access::AccessTokenOnly {
            assert!(has(403), "{id}: 403");
        }
        if r.pattern.contains('{') {
            assert!(has(404), "{id}: 404 for ids");
        }
        // A body is read by every POST and PATCH (but minting an event
        // token, which takes none): malformed, too large, invalid.
        if matches!(r.method, "POST" | "PATCH") && id != "createEventToken" {
            for s in [400, 413, 422] {
                assert!(has(s), "{id}: {s}");
            }
        }
    }
    assert!(route("register").doc.errors.contains(&409));
    assert!(route("sendMessage").doc.errors.contains(&409));
    assert!(route("sendMessage").doc.errors.contains(&502));
    assert!(route("streamMessage").doc.errors.contains(&409));
}

#[test]
fn path_exists_ignores_method() {
    assert!(path_exists("/health"));
    assert!(path_exists("/api/v1/conversations/x/messages/stream"));
    assert!(!path_exists("/nope"));
}
