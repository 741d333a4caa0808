//! The two documentation pages, `GET /docs` (Swagger UI) and `GET /redoc`
//! (ReDoc), as static HTML with a strict `Content-Security-Policy`.
//!
//! The pages only reference same-origin static files under `/docs/…`
//! (Workers static assets, copied from the pinned npm packages by
//! `tests/build/docs-assets.mjs`): no CDN, no inline script, no `eval`. Both
//! read the contract from `/openapi.json`.

use worker::Response;

use crate::http::ctx::Ctx;
use crate::http::ApiError;

/// One of the documentation pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `GET /docs`: Swagger UI, with "Authorize" and "Try it out".
    SwaggerUi,
    /// `GET /redoc`: ReDoc, read only.
    Redoc,
}

/// The note both pages show about the streaming routes.
const STREAM_NOTE: &str = "The streaming route (<code>POST /api/v1/conversations/{id}/messages/stream</code>) \
answers <code>text/event-stream</code>: in &ldquo;Try it out&rdquo; its events show as plain text once the stream ends. \
The machine-readable contract is <a href=\"/openapi.json\">/openapi.json</a>.";

/// `GET /docs`. Swagger UI is started by `/docs/swagger-init.js`.
const SWAGGER_UI_HTML: &str = concat!(
    "<!doctype html>\n",
    "<html lang=\"en\">\n<head>\n",
    "<meta charset=\"utf-8\">\n",
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
    "<title>Conversation API: interactive documentation</title>\n",
    "<link rel=\"icon\" type=\"image/png\" href=\"/docs/swagger-ui/favicon-32x32.png\">\n",
    "<link rel=\"stylesheet\" href=\"/docs/swagger-ui/swagger-ui.css\">\n",
    "<style>body{margin:0}.api-note{font-family:sans-serif;font-size:14px;",
    "max-width:1460px;margin:0 auto;padding:12px 20px;color:#3b4151}</style>\n",
    "</head>\n<body>\n",
    "<p class=\"api-note\">{NOTE} Also as <a href=\"/redoc\">ReDoc</a>.</p>\n",
    "<div id=\"swagger-ui\"></div>\n",
    "<script src=\"/docs/swagger-ui/swagger-ui-bundle.js\"></script>\n",
    "<script src=\"/docs/swagger-init.js\"></script>\n",
    "</body>\n</html>\n",
);

/// `GET /redoc`. The standalone bundle starts itself on the `<redoc>`
/// element, so its script comes after it.
const REDOC_HTML: &str = concat!(
    "<!doctype html>\n",
    "<html lang=\"en\">\n<head>\n",
    "<meta charset=\"utf-8\">\n",
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
    "<title>Conversation API: reference</title>\n",
    "<link rel=\"icon\" type=\"image/png\" href=\"/docs/swagger-ui/favicon-32x32.png\">\n",
    "<style>body{margin:0}.api-note{font-family:sans-serif;font-size:14px;",
    "margin:0;padding:12px 20px;color:#32329f;background:#fafafa}</style>\n",
    "</head>\n<body>\n",
    "<p class=\"api-note\">{NOTE} Try the API from <a href=\"/docs\">/docs</a>.</p>\n",
    "<redoc spec-url=\"/openapi.json\"></redoc>\n",
    "<script src=\"/docs/redoc/redoc.standalone.js\"></script>\n",
    "</body>\n</html>\n",
);

/// The directives both pages share: only same-origin scripts, styles,
/// images, fonts and fetches; inline styles (both UIs set element styles);
/// `data:` images (Swagger UI's icons); never framed.
const CSP_COMMON: &str =
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; connect-src 'self'; font-src 'self'; \
frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

impl Page {
    /// The page's HTML.
    pub fn html(self) -> String {
        let template = match self {
            Page::SwaggerUi => SWAGGER_UI_HTML,
            Page::Redoc => REDOC_HTML,
        };
        template.replace("{NOTE}", STREAM_NOTE)
    }

    /// The page's `Content-Security-Policy`. ReDoc runs its search index in
    /// a worker it creates from a `blob:` URL.
    pub fn content_security_policy(self) -> String {
        match self {
            Page::SwaggerUi => CSP_COMMON.to_string(),
            Page::Redoc => format!("{CSP_COMMON}; worker-src blob:"),
        }
    }

