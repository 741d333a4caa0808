//! One-off events of changes made outside a send: `conversation.updated`
//! (PATCH) and `conversation.deleted` (DELETE, which also clears the
//! object's storage). Posted to the object in `wait_until`, after the
//! response; a failure is logged, never answered.

use serde_json::{json, Value};
use uuid::Uuid;
use worker::{console_warn, Method, Request, RequestInit};

use super::batch::{self, Item};
use crate::http::context::RequestContext;

/// The `conversation.updated` event of `conversation`.
pub fn updated(conversation: Value) -> Item {
    Item::event(
        "conversation.updated",
        None,
        json!({ "conversation": conversation }),
    )
}

/// Publishes `conversation.updated` after the response.
pub fn conversation_updated(rc: &RequestContext, id: Uuid, conversation: Value) {
    post(rc, id, "/publish", updated(conversation));
}

/// Publishes `conversation.deleted` (watchers' streams then end) and
/// clears the conversation's object, after the response.
pub fn conversation_deleted(rc: &RequestContext, id: Uuid) {
    let event = Item::event(
        "conversation.deleted",
        None,
        json!({ "conversation_id": id }),
    );
    post(rc, id, "/delete", event);
}

fn post(rc: &RequestContext, id: Uuid, path: &str, item: Item) {
    let env = rc.env.clone();
    let url = super::url(&format!("{path}?{}", super::retention_query(rc.config)));
    let body = batch::encode("", vec![item]);
    rc.ctx.wait_until(async move {
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(body.into()));
        let sent = match Request::new_with_init(&url, &init) {
            Ok(req) => super::ask(&env, id, req).await.map(|r| r.status_code()),
            Err(e) => Err(e),
        };
        match sent {
            Ok(204) => {}
            Ok(status) => {
                console_warn!("events of conversation {id}: the object answered {status}")
            }
            Err(e) => console_warn!("events of conversation {id} not published: {e}"),
        }
    });
}
