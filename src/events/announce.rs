//! One-off events of changes made outside a send: `conversation.updated`
//! (PATCH) and `conversation.deleted` (DELETE: the object then closes its
//! watchers' streams and clears its storage). They travel like a send's
//! events ([`super::publish`]), after the response; a failure is logged,
//! never answered.

use serde_json::Value;
use uuid::Uuid;

use super::batch;
use super::publish::publish_once;
use crate::http::context::RequestContext;

/// The queued `conversation.updated` event of `conversation`.
pub fn updated(conversation: &Value) -> Vec<u8> {
    let fields = format!("\"conversation\":{conversation}");
    batch::event("conversation.updated", None, &fields)
}

/// Publishes `conversation.updated` after the response.
pub fn conversation_updated(rc: &RequestContext, id: Uuid, conversation: &Value) {
    publish_once(rc, id, updated(conversation));
}

/// Publishes `conversation.deleted` (watchers' streams then end, and the
/// conversation's object forgets everything), after the response.
pub fn conversation_deleted(rc: &RequestContext, id: Uuid) {
    let fields = format!("\"conversation_id\":\"{id}\"");
    publish_once(rc, id, batch::event(DELETED, None, &fields));
}

/// The event after which a conversation's object keeps nothing.
pub const DELETED: &str = "conversation.deleted";