    /// The headers of the page besides those every response carries.
    pub fn headers(self) -> [(&'static str, String); 4] {
        [
            ("Content-Type", "text/html; charset=utf-8".to_string()),
            ("Content-Security-Policy", self.content_security_policy()),
            ("Cache-Control", "no-cache".to_string()),
            ("Cross-Origin-Opener-Policy", "same-origin".to_string()),
        ]
    }

    /// The page as a 200 response.
    pub fn response(self) -> worker::Result<Response> {
        let resp = Response::from_html(self.html())?;
        for (name, value) in self.headers() {
            resp.headers().set(name, &value)?;
        }
        Ok(resp)
    }
}

/// Serves the `/docs` page.
pub async fn swagger_ui(_ctx: Ctx) -> Result<Response, ApiError> {
    Ok(Page::SwaggerUi.response()?)
}

/// Serves the `/redoc` page.
pub async fn redoc(_ctx: Ctx) -> Result<Response, ApiError> {
    Ok(Page::Redoc.response()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGES: [Page; 2] = [Page::SwaggerUi, Page::Redoc];

    /// The `src` of every `<script>` tag; panics on a script with a body.
    fn script_sources(html: &str) -> Vec<&str> {
        let mut sources = Vec::new();
        let mut rest = html;
        while let Some(start) = rest.find("<script") {
            let tag_end = rest[start..].find('>').expect("script tag closes") + start;
            let tag = &rest[start..tag_end];
            let close = rest[tag_end..].find("</script>").expect("script closes") + tag_end;
            assert_eq!(&rest[tag_end + 1..close], "", "inline script in {tag}");
            let src = tag
                .split("src=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or_else(|| panic!("script without src: {tag}"));
            sources.push(src);
            rest = &rest[close..];
        }
        sources
    }

    /// Whether an attribute like ` onload=` appears.
    fn has_event_handler(html: &str) -> bool {
        html.split(" on").skip(1).any(|rest| {
            let name_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        })
    }

    #[test]
    fn pages_load_only_same_origin_files_with_no_inline_script() {
        for page in PAGES {
            let html = page.html();
            let sources = script_sources(&html);
            assert!(!sources.is_empty(), "{page:?} loads its UI");
            for src in sources {
                assert!(src.starts_with("/docs/"), "{page:?}: {src}");
            }
            for attr in ["src=\"", "href=\""] {
                for part in html.split(attr).skip(1) {
                    assert!(part.starts_with('/'), "{page:?}: not same-origin: {part}");
                }
            }
            assert!(!has_event_handler(&html), "{page:?}: inline event handler");
            assert!(!html.contains("{NOTE}"), "{page:?}");
            assert!(html.contains("text/event-stream"), "{page:?}: stream note");
        }
        assert!(script_sources(&Page::SwaggerUi.html()).contains(&"/docs/swagger-init.js"));
        let redoc = Page::Redoc.html();
        let element = redoc
            .find("<redoc spec-url=\"/openapi.json\">")
            .expect("element");
        assert!(element < redoc.find("<script").expect("script"));
    }

    #[test]
    #[should_panic(expected = "inline script")]
    fn the_script_check_catches_inline_script() {
        script_sources("<script>alert(1)</script>");
    }

    #[test]
    fn the_handler_check_catches_event_attributes() {
        assert!(has_event_handler("<img src=x onerror=alert(1)>"));
        assert!(!has_event_handler("<p>once only on time</p>"));
    }

    #[test]
    fn csp_is_strict() {
        for page in PAGES {
            let csp = page.content_security_policy();
            let directives: Vec<&str> = csp.split("; ").collect();
            for want in [
                "default-src 'none'",
                "script-src 'self'",
                "connect-src 'self'",
                "frame-ancestors 'none'",
                "base-uri 'none'",
                "form-action 'self'",
            ] {
                assert!(directives.contains(&want), "{page:?} lacks {want}: {csp}");
            }
            assert!(!csp.contains("unsafe-eval"), "{page:?}: {csp}");
            assert!(!csp.contains("http"), "{page:?}: another origin: {csp}");
            let scripts = directives
                .iter()
                .find(|d| d.starts_with("script-src"))
                .expect("script-src");
            assert!(!scripts.contains("unsafe-inline"), "{page:?}: {csp}");
        }
        assert!(Page::Redoc
            .content_security_policy()
            .ends_with("; worker-src blob:"));
        assert!(!Page::SwaggerUi.content_security_policy().contains("blob:"));
    }

    #[test]
    fn headers_name_html_and_the_policy() {
        for page in PAGES {
            let headers = page.headers();
            let get = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            assert_eq!(get("Content-Type"), "text/html; charset=utf-8");
            assert_eq!(
                get("Content-Security-Policy"),
                page.content_security_policy()
            );
        }
    }
}
