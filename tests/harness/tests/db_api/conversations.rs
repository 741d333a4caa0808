//! Conversations, message pages, titles and usage stats.

use serde_json::{json, Value};

use super::{nobody, Db};

#[tokio::test]
async fn conversations_crud_is_owner_scoped() {
    let db = Db::new().await;
    let uid = db.user("a@example.com").await;
    let other = db.user("b@example.com").await;
    let made = db
        .call(
            "create_conversation",
            json!({"user_id": uid, "title": "Trip", "model": "m", "system_prompt": "Be brief",
                   "metadata": {"k": "v"}}),
        )
        .await;
    assert_eq!(made["outcome"], "created");
    let c = &made["conversation"];
    assert_eq!(c["title"], "Trip");
    assert_eq!(c["metadata"], json!({"k": "v"}));
    assert_eq!(c["message_count"], 0);
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(
        db.call(
            "create_conversation",
            json!({"user_id": nobody(), "model": "m"})
        )
        .await,
        json!({"outcome": "unauthenticated"})
    );

    let got = db
        .call(
            "get_conversation",
            json!({"user_id": uid, "id": id, "max_messages": 10}),
        )
        .await;
    assert_eq!(got["outcome"], "found");
    assert_eq!(got["conversation"]["messages"], json!([]));
    assert_eq!(got["messages_truncated"], false);
    let theirs = db
        .call("get_conversation", json!({"user_id": other, "id": id}))
        .await;
    assert_eq!(theirs, json!({"outcome": "not_found"}));

    // A patch sets the keys present; null clears title and system prompt.
    let patched = db
        .call(
            "update_conversation",
            json!({"user_id": uid, "id": id, "patch": {"system_prompt": null, "model": "m2"}}),
        )
        .await;
    assert_eq!(patched["outcome"], "updated");
    assert_eq!(patched["conversation"]["system_prompt"], Value::Null);
    assert_eq!(patched["conversation"]["model"], "m2");
    assert_eq!(patched["conversation"]["title"], "Trip", "untouched");
    let empty = db
        .call(
            "update_conversation",
            json!({"user_id": uid, "id": id, "patch": {}}),
        )
        .await;
    assert_eq!(empty["conversation"]["model"], "m2");
    let theirs = db
        .call(
            "update_conversation",
            json!({"user_id": other, "id": id, "patch": {"title": "x"}}),
        )
        .await;
    assert_eq!(theirs, json!({"outcome": "not_found"}));

    let theirs = db
        .call("delete_conversation", json!({"user_id": other, "id": id}))
        .await;
    assert_eq!(theirs, json!({"outcome": "not_found"}));
    let deleted = db
        .call("delete_conversation", json!({"user_id": uid, "id": id}))
        .await;
    assert_eq!(deleted, json!({"outcome": "deleted"}));
    let again = db
        .call("delete_conversation", json!({"user_id": uid, "id": id}))
        .await;
    assert_eq!(again, json!({"outcome": "not_found"}));
    db.done().await;
}

