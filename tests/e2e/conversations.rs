//! Conversations: create, read, update, delete; validation; ownership and
//! credentials on every route. Runs in the PostgreSQL phase; every test
//! makes its own users.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{
    assert_conversation, assert_invalid_field, call, conversation_path, create_api_key,
    create_conversation, create_conversation_reply, create_titled, db_conversation_count,
    db_conversation_exists, db_conversation_owner, db_message_count, db_updated_at_micros,
    delete_conversation, get_conversation, insert_message, instant, list_conversations,
    list_messages, messages_path, new_user, page_of, patch_conversation, query_encode, random_hex,
    random_uuid, send_raw_as, Auth, Reply, CONVERSATIONS, CONVERSATION_FIELDS, DEFAULT_MODEL,
    FALLBACK_MODEL,
};

/// Asserts two Conversation objects agree on every field.
fn assert_same_conversation(got: &Value, want: &Value) {
    for k in CONVERSATION_FIELDS {
        assert_eq!(got[k], want[k], "{k} differs:\n got {got}\nwant {want}");
    }
}

/// Asserts a 404 `not_found_error`, saying which request it was.
fn assert_not_found(r: &Reply, what: &str) {
    assert_eq!(r.status, 404, "{what}: {}", r.text);
    r.assert_error(404, "not_found_error");
}

/// Every conversation route on `id` as `auth`: (what, reply).
async fn every_route(auth: Auth<'_>, id: &str) -> Vec<(String, Reply)> {
    vec![
        (format!("GET {id}"), get_conversation(auth, id).await),
        (
            format!("PATCH {id}"),
            patch_conversation(
                auth,
                id,
                &json!({"title": "hijacked", "metadata": {"x": "y"}}),
            )
            .await,
        ),
        (
            format!("GET {id}/messages"),
            list_messages(auth, id, "").await,
        ),
        (format!("DELETE {id}"), delete_conversation(auth, id).await),
    ]
}

// ---------------------------------------------------------------------------
// Create
// ---------------------------------------------------------------------------

