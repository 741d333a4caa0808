//! A send: `send_prepare`, `send_finish`, `send_abort`.

use serde_json::{json, Value};

use super::{nobody, Db};

fn prepare(uid: &str, cid: &str, content: &str, budget: Value) -> Value {
    json!({"user_id": uid, "conversation_id": cid, "content": content, "budget": budget})
}

fn answer(id: &str, content: &str) -> Value {
    json!({"id": id, "content": content, "model": "m", "provider": "groq",
           "status": "complete", "input_tokens": 10, "output_tokens": 4,
           "input_price": "1", "output_price": "2", "latency_ms": 7})
}

const ANSWER_1: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const ANSWER_2: &str = "aaaaaaaa-0000-4000-8000-000000000002";

#[tokio::test]
async fn prepare_stores_the_message_and_picks_candidates_newest_first() {
    let db = Db::new().await;
    let uid = db.user("a@example.com").await;
    let cid = db.conversation(&uid).await;
    let first = db
        .call(
            "send_prepare",
            prepare(&uid, &cid, "hello", json!({"tokens": 100})),
        )
        .await;
    assert_eq!(first["outcome"], "prepared");
    assert_eq!(first["needs_title"], true);
    assert_eq!(first["candidates"], json!([]));
    assert_eq!(first["complete"], true);
    assert_eq!(first["user_message"]["content"], "hello");
    assert_eq!(first["conversation"]["model"], "m");
    let mid = first["user_message"]["id"].as_str().unwrap().to_string();
    let done = db
        .call(
            "send_finish",
            json!({"user_id": uid, "conversation_id": cid, "user_message_id": mid,
                   "answer": answer(ANSWER_1, "hi there"),
                   "token_counts": [{"id": mid, "tokens": 30}],
                   "usage": [{"kind": "answer", "model": "m", "provider": "groq",
                              "input_tokens": 10, "output_tokens": 4, "input_price": "1",
                              "output_price": "2", "success": true, "message_id": ANSWER_1}]}),
        )
        .await;
    assert_eq!(done["outcome"], "stored");
    assert_eq!(done["assistant_message"]["id"], ANSWER_1);
    assert_eq!(done["assistant_message"]["cost_usd"], 0.000018);
    assert_eq!(done["response"]["user_message"]["id"], mid.as_str());
    assert_eq!(
        db.count("SELECT count(*) FROM app.usage_ledger WHERE message_id IS NOT NULL")
            .await,
        1
    );

    // "hello" has a stored count of 30; "hi there" (8 bytes) counts as 8/8 = 1.
    let second = db
        .call(
            "send_prepare",
            prepare(&uid, &cid, "next", json!({"tokens": 100})),
        )
        .await;
    assert_eq!(second["needs_title"], false);
    assert_eq!(second["complete"], true);
    let picked: Vec<&str> = second["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(picked, ["hello", "hi there"], "oldest first");
    assert_eq!(second["candidates"][0]["content_tokens"], 30);
    assert!(second["candidates"][1]["content_tokens"].is_null());

    // A budget of 1 token: the newest message starts under it and is taken;
    // the one before it would start at 1 and is left behind.
    let tight = db
        .call(
            "send_prepare",
            prepare(&uid, &cid, "more", json!({"tokens": 1})),
        )
        .await;
    let picked: Vec<&str> = tight["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(picked, ["next"]);
    assert_eq!(tight["complete"], false);
    let capped = db
        .call(
            "send_prepare",
            prepare(&uid, &cid, "x", json!({"tokens": 1000, "max_messages": 2})),
        )
        .await;
    assert_eq!(capped["candidates"].as_array().unwrap().len(), 2);
    assert_eq!(capped["complete"], false);
    db.done().await;
}

#[tokio::test]
async fn prepare_answers_not_found_and_unauthenticated() {
    let db = Db::new().await;
    let uid = db.user("a@example.com").await;
    let other = db.user("b@example.com").await;
    let cid = db.conversation(&uid).await;
    let theirs = db
        .call(
            "send_prepare",
            prepare(&other, &cid, "x", json!({"tokens": 9})),
        )
        .await;
    assert_eq!(theirs, json!({"outcome": "not_found"}));
    let gone = db
        .call(
            "send_prepare",
            prepare(&nobody(), &cid, "x", json!({"tokens": 9})),
        )
        .await;
    assert_eq!(gone, json!({"outcome": "unauthenticated"}));
    assert_eq!(db.count("SELECT count(*) FROM app.messages").await, 0);
    db.done().await;
}

#[tokio::test]
async fn idempotency_keys_claim_replay_conflict_and_release() {
    let db = Db::new().await;
    let uid = db.user("a@example.com").await;
    let cid = db.conversation(&uid).await;
    let keyed = |hash: &str| {
        let mut args = prepare(&uid, &cid, "hello", json!({"tokens": 100}));
        args["idempotency"] = json!({"key": "k1", "request_hash": hash});
        args
    };
    let first = db.call("send_prepare", keyed("h1")).await;
    assert_eq!(first["outcome"], "prepared");
    let mid = first["user_message"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        db.call("send_prepare", keyed("h1")).await,
        json!({"outcome": "conflict", "reason": "in_progress"})
    );
    assert_eq!(
        db.call("send_prepare", keyed("h2")).await,
        json!({"outcome": "conflict", "reason": "different_request"})
    );
    // No answer (every provider failed): the key is freed, the message kept.
    let failed = db
        .call(
            "send_finish",
            json!({"user_id": uid, "conversation_id": cid, "user_message_id": mid,
                   "idempotency_key": "k1", "answer": null, "token_counts": [],
                   "usage": [{"kind": "answer", "model": "m", "provider": "groq",
                              "success": false, "error": "timeout"}]}),
        )
        .await;
    assert_eq!(
        failed,
        json!({"outcome": "stored", "assistant_message": null, "response": null})
    );
    assert_eq!(
        db.count("SELECT count(*) FROM app.idempotency_keys").await,
        0
    );

    let retry = db.call("send_prepare", keyed("h1")).await;
    assert_eq!(retry["outcome"], "prepared");
    let mid = retry["user_message"]["id"].as_str().unwrap().to_string();
    let done = db
        .call(
            "send_finish",
            json!({"user_id": uid, "conversation_id": cid, "user_message_id": mid,
                   "idempotency_key": "k1", "answer": answer(ANSWER_2, "hi"),
                   "token_counts": [], "usage": []}),
        )
        .await;
    let replay = db.call("send_prepare", keyed("h1")).await;
    assert_eq!(replay["outcome"], "replay");
    assert_eq!(replay["response"], done["response"]);
    assert_eq!(
        db.count("SELECT count(*) FROM app.messages WHERE role = 'user'")
            .await,
        2,
        "a replay stores nothing"
    );
    // An expired key is claimed afresh.
    db.client
        .execute(
            "UPDATE app.idempotency_keys SET expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        db.call("send_prepare", keyed("h9")).await["outcome"],
        "prepared"
    );
    db.done().await;
}

#[tokio::test]
async fn abort_undoes_a_prepare_and_finish_survives_a_deleted_conversation() {
    let db = Db::new().await;
    let uid = db.user("a@example.com").await;
    let cid = db.conversation(&uid).await;
    let mut args = prepare(&uid, &cid, "too long", json!({"tokens": 100}));
    args["idempotency"] = json!({"key": "k", "request_hash": "h"});
    let prepared = db.call("send_prepare", args.clone()).await;
    let mid = prepared["user_message"]["id"].as_str().unwrap().to_string();
    let aborted = db
        .call(
            "send_abort",
            json!({"user_id": uid, "message_id": mid, "idempotency_key": "k"}),
        )
        .await;
    assert_eq!(aborted, json!({"outcome": "aborted"}));
    assert_eq!(db.count("SELECT count(*) FROM app.messages").await, 0);
    assert_eq!(
        db.count("SELECT message_count::int8 FROM app.conversations")
            .await,
        0
    );
    assert_eq!(
        db.call("send_prepare", args).await["outcome"],
        "prepared",
        "the key was freed"
    );

    let prepared = db
        .call(
            "send_prepare",
            prepare(&uid, &cid, "q", json!({"tokens": 100})),
        )
        .await;
    let mid = prepared["user_message"]["id"].as_str().unwrap().to_string();
    db.call("delete_conversation", json!({"user_id": uid, "id": cid}))
        .await;
    let late = db
        .call(
            "send_finish",
            json!({"user_id": uid, "conversation_id": cid, "user_message_id": mid,
                   "answer": answer(ANSWER_1, "late"), "token_counts": [],
                   "usage": [{"kind": "answer", "model": "m", "provider": "groq",
                              "input_tokens": 1, "success": true, "message_id": ANSWER_1}]}),
        )
        .await;
    assert_eq!(
        late,
        json!({"outcome": "stored", "assistant_message": null, "response": null})
    );
    assert_eq!(
        db.count("SELECT count(*) FROM app.usage_ledger WHERE conversation_id IS NULL AND message_id IS NULL")
            .await,
        1,
        "the usage is kept without the conversation"
    );
    db.done().await;
}

#[tokio::test]
async fn a_key_whose_lease_lapsed_is_taken_over_and_its_old_holder_stores_nothing() {
    let db = Db::new().await;
    let uid = db.user("a@example.com").await;
    let cid = db.conversation(&uid).await;
    let mut args = prepare(&uid, &cid, "hello", json!({"tokens": 100}));
    args["idempotency"] = json!({"key": "k", "request_hash": "h", "lease_seconds": 60});
    let first = db.call("send_prepare", args.clone()).await;
    let old = first["user_message"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        db.count(
            "SELECT count(*) FROM app.idempotency_keys WHERE locked_until > now() + interval '50 s' \
             AND locked_until <= now() + interval '60 s'"
        )
        .await,
        1,
        "the lease is the one asked for"
    );
    assert_eq!(
        db.call("send_prepare", args.clone()).await["reason"],
        "in_progress"
    );
    db.client
        .execute(
            "UPDATE app.idempotency_keys SET locked_until = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    let taken = db.call("send_prepare", args.clone()).await;
    assert_eq!(taken["outcome"], "prepared");
    let new = taken["user_message"]["id"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(
        db.count("SELECT count(*) FROM app.messages").await,
        1,
        "the abandoned user message is gone"
    );
    // The old holder finishes late: its answer and result are not kept, its usage is.
    let late = db
        .call(
            "send_finish",
            json!({"user_id": uid, "conversation_id": cid, "user_message_id": old,
                   "idempotency_key": "k", "answer": answer(ANSWER_1, "late"),
                   "token_counts": [], "usage": [{"kind": "answer", "model": "m",
                   "provider": "groq", "success": true}]}),
        )
        .await;
    assert_eq!(late["response"], Value::Null);
    assert_eq!(db.count("SELECT count(*) FROM app.messages").await, 1);
    assert_eq!(db.count("SELECT count(*) FROM app.usage_ledger").await, 1);
    assert_eq!(
        db.call("send_prepare", args.clone()).await["reason"],
        "in_progress",
        "the new holder keeps the key"
    );
    let done = db
        .call(
            "send_finish",
            json!({"user_id": uid, "conversation_id": cid, "user_message_id": new,
                   "idempotency_key": "k", "answer": answer(ANSWER_2, "on time"),
                   "token_counts": [], "usage": []}),
        )
        .await;
    let replay = db.call("send_prepare", args).await;
    assert_eq!(replay["outcome"], "replay");
    assert_eq!(replay["response"], done["response"]);
    db.done().await;
}

#[tokio::test]
async fn a_repeated_finish_of_one_send_stores_nothing_twice() {
    // The worker calls send_finish again when the reply of the first call
    // was lost (the connection broke after the commit): same send_id, same
    // arguments. Nothing is stored twice and the same result comes back.
    let db = Db::new().await;
    let uid = db.user("a@example.com").await;
    let cid = db.conversation(&uid).await;
    let first = db
        .call(
            "send_prepare",
            json!({"user_id": uid, "conversation_id": cid, "content": "hello",
                   "idempotency": {"key": "k", "request_hash": "h", "lease_seconds": 60},
                   "budget": {"tokens": 100}}),
        )
        .await;
    let mid = first["user_message"]["id"].as_str().unwrap().to_string();
    let usage = json!([
        {"kind": "answer", "model": "m2", "provider": "gemini", "success": false,
         "error": "timed out before the first token"},
        {"kind": "answer", "model": "m", "provider": "groq", "input_tokens": 10,
         "output_tokens": 4, "input_price": "1", "output_price": "2", "success": true,
         "message_id": ANSWER_1}]);
    let args = json!({"user_id": uid, "conversation_id": cid, "user_message_id": mid,
                      "send_id": ANSWER_1, "idempotency_key": "k",
                      "answer": answer(ANSWER_1, "once"), "token_counts": [], "usage": usage});
    let stored = db.call("send_finish", args.clone()).await;
    assert_eq!(stored["assistant_message"]["content"], "once");
    let again = db.call("send_finish", args.clone()).await;
    assert_eq!(again, stored, "the repeat answers what the first stored");
    assert_eq!(db.count("SELECT count(*) FROM app.messages").await, 2);
    assert_eq!(db.count("SELECT count(*) FROM app.usage_ledger").await, 2);
    assert_eq!(
        db.count("SELECT count(*) FROM app.usage_ledger WHERE send_id IS NOT NULL")
            .await,
        2,
        "the rows carry their send"
    );
    let replay = db
        .call(
            "send_prepare",
            json!({"user_id": uid, "conversation_id": cid, "content": "hello",
                   "idempotency": {"key": "k", "request_hash": "h", "lease_seconds": 60},
                   "budget": {"tokens": 100}}),
        )
        .await;
    assert_eq!(replay["outcome"], "replay");
    assert_eq!(
        replay["response"]["assistant_message"],
        stored["assistant_message"]
    );

    // A send no provider answered records its failed attempts once.
    let second = db
        .call(
            "send_prepare",
            prepare(&uid, &cid, "anyone?", json!({"tokens": 100})),
        )
        .await;
    let mid = second["user_message"]["id"].as_str().unwrap().to_string();
    let failed = json!({"user_id": uid, "conversation_id": cid, "user_message_id": mid,
                        "send_id": ANSWER_2, "token_counts": [],
                        "usage": [{"kind": "answer", "model": "m", "provider": "groq",
                                   "success": false, "error": "HTTP 500"}]});
    for _ in 0..2 {
        let out = db.call("send_finish", failed.clone()).await;
        assert_eq!(out["response"], Value::Null);
    }
    assert_eq!(db.count("SELECT count(*) FROM app.usage_ledger").await, 3);
    assert_eq!(db.count("SELECT count(*) FROM app.messages").await, 3);
    db.done().await;
}