#[tokio::test]
async fn conversation_pages_follow_the_keyset_and_the_search() {
    let db = Db::new().await;
    let uid = db.user("a@example.com").await;
    for title in ["alpha", "beta", "100% gamma"] {
        db.call(
            "create_conversation",
            json!({"user_id": uid, "title": title, "model": "m"}),
        )
        .await;
    }
    let first = db
        .call("list_conversations", json!({"user_id": uid, "limit": 2}))
        .await;
    assert_eq!(first["outcome"], "ok");
    let titles = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["title"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(titles(&first), ["100% gamma", "beta"], "newest first");
    assert_eq!(first["has_more"], true);
    let second = db
        .call(
            "list_conversations",
            json!({"user_id": uid, "limit": 2, "after": first["last"]}),
        )
        .await;
    assert_eq!(titles(&second), ["alpha"]);
    assert_eq!(second["has_more"], false);
    let found = db
        .call(
            "list_conversations",
            json!({"user_id": uid, "limit": 10, "q": "%100\\%%"}),
        )
        .await;
    assert_eq!(titles(&found), ["100% gamma"]);
    db.done().await;
}

/// Stores `n` user messages in `conversation` through the send functions.
async fn messages(db: &Db, uid: &str, conversation: &str, n: usize) {
    for i in 0..n {
        let out = db
            .call(
                "send_prepare",
                json!({"user_id": uid, "conversation_id": conversation,
                       "content": format!("m{i}"), "budget": {"tokens": 1000}}),
            )
            .await;
        assert_eq!(out["outcome"], "prepared", "{out}");
    }
}

#[tokio::test]
async fn message_pages_and_the_embedded_newest_messages() {
    let db = Db::new().await;
    let uid = db.user("a@example.com").await;
    let other = db.user("b@example.com").await;
    let cid = db.conversation(&uid).await;
    messages(&db, &uid, &cid, 5).await;
    let contents = |items: &Value| -> Vec<String> {
        items
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap().to_string())
            .collect()
    };
    let page = db
        .call(
            "list_messages",
            json!({"user_id": uid, "conversation_id": cid, "limit": 2}),
        )
        .await;
    assert_eq!(contents(&page["items"]), ["m0", "m1"]);
    assert_eq!(page["has_more"], true);
    let next = db
        .call(
            "list_messages",
            json!({"user_id": uid, "conversation_id": cid, "limit": 3,
                   "after_seq": page["last_seq"]}),
        )
        .await;
    assert_eq!(contents(&next["items"]), ["m2", "m3", "m4"]);
    assert_eq!(next["has_more"], false);
    let theirs = db
        .call(
            "list_messages",
            json!({"user_id": other, "conversation_id": cid, "limit": 3}),
        )
        .await;
    assert_eq!(theirs, json!({"outcome": "not_found"}));

    let got = db
        .call(
            "get_conversation",
            json!({"user_id": uid, "id": cid, "max_messages": 3}),
        )
        .await;
    assert_eq!(
        contents(&got["conversation"]["messages"]),
        ["m2", "m3", "m4"],
        "the newest, oldest first"
    );
    assert_eq!(got["messages_truncated"], true);
    assert_eq!(got["conversation"]["message_count"], 5);
    db.done().await;
}

#[tokio::test]
async fn titles_and_usage_stats() {
    let db = Db::new().await;
    let uid = db.user("a@example.com").await;
    let cid = db.conversation(&uid).await;
    let usage = json!([
        {"kind": "title", "model": "m", "provider": "groq", "input_tokens": 1000000,
         "output_tokens": 0, "input_price": "0.05", "output_price": "0.1", "success": true},
        {"kind": "title", "model": "g", "provider": "gemini", "success": false, "error": "503"}
    ]);
    let titled = db
        .call(
            "set_title",
            json!({"user_id": uid, "conversation_id": cid, "title": "Hello", "usage": usage}),
        )
        .await;
    assert_eq!(titled["outcome"], "titled");
    assert_eq!(titled["conversation"]["id"], json!(cid));
    assert_eq!(titled["conversation"]["title"], "Hello");
    let kept = db
        .call(
            "set_title",
            json!({"user_id": uid, "conversation_id": cid, "title": "Other", "usage": []}),
        )
        .await;
    assert_eq!(
        kept,
        json!({"outcome": "unchanged"}),
        "an existing title stays"
    );

    let stats = db.call("usage_stats", json!({"user_id": uid})).await;
    assert_eq!(stats["outcome"], "ok");
    let s = &stats["stats"];
    assert_eq!(s["total_requests"], 2);
    assert_eq!(s["total_input_tokens"], 1000000);
    assert_eq!(s["total_cost_usd"], 0.05);
    assert_eq!(s["by_model"].as_array().unwrap().len(), 2);
    assert_eq!(s["by_day"].as_array().unwrap().len(), 1);
    let past = db
        .call(
            "usage_stats",
            json!({"user_id": uid, "from": "2000-01-01", "to": "2000-01-02"}),
        )
        .await;
    assert_eq!(past["stats"]["total_requests"], 0);
    assert_eq!(past["stats"]["by_day"], json!([]));
    db.done().await;
}
