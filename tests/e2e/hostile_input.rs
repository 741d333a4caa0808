//! Input the worker used to mishandle (found by generated requests and
//! property tests): NUL characters, which PostgreSQL text cannot hold, in
//! request bodies and queries (now a clear 4xx, nothing stored) and in a
//! model's answer (now dropped, the answer stored).
//! Runs in the PostgreSQL phase; every test makes its own user.

use serde_json::json;

use crate::support::{
    assert_invalid_field, create_conversation, create_conversation_reply, db_conversation_count,
    db_message_count, id_of, list_conversations, marker, new_user, patch_conversation,
    query_encode, register_reply, script, send_message, unique_email, Auth, DEFAULT_MODEL,
    FALLBACK_MODEL,
};

/// PostgreSQL text cannot hold U+0000: a body with it anywhere used to
/// reach the database and fail there (500). Now it is a 400 before any
/// write, on every route that takes a body.
#[tokio::test]
async fn nul_characters_in_a_body_are_a_400_and_nothing_is_stored() {
    let s = new_user().await;
    let auth = Auth::Bearer(&s.access);
    for body in [
        json!({"title": "a\u{0}b"}),
        json!({"system_prompt": "x\u{0}"}),
        json!({"metadata": {"k\u{0}": "v"}}),
        json!({"metadata": {"k": "\u{0}"}}),
    ] {
        let r = create_conversation_reply(auth, &body).await;
        r.assert_error(400, "invalid_request_error");
        assert!(r.text.contains("NUL"), "{}", r.text);
    }
    assert_eq!(db_conversation_count(&s.user_id).await, 0);

    let c = create_conversation(&s.access, &json!({"title": "kept"})).await;
    let id = id_of(&c);
    let r = patch_conversation(auth, &id, &json!({"metadata": {"a": "b\u{0}"}})).await;
    r.assert_error(400, "invalid_request_error");
    let r = send_message(auth, &id, &json!({"content": "hi\u{0}"})).await;
    r.assert_error(400, "invalid_request_error");
    assert_eq!(db_message_count(&id).await, 0, "no message stored");

    let r = register_reply(&unique_email("nul"), "password1\u{0}").await;
    r.assert_error(400, "invalid_request_error");
}

#[tokio::test]
async fn a_nul_character_in_the_search_is_a_422() {
    let s = new_user().await;
    let r = list_conversations(
        Auth::Bearer(&s.access),
        &format!("q={}", query_encode("a\u{0}b")),
    )
    .await;
    assert_invalid_field(&r, "q");
}

/// A model's answer with U+0000 in it used to fail to store (PostgreSQL
/// text cannot hold it) and was lost; the NUL characters are now dropped
/// from what is streamed and stored, on both providers.
#[tokio::test]
async fn nul_characters_from_a_model_are_dropped_and_the_answer_is_stored() {
    let s = new_user().await;
    let auth = Auth::Bearer(&s.access);
    for provider in ["groq", "gemini"] {
        let id = id_of(&create_conversation(&s.access, &json!({"title": "t"})).await);
        let mk = marker();
        let model = if provider == "groq" {
            DEFAULT_MODEL
        } else {
            FALLBACK_MODEL
        };
        script(
            &mk,
            Some(provider),
            json!({"text": "before\u{0} after\u{0}"}),
            1,
        )
        .await;
        let r = send_message(
            auth,
            &id,
            &json!({"content": format!("hi {mk}"), "model": model}),
        )
        .await;
        assert_eq!(r.status, 201, "{provider}: {}", r.text);
        let answer = &r.json["assistant_message"];
        assert_eq!(answer["content"], "before after", "{provider}");
        assert_eq!(answer["status"], "complete", "{provider}");
        assert_eq!(
            db_message_count(&id).await,
            2,
            "{provider}: both messages stored"
        );
    }
}
