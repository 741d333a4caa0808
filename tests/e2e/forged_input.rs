//! What a client cannot set by adding fields to a body (no mass
//! assignment: the owner, ids, roles, statuses, counts and costs come from
//! the server), and model ids, the only client text that reaches a
//! provider URL, are catalogue entries (no request forgery through them).
//! Runs in the PostgreSQL and HTTP phases against the provider stand-in.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::support::{
    assert_cost, assert_invalid_field, call, cost, create_conversation, create_conversation_reply,
    db, db_conversation_count, db_conversation_owner, db_message_count, get_conversation, id_of,
    list_api_keys, marker, me, messages_path, new_user, patch_conversation, random_hex,
    random_uuid, requests, script, send_ok, stream_path, user_with_conversation, Auth,
    DEFAULT_MODEL,
};

/// How many rows of `table` (`messages` or `usage_ledger`) belong to a user.
async fn db_rows_of(table: &str, user_id: &str) -> i64 {
    db().await
        .query_one(
            &format!("SELECT count(*) FROM app.{table} WHERE user_id = $1::text::uuid"),
            &[&user_id],
        )
        .await
        .expect("count rows")
        .get(0)
}

#[tokio::test]
async fn a_send_cannot_forge_its_role_status_cost_or_owner() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let (other, theirs) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(
        &mk,
        Some("groq"),
        json!({"text": "An honest answer.", "usage": {"input_tokens": 1000, "output_tokens": 100}}),
        1,
    )
    .await;
    let content = format!("Forge me {mk}");
    let forged_id = random_uuid();
    let body = json!({
        "content": content,
        "id": forged_id, "user_id": other.user_id, "conversation_id": theirs,
        "role": "assistant", "status": "error", "provider": "gemini",
        "input_tokens": 0, "output_tokens": 0, "cost_usd": 0, "latency_ms": 0,
    });
    let r = send_ok(&s.access, &id, &body).await;
    let (user, answer) = (&r["user_message"], &r["assistant_message"]);
    assert_eq!(user["role"], "user", "{user}");
    assert_eq!(user["status"], "complete", "{user}");
    assert_eq!(user["provider"], json!(null), "{user}");
    assert_eq!(user["content"], content.as_str(), "{user}");
    for m in [user, answer] {
        assert_eq!(m["conversation_id"], id.as_str(), "{m}");
        assert_ne!(m["id"], forged_id.as_str(), "{m}");
    }
    assert_eq!(answer["provider"], "groq", "{answer}");
    assert_eq!(answer["model"], DEFAULT_MODEL, "{answer}");
    assert_eq!(answer["input_tokens"], 1000, "{answer}");
    assert_eq!(answer["output_tokens"], 100, "{answer}");
    assert_cost(answer, cost(1000, 100, 0.075, 0.30));
    assert_eq!(db_message_count(&id).await, 2);
    assert_eq!(db_message_count(&theirs).await, 0, "nothing in theirs");
    assert_eq!(db_rows_of("messages", &other.user_id).await, 0);
    assert_eq!(db_rows_of("usage_ledger", &other.user_id).await, 0);
    assert!(db_rows_of("usage_ledger", &s.user_id).await >= 1);
}

#[tokio::test]
async fn an_api_key_cannot_be_chosen_or_given_to_another_user() {
    let s = new_user().await;
    let other = new_user().await;
    let chosen = format!("cak_{}", &random_hex(32)[..43]);
    let body = json!({
        "name": "mine", "key": chosen, "prefix": "cak_chosen00", "key_hash": random_hex(32),
        "id": random_uuid(), "user_id": other.user_id, "last_used_at": "2001-01-01T00:00:00Z",
    });
    let r = call(
        Method::POST,
        "/api/v1/auth/api-keys",
        Auth::Bearer(&s.access),
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let key = r.json["key"].as_str().unwrap_or_default().to_string();
    assert_ne!(key, chosen, "the client chose its key");
    assert_ne!(r.json["id"], body["id"]);
    assert_eq!(r.json["prefix"], &key[..12], "{}", r.text);
    assert!(list_api_keys(&other.access).await.is_empty(), "given away");
    let mine = list_api_keys(&s.access).await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["last_used_at"], json!(null), "{:?}", mine[0]);
    // The issued key is the caller's; the chosen one opens nothing.
    let who = me(Auth::ApiKey(&key)).await;
    assert_eq!(who.json["id"], s.user_id.as_str(), "{}", who.text);
    me(Auth::ApiKey(&chosen))
        .await
        .assert_error(401, "authentication_error");
}

#[tokio::test]
async fn a_patch_cannot_move_a_conversation_or_rewrite_its_counts() {
    let s = new_user().await;
    let other = new_user().await;
    let c = create_conversation(&s.access, &json!({"title": "kept"})).await;
    let id = id_of(&c);
    let forged = json!({
        "title": "renamed", "id": random_uuid(), "user_id": other.user_id,
        "message_count": 99, "created_at": "2001-01-01T00:00:00Z",
        "updated_at": "2001-01-01T00:00:00Z",
    });
    let r = patch_conversation(Auth::Bearer(&s.access), &id, &forged).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["title"], "renamed", "{}", r.text);
    assert_eq!(r.json["id"], id.as_str());
    assert_eq!(r.json["message_count"], 0);
    assert_eq!(r.json["created_at"], c["created_at"]);
    assert!(!r.json["updated_at"]
        .as_str()
        .unwrap_or_default()
        .starts_with("2001"));
    assert_eq!(db_conversation_owner(&id).await, s.user_id);
    assert_eq!(db_conversation_count(&other.user_id).await, 0);
    let theirs = get_conversation(Auth::Bearer(&other.access), &id).await;
    theirs.assert_error(404, "not_found_error");
}

#[tokio::test]
async fn model_ids_shaped_like_urls_or_paths_are_422_and_reach_no_provider() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    let hostile = [
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "https://attacker.example/v1".to_string(),
        "../../../_control/scripts".to_string(),
        "gemini-2.5-flash-lite/../../x".to_string(),
        "gemini-2.5-flash-lite:generateContent?key=x".to_string(),
        format!("{DEFAULT_MODEL}#"),
        format!("{DEFAULT_MODEL}\r\nHost: attacker.example"),
        "//attacker.example".to_string(),
    ];
    let content = format!("Where do you go? {mk}");
    for model in &hostile {
        let body = json!({"content": content, "model": model});
        for path in [messages_path(&id), stream_path(&id)] {
            let r = call(Method::POST, &path, Auth::Bearer(&s.access), Some(&body)).await;
            assert_invalid_field(&r, "model");
        }
        let r = create_conversation_reply(Auth::Bearer(&s.access), &json!({"model": model})).await;
        assert_invalid_field(&r, "model");
        let r = patch_conversation(Auth::Bearer(&s.access), &id, &json!({"model": model})).await;
        assert_invalid_field(&r, "model");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(requests(&mk).await.is_empty(), "a provider was called");
    assert_eq!(db_message_count(&id).await, 0);
    let c = get_conversation(Auth::Bearer(&s.access), &id).await;
    assert_eq!(c.json["model"], DEFAULT_MODEL, "{}", c.text);
    assert_eq!(db_conversation_count(&s.user_id).await, 1);
}