#[tokio::test]
async fn create_with_an_empty_body_uses_the_defaults() {
    let s = new_user().await;
    let r = create_conversation_reply(Auth::Bearer(&s.access), &json!({})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.assert_common_headers();
    assert!(
        r.header("content-type").starts_with("application/json"),
        "content-type: {}",
        r.header("content-type")
    );
    assert_conversation(&r.json);
    let c = &r.json;
    assert_eq!(c["title"], Value::Null, "{c}");
    assert_eq!(c["system_prompt"], Value::Null, "{c}");
    assert_eq!(c["metadata"], json!({}), "{c}");
    assert_eq!(c["model"], DEFAULT_MODEL, "{c}");
    assert_eq!(c["message_count"], 0, "{c}");
    let id = c["id"].as_str().unwrap();
    assert_eq!(db_conversation_owner(id).await, s.user_id);
}

#[tokio::test]
async fn create_with_every_field_stores_and_echoes_them() {
    let s = new_user().await;
    let body = json!({
        "title": "Trip to Lisbon",
        "model": FALLBACK_MODEL,
        "system_prompt": "You are terse.\nAnswer in Portuguese — obrigado!",
        "metadata": {"project": "travel", "lang": "pt-PT"},
    });
    let c = create_conversation(&s.access, &body).await;
    assert_eq!(c["title"], "Trip to Lisbon");
    assert_eq!(c["model"], FALLBACK_MODEL);
    assert_eq!(c["system_prompt"], body["system_prompt"]);
    assert_eq!(c["metadata"], body["metadata"]);
    assert_eq!(c["message_count"], 0);

    let id = c["id"].as_str().unwrap();
    let r = get_conversation(Auth::Bearer(&s.access), id).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_conversation(&r.json);
    assert_same_conversation(&r.json, &c);
    assert_eq!(r.json["messages"], json!([]), "{}", r.text);
}

#[tokio::test]
async fn two_creates_make_two_conversations() {
    let s = new_user().await;
    let a = create_conversation(&s.access, &json!({"title": "same"})).await;
    let b = create_conversation(&s.access, &json!({"title": "same"})).await;
    assert_ne!(a["id"], b["id"]);
    assert_eq!(db_conversation_count(&s.user_id).await, 2);
}

#[tokio::test]
async fn title_is_trimmed_and_a_blank_title_is_null() {
    let s = new_user().await;
    for (sent, want) in [
        (json!("  Hello world \t\n"), json!("Hello world")),
        (json!("   "), Value::Null),
        (json!(""), Value::Null),
        (Value::Null, Value::Null),
    ] {
        let c = create_conversation(&s.access, &json!({ "title": sent })).await;
        assert_eq!(c["title"], want, "title {sent}: {c}");
        let got = get_conversation(Auth::Bearer(&s.access), c["id"].as_str().unwrap()).await;
        assert_eq!(
            got.json["title"], want,
            "stored title for {sent}: {}",
            got.text
        );
    }
}

#[tokio::test]
async fn title_may_have_200_characters_but_not_201() {
    let s = new_user().await;
    for ok in ["x".repeat(200), "é".repeat(200)] {
        let c = create_conversation(&s.access, &json!({ "title": ok })).await;
        assert_eq!(c["title"], ok.as_str());
    }
    // Counted after trimming.
    let c = create_conversation(
        &s.access,
        &json!({ "title": format!("  {}  ", "y".repeat(200)) }),
    )
    .await;
    assert_eq!(c["title"], "y".repeat(200));
    for bad in ["x".repeat(201), "é".repeat(201)] {
        let r = create_conversation_reply(Auth::Bearer(&s.access), &json!({ "title": bad })).await;
        assert_invalid_field(&r, "title");
    }
    assert_eq!(db_conversation_count(&s.user_id).await, 3);
}

#[tokio::test]
async fn system_prompt_may_have_8000_characters_but_not_8001() {
    let s = new_user().await;
    for ok in ["p".repeat(8000), "ü".repeat(8000)] {
        let c = create_conversation(&s.access, &json!({ "system_prompt": ok })).await;
        assert_eq!(c["system_prompt"], ok.as_str());
    }
    let r = create_conversation_reply(
        Auth::Bearer(&s.access),
        &json!({ "system_prompt": "p".repeat(8001) }),
    )
    .await;
    assert_invalid_field(&r, "system_prompt");
    assert_eq!(db_conversation_count(&s.user_id).await, 2);
}

#[tokio::test]
async fn metadata_at_the_limits_is_accepted() {
    let s = new_user().await;
    let mut full = serde_json::Map::new();
    for i in 0..16 {
        full.insert(format!("key{i:02}"), json!("v".repeat(512)));
    }
    let full = Value::Object(full);
    let c = create_conversation(&s.access, &json!({ "metadata": full })).await;
    assert_eq!(c["metadata"], full);

    let edge = json!({ "k".repeat(64): "é".repeat(512), "a": "" });
    let c = create_conversation(&s.access, &json!({ "metadata": edge })).await;
    assert_eq!(c["metadata"], edge);
    let got = get_conversation(Auth::Bearer(&s.access), c["id"].as_str().unwrap()).await;
    assert_eq!(got.json["metadata"], edge, "{}", got.text);
}

#[tokio::test]
async fn metadata_over_the_limits_is_422() {
    let s = new_user().await;
    let mut seventeen = serde_json::Map::new();
    for i in 0..17 {
        seventeen.insert(format!("key{i:02}"), json!("v"));
    }
    for bad in [
        Value::Object(seventeen),
        json!({ "k".repeat(65): "v" }),
        json!({ "": "v" }),
        json!({ "long": "v".repeat(513) }),
    ] {
        let r =
            create_conversation_reply(Auth::Bearer(&s.access), &json!({ "metadata": bad })).await;
        assert_invalid_field(&r, "metadata");
    }
    assert_eq!(db_conversation_count(&s.user_id).await, 0);
}

#[tokio::test]
async fn wrong_json_types_are_422_naming_the_field() {
    let s = new_user().await;
    for (body, field) in [
        (json!({"title": 5}), "title"),
        (json!({"title": true}), "title"),
        (json!({"title": ["a"]}), "title"),
        (json!({"system_prompt": 12}), "system_prompt"),
        (json!({"system_prompt": {"a": "b"}}), "system_prompt"),
        (json!({"metadata": []}), "metadata"),
        (json!({"metadata": "x"}), "metadata"),
        (json!({"metadata": 3}), "metadata"),
        (json!({"metadata": {"a": 3}}), "metadata"),
        (json!({"metadata": {"a": true}}), "metadata"),
        (json!({"metadata": {"a": {"b": "c"}}}), "metadata"),
        (json!({"metadata": {"a": ["b"]}}), "metadata"),
        (json!({"model": 5}), "model"),
    ] {
        let r = create_conversation_reply(Auth::Bearer(&s.access), &body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_invalid_field(&r, field);
    }
    assert_eq!(db_conversation_count(&s.user_id).await, 0);
}

#[tokio::test]
async fn an_unlisted_model_is_422() {
    let s = new_user().await;
    for bad in [
        "gpt-4o",
        "openai/gpt-oss-21b",
        "",
        "openai/gpt-oss-20b; DROP TABLE",
    ] {
        let r = create_conversation_reply(Auth::Bearer(&s.access), &json!({ "model": bad })).await;
        assert_eq!(r.status, 422, "model {bad:?}: {}", r.text);
        assert_invalid_field(&r, "model");
    }
    assert_eq!(db_conversation_count(&s.user_id).await, 0);
}

#[tokio::test]
async fn every_problem_is_listed_at_once() {
    let s = new_user().await;
    let r = create_conversation_reply(
        Auth::Bearer(&s.access),
        &json!({
            "title": "t".repeat(201),
            "model": "nope",
            "system_prompt": "p".repeat(8001),
            "metadata": [],
        }),
    )
    .await;
    for field in ["title", "model", "system_prompt", "metadata"] {
        assert_invalid_field(&r, field);
    }
}

#[tokio::test]
async fn malformed_or_non_object_bodies_are_400() {
    let s = new_user().await;
    let auth = Auth::Bearer(&s.access);
    for (ct, body) in [
        (Some("application/json"), "{"),
        (Some("application/json"), "{\"title\": \"x\",}"),
        (Some("application/json"), "[]"),
        (Some("application/json"), "\"x\""),
        (Some("application/json"), "null"),
        (Some("application/json"), ""),
        (Some("text/plain"), "{}"),
        (None, "{}"),
    ] {
        let r = send_raw_as(Method::POST, CONVERSATIONS, auth, ct, body.to_string()).await;
        assert_eq!(r.status, 400, "{ct:?} {body:?}: {}", r.text);
        r.assert_error(400, "invalid_request_error");
    }
    assert_eq!(db_conversation_count(&s.user_id).await, 0);
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let s = new_user().await;
    let other = new_user().await;
    let forged_id = random_uuid();
    let c = create_conversation(
        &s.access,
        &json!({
            "title": "kept",
            "colour": "blue",
            "id": forged_id,
            "user_id": other.user_id,
            "message_count": 99,
            "created_at": "2001-01-01T00:00:00Z",
        }),
    )
    .await;
    assert_eq!(c["title"], "kept");
    assert_ne!(c["id"], forged_id.as_str());
    assert_eq!(c["message_count"], 0);
    assert!(c.get("colour").is_none(), "{c}");
    assert!(
        !c["created_at"].as_str().unwrap().starts_with("2001"),
        "{c}"
    );
    let id = c["id"].as_str().unwrap();
    assert_eq!(db_conversation_owner(id).await, s.user_id);
    assert_eq!(db_conversation_count(&other.user_id).await, 0);
}

// ---------------------------------------------------------------------------
// Read
// ---------------------------------------------------------------------------

#[tokio::test]
async fn message_count_follows_the_messages() {
    let s = new_user().await;
    let id = create_titled(&s.access, "counted").await;
    insert_message(&id, &s.user_id, "user", "one").await;
    insert_message(&id, &s.user_id, "assistant", "two").await;
    insert_message(&id, &s.user_id, "user", "three").await;
    let r = get_conversation(Auth::Bearer(&s.access), &id).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["message_count"], 3, "{}", r.text);
    assert_eq!(r.json["messages"].as_array().map(Vec::len), Some(3));
    let p = page_of(&list_conversations(Auth::Bearer(&s.access), "").await);
    assert_eq!(p.items.len(), 1);
    assert_eq!(p.items[0]["message_count"], 3, "{:?}", p.items);
}

// ---------------------------------------------------------------------------
// Update
// ---------------------------------------------------------------------------

#[tokio::test]
async fn patch_changes_each_field_it_names() {
    let s = new_user().await;
    let auth = Auth::Bearer(&s.access);
    let c = create_conversation(
        &s.access,
        &json!({"title": "old", "system_prompt": "old prompt", "metadata": {"a": "1", "b": "2"}}),
    )
    .await;
    let id = c["id"].as_str().unwrap();

    let r = patch_conversation(auth, id, &json!({"title": "  New title  "})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_conversation(&r.json);
    assert_eq!(r.json["title"], "New title");
    assert_eq!(r.json["system_prompt"], "old prompt");
    assert_eq!(r.json["model"], DEFAULT_MODEL);
    assert_eq!(r.json["metadata"], json!({"a": "1", "b": "2"}));
    assert_eq!(r.json["id"], c["id"]);
    assert_eq!(r.json["created_at"], c["created_at"]);

    let r = patch_conversation(auth, id, &json!({"model": FALLBACK_MODEL})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["model"], FALLBACK_MODEL);
    assert_eq!(r.json["title"], "New title");

    let r = patch_conversation(auth, id, &json!({"system_prompt": "new prompt"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["system_prompt"], "new prompt");

    // metadata replaces the whole object.
    let r = patch_conversation(auth, id, &json!({"metadata": {"c": "3"}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["metadata"], json!({"c": "3"}));

    let got = get_conversation(auth, id).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.json["title"], "New title");
    assert_eq!(got.json["model"], FALLBACK_MODEL);
    assert_eq!(got.json["system_prompt"], "new prompt");
    assert_eq!(got.json["metadata"], json!({"c": "3"}));

    let r = patch_conversation(auth, id, &json!({"metadata": {}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["metadata"], json!({}));
}

#[tokio::test]
async fn patch_with_null_clears_title_and_system_prompt() {
    let s = new_user().await;
    let auth = Auth::Bearer(&s.access);
    let c = create_conversation(
        &s.access,
        &json!({"title": "t", "system_prompt": "sp", "metadata": {"k": "v"}, "model": FALLBACK_MODEL}),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    let r = patch_conversation(auth, id, &json!({"title": null, "system_prompt": null})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["title"], Value::Null, "{}", r.text);
    assert_eq!(r.json["system_prompt"], Value::Null, "{}", r.text);
    assert_eq!(r.json["metadata"], json!({"k": "v"}));
    assert_eq!(r.json["model"], FALLBACK_MODEL);
    let got = get_conversation(auth, id).await;
    assert_eq!(got.json["title"], Value::Null, "{}", got.text);
    assert_eq!(got.json["system_prompt"], Value::Null, "{}", got.text);

    // A blank title is null too.
    patch_conversation(auth, id, &json!({"title": "again"})).await;
    let r = patch_conversation(auth, id, &json!({"title": "   "})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["title"], Value::Null, "{}", r.text);
}

#[tokio::test]
async fn patch_with_nothing_to_change_changes_nothing() {
    let s = new_user().await;
    let auth = Auth::Bearer(&s.access);
    let c = create_conversation(
        &s.access,
        &json!({"title": "steady", "system_prompt": "sp", "metadata": {"k": "v"}}),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    let before = db_updated_at_micros(id).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    for body in [json!({}), json!({"unknown": "field"})] {
        let r = patch_conversation(auth, id, &body).await;
        assert_eq!(r.status, 200, "{body}: {}", r.text);
        assert_conversation(&r.json);
        assert_same_conversation(&r.json, &c);
    }
    assert_eq!(db_updated_at_micros(id).await, before, "updated_at moved");
    let got = get_conversation(auth, id).await;
    assert_same_conversation(&got.json, &c);
}

#[tokio::test]
async fn a_real_change_advances_updated_at() {
    let s = new_user().await;
    let c = create_conversation(&s.access, &json!({"title": "before"})).await;
    let id = c["id"].as_str().unwrap();
    let before = db_updated_at_micros(id).await;
    // Past the next whole second, whatever precision the API prints.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = patch_conversation(Auth::Bearer(&s.access), id, &json!({"title": "after"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["created_at"], c["created_at"]);
    let old = instant(c["updated_at"].as_str().unwrap());
    let new = instant(r.json["updated_at"].as_str().unwrap());
    assert!(new > old, "updated_at {old:?} -> {new:?}");
    assert!(db_updated_at_micros(id).await > before);
    let got = get_conversation(Auth::Bearer(&s.access), id).await;
    assert_eq!(got.json["updated_at"], r.json["updated_at"]);
}

#[tokio::test]
async fn invalid_patches_are_422_and_change_nothing() {
    let s = new_user().await;
    let auth = Auth::Bearer(&s.access);
    let c = create_conversation(
        &s.access,
        &json!({"title": "original", "system_prompt": "sp", "metadata": {"k": "v"}}),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    let before = db_updated_at_micros(id).await;
    for (body, field) in [
        (json!({"title": "x".repeat(201)}), "title"),
        (json!({"title": 5}), "title"),
        (json!({"model": "gpt-4o"}), "model"),
        (json!({"model": null}), "model"),
        (json!({"model": 7}), "model"),
        (json!({"system_prompt": "p".repeat(8001)}), "system_prompt"),
        (json!({"system_prompt": false}), "system_prompt"),
        (json!({"metadata": []}), "metadata"),
        (json!({"metadata": "x"}), "metadata"),
        (json!({"metadata": {"a": 3}}), "metadata"),
        (json!({ "metadata": { "k".repeat(65): "v" } }), "metadata"),
        // One bad field spoils the whole patch.
        (json!({"title": "changed", "model": "bogus"}), "model"),
        (
            json!({"metadata": {"new": "v"}, "title": "t".repeat(201)}),
            "title",
        ),
    ] {
        let r = patch_conversation(auth, id, &body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_invalid_field(&r, field);
    }
    let got = get_conversation(auth, id).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_same_conversation(&got.json, &c);
    assert_eq!(db_updated_at_micros(id).await, before, "updated_at moved");
}

#[tokio::test]
async fn patch_with_a_malformed_body_is_400() {
    let s = new_user().await;
    let auth = Auth::Bearer(&s.access);
    let c = create_conversation(&s.access, &json!({"title": "original"})).await;
    let id = c["id"].as_str().unwrap();
    for (ct, body) in [
        (Some("application/json"), "{\"title\": "),
        (Some("application/json"), "[]"),
        (Some("text/plain"), "{\"title\": \"x\"}"),
    ] {
        let r = send_raw_as(
            Method::PATCH,
            &conversation_path(id),
            auth,
            ct,
            body.to_string(),
        )
        .await;
        assert_eq!(r.status, 400, "{ct:?} {body:?}: {}", r.text);
        r.assert_error(400, "invalid_request_error");
    }
    let got = get_conversation(auth, id).await;
    assert_same_conversation(&got.json, &c);
}

// ---------------------------------------------------------------------------
// Delete
// ---------------------------------------------------------------------------

#[tokio::test]
async fn delete_removes_the_conversation_and_its_messages() {
    let s = new_user().await;
    let auth = Auth::Bearer(&s.access);
    let gone = create_titled(&s.access, "to delete").await;
    let kept = create_titled(&s.access, "to keep").await;
    insert_message(&gone, &s.user_id, "user", "hello").await;
    insert_message(&gone, &s.user_id, "assistant", "hi").await;
    insert_message(&kept, &s.user_id, "user", "stay").await;

    let r = delete_conversation(auth, &gone).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty(), "204 with a body: {}", r.text);
    r.assert_common_headers();

    assert_not_found(&get_conversation(auth, &gone).await, "GET after DELETE");
    assert_not_found(
        &list_messages(auth, &gone, "").await,
        "messages after DELETE",
    );
    assert!(
        !db_conversation_exists(&gone).await,
        "the row is still there"
    );
    assert_eq!(db_message_count(&gone).await, 0, "messages left behind");

    let r = get_conversation(auth, &kept).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["message_count"], 1);
    assert_eq!(db_message_count(&kept).await, 1);
    let p = page_of(&list_conversations(auth, "").await);
    assert_eq!(p.ids, vec![kept.clone()]);
}

#[tokio::test]
async fn deleting_twice_is_404() {
    let s = new_user().await;
    let auth = Auth::Bearer(&s.access);
    let id = create_titled(&s.access, "once").await;
    let r = delete_conversation(auth, &id).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_not_found(&delete_conversation(auth, &id).await, "second DELETE");
    assert_not_found(
        &patch_conversation(auth, &id, &json!({"title": "zombie"})).await,
        "PATCH after DELETE",
    );
    assert!(!db_conversation_exists(&id).await);
}

// ---------------------------------------------------------------------------
// Ownership, ids and credentials
// ---------------------------------------------------------------------------

#[tokio::test]
async fn another_users_conversation_is_404_like_a_random_id() {
    let owner = new_user().await;
    let intruder = new_user().await;
    let id = create_titled(&owner.access, "private").await;
    insert_message(&id, &owner.user_id, "user", "secret").await;
    let random = random_uuid();

    let theirs = every_route(Auth::Bearer(&intruder.access), &id).await;
    let nobodys = every_route(Auth::Bearer(&intruder.access), &random).await;
    for ((what, r), (what_random, r_random)) in theirs.iter().zip(nobodys.iter()) {
        assert_not_found(r, what);
        assert_not_found(r_random, what_random);
        assert_eq!(
            r.json["error"]["message"], r_random.json["error"]["message"],
            "{what} tells apart someone else's conversation from none"
        );
        assert!(
            !r.text.contains("secret") && !r.text.contains("private"),
            "{}",
            r.text
        );
    }
}

#[tokio::test]
async fn another_user_cannot_see_change_or_delete_a_conversation() {
    let owner = new_user().await;
    let intruder = new_user().await;
    let c = create_conversation(
        &owner.access,
        &json!({"title": "mine", "system_prompt": "sp", "metadata": {"k": "v"}}),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    insert_message(id, &owner.user_id, "user", "hello").await;
    let before = get_conversation(Auth::Bearer(&owner.access), id).await;
    assert_eq!(before.status, 200, "{}", before.text);
    let micros = db_updated_at_micros(id).await;

    let _ = every_route(Auth::Bearer(&intruder.access), id).await;
    let r = patch_conversation(
        Auth::Bearer(&intruder.access),
        id,
        &json!({"model": FALLBACK_MODEL, "system_prompt": null}),
    )
    .await;
    assert_not_found(&r, "intruder PATCH");

    let p = page_of(&list_conversations(Auth::Bearer(&intruder.access), "").await);
    assert!(p.ids.is_empty(), "intruder lists {:?}", p.ids);
    let q = format!("q={}", query_encode("mine"));
    let p = page_of(&list_conversations(Auth::Bearer(&intruder.access), &q).await);
    assert!(p.ids.is_empty(), "intruder finds {:?}", p.ids);

    let after = get_conversation(Auth::Bearer(&owner.access), id).await;
    assert_eq!(after.status, 200, "{}", after.text);
    assert_same_conversation(&after.json, &before.json);
    assert_eq!(after.json["messages"], before.json["messages"]);
    assert_eq!(db_updated_at_micros(id).await, micros);
    assert_eq!(db_message_count(id).await, 1);
    assert_eq!(db_conversation_owner(id).await, owner.user_id);
}

#[tokio::test]
async fn malformed_ids_are_404_on_every_route() {
    let s = new_user().await;
    let auth = Auth::Bearer(&s.access);
    let kept = create_titled(&s.access, "survivor").await;
    let injection = query_encode("' OR 1=1--");
    let uuid_plus = format!("{kept}0");
    for bad in [
        "not-a-uuid",
        "1",
        injection.as_str(),
        uuid_plus.as_str(),
        "00000000-0000-0000-0000-00000000000g",
    ] {
        for (what, r) in every_route(auth, bad).await {
            assert_not_found(&r, &what);
        }
    }
    assert!(db_conversation_exists(&kept).await);
    let r = get_conversation(auth, &kept).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["title"], "survivor");
}

#[tokio::test]
async fn no_credentials_is_401_on_every_route() {
    let s = new_user().await;
    let id = create_titled(&s.access, "locked").await;
    let mut replies = vec![
        (
            "POST".to_string(),
            create_conversation_reply(Auth::None, &json!({"title": "anon"})).await,
        ),
        (
            "GET list".to_string(),
            list_conversations(Auth::None, "").await,
        ),
    ];
    replies.extend(every_route(Auth::None, &id).await);
    for (what, r) in &replies {
        assert_eq!(r.status, 401, "{what}: {}", r.text);
        r.assert_error(401, "authentication_error");
    }
    let r = get_conversation(Auth::Bearer(&s.access), &id).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["title"], "locked");
    assert_eq!(db_conversation_count(&s.user_id).await, 1);
}

#[tokio::test]
async fn bad_credentials_are_401() {
    let s = new_user().await;
    let id = create_titled(&s.access, "locked").await;
    let unknown_key = format!("cak_{}", random_hex(32));
    for auth in [
        Auth::Bearer("not-a-jwt"),
        Auth::Bearer(&unknown_key),
        Auth::ApiKey(&unknown_key),
        Auth::Authorization("Basic dXNlcjpwYXNz"),
    ] {
        for r in [
            list_conversations(auth, "").await,
            get_conversation(auth, &id).await,
            create_conversation_reply(auth, &json!({})).await,
        ] {
            assert_eq!(r.status, 401, "{auth:?}: {}", r.text);
            r.assert_error(401, "authentication_error");
        }
    }
    assert_eq!(db_conversation_count(&s.user_id).await, 1);
}

#[tokio::test]
async fn an_api_key_works_on_every_route() {
    let s = new_user().await;
    let key = create_api_key(&s.access, "cli").await;
    let by_key = Auth::ApiKey(&key.key);
    let by_key_bearer = Auth::Bearer(&key.key);
    let by_jwt = Auth::Bearer(&s.access);

    let from_jwt = create_titled(&s.access, "from jwt").await;
    let r = create_conversation_reply(by_key, &json!({"title": "from key"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_conversation(&r.json);
    let from_key = r.json["id"].as_str().unwrap().to_string();
    assert_eq!(db_conversation_owner(&from_key).await, s.user_id);

    for auth in [by_key, by_key_bearer, by_jwt] {
        let p = page_of(&list_conversations(auth, "").await);
        assert_eq!(p.ids, vec![from_key.clone(), from_jwt.clone()], "{auth:?}");
    }

    let r = get_conversation(by_key, &from_jwt).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["title"], "from jwt");

    let r = patch_conversation(
        by_key_bearer,
        &from_jwt,
        &json!({"title": "patched by key"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["title"], "patched by key");

    let m = insert_message(&from_jwt, &s.user_id, "user", "hi").await;
    let p = page_of(&list_messages(by_key, &from_jwt, "").await);
    assert_eq!(p.ids, vec![m]);

    let r = delete_conversation(by_key, &from_jwt).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_not_found(&get_conversation(by_jwt, &from_jwt).await, "deleted by key");
}

#[tokio::test]
async fn an_api_key_cannot_reach_another_users_conversations() {
    let a = new_user().await;
    let b = new_user().await;
    let a_key = create_api_key(&a.access, "a's key").await;
    let mine = create_titled(&a.access, "a's").await;
    let theirs = create_titled(&b.access, "b's").await;
    insert_message(&theirs, &b.user_id, "user", "b's message").await;

    for (what, r) in every_route(Auth::ApiKey(&a_key.key), &theirs).await {
        assert_not_found(&r, &what);
    }
    let p = page_of(&list_conversations(Auth::ApiKey(&a_key.key), "").await);
    assert_eq!(p.ids, vec![mine]);

    let r = get_conversation(Auth::Bearer(&b.access), &theirs).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["title"], "b's");
    assert_eq!(r.json["metadata"], json!({}));
    assert_eq!(db_message_count(&theirs).await, 1);
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow() {
    let s = new_user().await;
    let id = create_titled(&s.access, "methods").await;
    let auth = Auth::Bearer(&s.access);
    let r = call(Method::PUT, &conversation_path(&id), auth, Some(&json!({}))).await;
    r.assert_error(405, "invalid_request_error");
    let allow = r.header("allow").to_string();
    for m in ["GET", "PATCH", "DELETE"] {
        assert!(allow.contains(m), "Allow {allow:?} lacks {m}");
    }
    let r = call(Method::PUT, CONVERSATIONS, auth, Some(&json!({}))).await;
    r.assert_error(405, "invalid_request_error");
    let allow = r.header("allow").to_string();
    for m in ["GET", "POST"] {
        assert!(allow.contains(m), "Allow {allow:?} lacks {m}");
    }
    let r = call(Method::DELETE, &messages_path(&id), auth, None).await;
    r.assert_error(405, "invalid_request_error");
    assert!(r.header("allow").contains("GET"), "{:?}", r.header("allow"));
    assert!(db_conversation_exists(&id).await);
}
