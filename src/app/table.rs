//! The rows of the route table. Statuses in `errors`: 400 malformed body,
//! query or header; 401 credentials; 403 an API key where an access token is
//! needed, or an access token used as a refresh token; 404 an unknown or
//! foreign id; 409 conflicts; 413 body over 1 MiB; 422 validation; 429 rate
//! limits; 500 unexpected or misconfigured; 502 every provider failed; 503
//! the database (or every provider's configuration) unavailable; 504 the
//! database too slow.

use super::Access::{AccessTokenOnly, AnyCredential, AnyCredentialOrEventToken, Public};
use super::{Kind, RouteDoc, RouteSpec};
use crate::handler;
use crate::{auth, conversations, docs, events, health, llm, messages, usage};

const fn doc(
    operation_id: &'static str,
    summary: &'static str,
    tag: &'static str,
    errors: &'static [u16],
) -> RouteDoc {
    RouteDoc {
        operation_id,
        summary,
        tag,
        errors,
    }
}

/// Every route; see [`super::table`].
#[rustfmt::skip]
pub(super) const TABLE: &[RouteSpec] = &[
    RouteSpec { method: "GET", pattern: "/health", access: Public, limit: None,
        handler: handler!(health::handle),
        doc: doc("getHealth", "Liveness; with ?deep=1 also a database round trip", "Service", &[400, 429, 500, 503]) },
    RouteSpec { method: "GET", pattern: "/openapi.json", access: Public, limit: None,
        handler: handler!(docs::openapi::serve),
        doc: doc("getOpenApi", "This API's OpenAPI 3.1 document", "Service", &[500]) },
    RouteSpec { method: "GET", pattern: "/docs", access: Public, limit: None,
        handler: handler!(docs::pages::swagger_ui),
        doc: doc("getSwaggerUi", "Interactive documentation (Swagger UI)", "Service", &[500]) },
    RouteSpec { method: "GET", pattern: "/redoc", access: Public, limit: None,
        handler: handler!(docs::pages::redoc),
        doc: doc("getRedoc", "Reference documentation (ReDoc)", "Service", &[500]) },
    RouteSpec { method: "POST", pattern: "/api/v1/auth/register", access: Public, limit: Some(Kind::Auth),
        handler: handler!(auth::routes::register),
        doc: doc("register", "Create an account and get a token pair", "Auth", &[400, 409, 413, 422, 429, 500, 503, 504]) },
    RouteSpec { method: "POST", pattern: "/api/v1/auth/login", access: Public, limit: Some(Kind::Auth),
        handler: handler!(auth::routes::login),
        doc: doc("login", "Exchange e-mail and password for a token pair", "Auth", &[400, 401, 413, 422, 429, 500, 503, 504]) },
    RouteSpec { method: "POST", pattern: "/api/v1/auth/refresh", access: Public, limit: Some(Kind::Auth),
        handler: handler!(auth::routes::refresh),
        doc: doc("refreshToken", "Rotate a refresh token into a new pair", "Auth", &[400, 401, 403, 413, 422, 429, 500, 503, 504]) },
    RouteSpec { method: "POST", pattern: "/api/v1/auth/logout", access: AnyCredential, limit: Some(Kind::Standard),
        handler: handler!(auth::routes::logout),
        doc: doc("logout", "End the session a refresh token belongs to", "Auth", &[400, 401, 403, 413, 422, 429, 500, 503, 504]) },
    RouteSpec { method: "GET", pattern: "/api/v1/auth/me", access: AnyCredential, limit: Some(Kind::Standard),
        handler: handler!(auth::routes::me),
        doc: doc("getMe", "The authenticated user", "Auth", &[401, 429, 500, 503, 504]) },
    RouteSpec { method: "POST", pattern: "/api/v1/auth/api-keys", access: AccessTokenOnly, limit: Some(Kind::Standard),
        handler: handler!(auth::routes::create_api_key),
        doc: doc("createApiKey", "Create an API key (the only response that shows it)", "API keys", &[400, 401, 403, 413, 422, 429, 500, 503, 504]) },
    RouteSpec { method: "GET", pattern: "/api/v1/auth/api-keys", access: AccessTokenOnly, limit: Some(Kind::Standard),
        handler: handler!(auth::routes::list_api_keys),
        doc: doc("listApiKeys", "List your API keys", "API keys", &[401, 403, 429, 500, 503, 504]) },
    RouteSpec { method: "DELETE", pattern: "/api/v1/auth/api-keys/{id}", access: AccessTokenOnly, limit: Some(Kind::Standard),
        handler: handler!(auth::routes::delete_api_key),
        doc: doc("deleteApiKey", "Revoke an API key at once", "API keys", &[401, 403, 404, 429, 500, 503, 504]) },
    RouteSpec { method: "GET", pattern: "/api/v1/models", access: Public, limit: None,
        handler: handler!(llm::routes::models),
        doc: doc("listModels", "The model catalogue with this deployment's limits", "Models", &[500]) },
    RouteSpec { method: "POST", pattern: "/api/v1/conversations", access: AnyCredential, limit: Some(Kind::Standard),
        handler: handler!(conversations::routes::create),
        doc: doc("createConversation", "Start a conversation", "Conversations", &[400, 401, 413, 422, 429, 500, 503, 504]) },
    RouteSpec { method: "GET", pattern: "/api/v1/conversations", access: AnyCredential, limit: Some(Kind::Standard),
        handler: handler!(conversations::routes::list),
        doc: doc("listConversations", "Your conversations, most recently updated first", "Conversations", &[400, 401, 422, 429, 500, 503, 504]) },
    RouteSpec { method: "GET", pattern: "/api/v1/conversations/{id}", access: AnyCredential, limit: Some(Kind::Standard),
        handler: handler!(conversations::routes::get),
        doc: doc("getConversation", "A conversation with its messages", "Conversations", &[401, 404, 429, 500, 503, 504]) },
    RouteSpec { method: "PATCH", pattern: "/api/v1/conversations/{id}", access: AnyCredential, limit: Some(Kind::Standard),
        handler: handler!(conversations::routes::update),
        doc: doc("updateConversation", "Change a conversation's title, model, system prompt or metadata", "Conversations", &[400, 401, 404, 413, 422, 429, 500, 503, 504]) },
    RouteSpec { method: "DELETE", pattern: "/api/v1/conversations/{id}", access: AnyCredential, limit: Some(Kind::Standard),
        handler: handler!(conversations::routes::delete),
        doc: doc("deleteConversation", "Delete a conversation and its messages", "Conversations", &[401, 404, 429, 500, 503, 504]) },
    RouteSpec { method: "GET", pattern: "/api/v1/conversations/{id}/messages", access: AnyCredential, limit: Some(Kind::Standard),
        handler: handler!(messages::routes::list),
        doc: doc("listMessages", "A conversation's messages, oldest first", "Messages", &[400, 401, 404, 422, 429, 500, 503, 504]) },
    RouteSpec { method: "POST", pattern: "/api/v1/conversations/{id}/messages", access: AnyCredential, limit: Some(Kind::Ai),
        handler: handler!(messages::send::send),
        doc: doc("sendMessage", "Send a message and get the whole answer", "Messages", &[400, 401, 404, 409, 413, 422, 429, 500, 502, 503, 504]) },
    RouteSpec { method: "POST", pattern: "/api/v1/conversations/{id}/messages/stream", access: AnyCredential, limit: Some(Kind::Ai),
        handler: handler!(messages::send::stream),
        doc: doc("streamMessage", "Send a message and stream the answer as Anthropic events", "Messages", &[400, 401, 404, 409, 413, 422, 429, 500, 503, 504]) },
    RouteSpec { method: "GET", pattern: "/api/v1/conversations/{id}/events", access: AnyCredentialOrEventToken, limit: Some(Kind::Standard),
        handler: handler!(events::route::stream),
        doc: doc("streamConversationEvents", "Watch a conversation: its events as Server-Sent Events, with replay", "Events", &[400, 401, 404, 429, 500, 503, 504]) },
    RouteSpec { method: "POST", pattern: "/api/v1/conversations/{id}/events/token", access: AnyCredential, limit: Some(Kind::Standard),
        handler: handler!(events::token::mint),
        doc: doc("createEventToken", "A short-lived token that opens this conversation's events in a browser", "Events", &[401, 404, 429, 500, 503, 504]) },
    RouteSpec { method: "GET", pattern: "/api/v1/usage/stats", access: AnyCredential, limit: Some(Kind::Standard),
        handler: handler!(usage::stats::stats),
        doc: doc("getUsageStats", "Your requests, tokens and cost, by model and by day", "Usage", &[401, 422, 429, 500, 503, 504]) },
];
