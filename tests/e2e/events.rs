//! `GET /api/v1/conversations/{id}/events` (PostgreSQL phase): what both
//! send routes, PATCH, DELETE and automatic titles publish; replay with
//! `Last-Event-ID`; resuming an answer mid-way; browser event tokens; the
//! per-user cap on open streams; retention.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

const WAIT: Duration = Duration::from_secs(15);

/// A user with an untitled conversation.
async fn owner() -> (Session, String) {
    user_with_conversation(&json!({})).await
}

/// Asserts the events of one exchange: the user message, the answer
/// starting, its deltas, the stored answer; returns the answer's id.
fn assert_exchange(w: &Watch, question: &str, stored: &Value) -> String {
    w.assert_well_formed();
    let created = w.named("message.created");
    assert_eq!(created.len(), 2, "{}", w.raw);
    assert_eq!(created[0].data["message"]["role"], "user");
    assert_eq!(created[0].data["message"]["content"], question);
    let answer = &created[1].data["message"];
    assert_eq!(answer["status"], "in_progress", "{}", w.raw);
    let id = answer["id"].as_str().expect("answer id").to_string();
    assert_eq!(
        stored["id"],
        id.as_str(),
        "the stored answer has the announced id"
    );
    let done = w.named("message.completed");
    assert_eq!(done.len(), 1, "{}", w.raw);
    assert_eq!(done[0].data["message"], *stored);
    assert_eq!(
        w.delta_text(&id, "text"),
        stored["content"].as_str().unwrap()
    );
    assert!(created[1].id < w.named("message.delta")[0].id);
    id
}

#[tokio::test]
async fn a_streamed_answer_and_its_title_reach_a_watcher_in_order() {
    let (s, id) = owner().await;
    let mut w = watch(&s.access, &id, None).await;
    let mk = marker();
    let chunks = ["Lisbon ", "in ", "one ", "day: ", "Alfama."];
    script(&mk, Some("groq"), json!({"chunks": chunks}), 1).await;
    let question = format!("Plan Lisbon {mk}");
    stream_message(&s.access, &id, &json!({"content": question}))
        .await
        .assert_complete();
    w.until_event("message.completed").await;
    let stored = stored_answer(&s.access, &id, WAIT).await;
    assert_exchange(&w, &question, &stored);
    assert!(w.raw.starts_with("retry: "), "{}", w.raw);
    let updated = w.until_event("conversation.updated").await;
    let title = updated.data["conversation"]["title"].as_str().unwrap_or("");
    assert!(!title.is_empty(), "the automatic title: {}", w.raw);
    let got = get_conversation(Auth::Bearer(&s.access), &id).await;
    assert_eq!(got.json["title"], title);
    w.assert_well_formed();
}

#[tokio::test]
async fn the_whole_answer_route_publishes_the_same_events() {
    let (s, id) = user_with_conversation(&json!({"title": "kept"})).await;
    let mut w = watch(&s.access, &id, None).await;
    let mk = marker();
    script(&mk, None, json!({"text": "Three words here"}), 1).await;
    let question = format!("Hi {mk}");
    let sent = send_ok(&s.access, &id, &json!({"content": question})).await;
    w.until_event("message.completed").await;
    assert_exchange(&w, &question, &sent["assistant_message"]);
    assert_eq!(
        w.named("message.created")[0].data["message"],
        sent["user_message"]
    );
}

#[tokio::test]
async fn replay_after_last_event_id_misses_and_repeats_nothing() {
    let (s, id) = owner().await;
    let mut first = watch(&s.access, &id, None).await;
    for n in 1..=3 {
        let r = patch_conversation(
            Auth::Bearer(&s.access),
            &id,
            &json!({"title": format!("t{n}")}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert!(first.until(WAIT, |e| e.len() == 3).await, "{}", first.raw);
    first.assert_well_formed();
    let after = first.events[0].id.unwrap();
    // By header, then by the query parameter.
    let mut by_header = watch(&s.access, &id, Some(after)).await;
    let path = format!("{}?last_event_id={after}", events_path(&id));
    let mut by_query = watch_at(&path, Auth::Bearer(&s.access), None)
        .await
        .unwrap();
    for w in [&mut by_header, &mut by_query] {
        assert!(w.until(WAIT, |e| e.len() == 2).await, "{}", w.raw);
    }
    let r = patch_conversation(Auth::Bearer(&s.access), &id, &json!({"title": "t4"})).await;
    assert_eq!(r.status, 200);
    for w in [&mut first, &mut by_header, &mut by_query] {
        assert!(
            w.until(WAIT, |e| e
                .iter()
                .any(|e| e.data["conversation"]["title"] == "t4"))
                .await
        );
    }
    let tail: Vec<(Option<i64>, Value)> = first.events[1..]
        .iter()
        .map(|e| (e.id, e.data.clone()))
        .collect();
    for w in [&by_header, &by_query] {
        w.assert_well_formed();
        let got: Vec<(Option<i64>, Value)> =
            w.events.iter().map(|e| (e.id, e.data.clone())).collect();
        assert_eq!(got, tail, "exactly what came after {after}");
        assert_eq!(w.events[0].data["conversation"]["title"], "t2");
    }
}

#[tokio::test]
async fn a_watcher_that_reconnects_mid_answer_gets_the_rest_of_it() {
    let (s, id) = user_with_conversation(&json!({"title": "resume"})).await;
    let mut before = watch(&s.access, &id, None).await;
    let mk = marker();
    let words: Vec<String> = (0..12).map(|i| format!("w{i} ")).collect();
    script(
        &mk,
        None,
        json!({"chunks": words, "chunk_delay_ms": 300}),
        1,
    )
    .await;
    let (access, conversation) = (s.access.clone(), id.clone());
    let sending = tokio::spawn(async move {
        send_ok(
            &access,
            &conversation,
            &json!({"content": format!("slow {mk}")}),
        )
        .await
    });
    assert!(
        before
            .until(WAIT, |e| e.iter().any(|e| e.name == "message.delta"))
            .await
    );
    let last = before.last_id();
    let answer = before.named("message.created")[1].data["message"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let got_before = before.delta_text(&answer, "text");
    drop(before);
    let mut after = watch(&s.access, &id, Some(last)).await;
    after.until_event("message.completed").await;
    after.assert_well_formed();
    assert!(after.events[0].id.unwrap() > last);
    assert!(
        !after.named("message.delta").is_empty(),
        "the rest came as deltas: {}",
        after.raw
    );
    let sent = sending.await.expect("the send");
    let stored = sent["assistant_message"]["content"].as_str().unwrap();
    assert_eq!(
        format!("{got_before}{}", after.delta_text(&answer, "text")),
        stored
    );
    assert_eq!(
        after.named("message.completed")[0].data["message"]["content"],
        stored
    );
}

#[tokio::test]
async fn patch_and_delete_reach_the_watcher_and_delete_ends_the_stream_and_clears_the_object() {
    let (s, id) = owner().await;
    let mut w = watch(&s.access, &id, None).await;
    assert!(
        w.until_heartbeat().await,
        "a heartbeat when idle: {}",
        w.raw
    );
    let r = patch_conversation(Auth::Bearer(&s.access), &id, &json!({"title": "Renamed"})).await;
    assert_eq!(r.status, 200);
    let updated = w.until_event("conversation.updated").await;
    assert_eq!(updated.data["conversation"], r.json);
    let kept = events_object(&id).expect("the conversation's object is on disk");
    assert!(kept.events > 0 && kept.meta > 0, "{kept:?}");
    assert_eq!(
        delete_conversation(Auth::Bearer(&s.access), &id)
            .await
            .status,
        204
    );
    let deleted = w.until_event("conversation.deleted").await;
    assert_eq!(deleted.data["conversation_id"], id.as_str());
    assert!(w.until(WAIT, |_| false).await || w.ended);
    assert!(w.ended, "the stream ends after conversation.deleted");
    w.assert_well_formed();
    // The object forgets everything: no event, no retention setting.
    let mut left = object_file_rows(&kept.file);
    for _ in 0..50 {
        if (left.events, left.meta) == (0, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = object_file_rows(&kept.file);
    }
    assert_eq!((left.events, left.meta), (0, 0), "{left:?}");
    let gone = watch_at(&events_path(&id), Auth::Bearer(&s.access), None)
        .await
        .err()
        .unwrap();
    gone.assert_error(404, "not_found_error");
}

#[tokio::test]
async fn foreign_missing_and_unauthenticated_streams_are_refused() {
    let (s, id) = owner().await;
    let other = new_user().await;
    for path in [
        events_path(&id),
        events_path(&random_uuid()),
        events_path("nope"),
    ] {
        let r = watch_at(&path, Auth::Bearer(&other.access), None)
            .await
            .err()
            .unwrap();
        r.assert_error(404, "not_found_error");
    }
    let r = watch_at(&events_path(&id), Auth::None, None)
        .await
        .err()
        .unwrap();
    r.assert_error(401, "authentication_error");
    let r = watch_at(&events_path(&id), Auth::Bearer(&s.access), None).await;
    assert!(r.is_ok());
    let path = format!("{}?last_event_id=x", events_path(&id));
    let r = watch_at(&path, Auth::Bearer(&s.access), None)
        .await
        .err()
        .unwrap();
    r.assert_error(400, "invalid_request_error");
}

#[tokio::test]
async fn browser_tokens_open_only_their_conversation_until_they_expire() {
    let (s, id) = owner().await;
    let minted = call(
        Method::POST,
        &format!("{}/token", events_path(&id)),
        Auth::Bearer(&s.access),
        None,
    )
    .await;
    assert_eq!(minted.status, 201, "{}", minted.text);
    assert_eq!(minted.json["token_type"], "events");
    assert_eq!(minted.json["expires_in"], 300);
    let token = minted.json["token"].as_str().unwrap().to_string();
    let url = minted.json["url"].as_str().unwrap().to_string();
    assert_eq!(url, format!("{}?token={token}", events_path(&id)));
    let mut w = watch_at(&url, Auth::None, None)
        .await
        .expect("the token opens the stream");
    patch_conversation(Auth::Bearer(&s.access), &id, &json!({"title": "seen"})).await;
    w.until_event("conversation.updated").await;
    // Another conversation of the same user, and the token as an access token.
    let other = id_of(&create_conversation(&s.access, &json!({})).await);
    let r = watch_at(
        &format!("{}?token={token}", events_path(&other)),
        Auth::None,
        None,
    )
    .await;
    r.err().unwrap().assert_error(401, "authentication_error");
    me(Auth::Bearer(&token))
        .await
        .assert_error(401, "authentication_error");
    // Expired (past the leeway).
    let now = now_secs();
    let claims = json!({"sub": s.user_id, "jti": random_uuid(), "typ": "events", "cid": id,
                        "iat": now - 400, "exp": now - 60});
    let expired = hs256_token(jwt_secret(), &hs256_header(), &claims);
    let r = watch_at(
        &format!("{}?token={expired}", events_path(&id)),
        Auth::None,
        None,
    )
    .await;
    r.err().unwrap().assert_error(401, "authentication_error");
    // An API key can mint one; a stranger cannot mint one for this conversation.
    let key = create_api_key(&s.access, "events").await;
    let by_key = call(
        Method::POST,
        &format!("{}/token", events_path(&id)),
        Auth::ApiKey(&key.key),
        None,
    )
    .await;
    assert_eq!(by_key.status, 201, "{}", by_key.text);
    let stranger = new_user().await;
    let r = call(
        Method::POST,
        &format!("{}/token", events_path(&id)),
        Auth::Bearer(&stranger.access),
        None,
    )
    .await;
    r.assert_error(404, "not_found_error");
}

#[tokio::test]
async fn open_streams_are_capped_per_user() {
    let (s, id) = owner().await;
    let mut open = Vec::new();
    for _ in 0..5 {
        open.push(watch(&s.access, &id, None).await);
    }
    let refused = watch_at(&events_path(&id), Auth::Bearer(&s.access), None)
        .await
        .err()
        .unwrap();
    refused.assert_error(429, "rate_limit_error");
    let message = refused.json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("at most 5") && message.contains("event streams"),
        "{message}"
    );
    assert!(!refused.header("retry-after").is_empty());
    // Another user is not affected; a closed stream frees its slot.
    let other = owner().await;
    watch(&other.0.access, &other.1, None).await;
    drop(open.pop());
    let started = std::time::Instant::now();
    loop {
        match watch_at(&events_path(&id), Auth::Bearer(&s.access), None).await {
            Ok(_) => break,
            Err(r) if started.elapsed() < WAIT => assert_eq!(r.status, 429),
            Err(r) => panic!("the slot was not freed: {}", r.text),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn ids_the_log_no_longer_holds_get_a_reload_event() {
    let (s, id) = owner().await;
    let r = patch_conversation(Auth::Bearer(&s.access), &id, &json!({"title": "old"})).await;
    assert_eq!(r.status, 200);
    let mut w = watch(&s.access, &id, Some(0)).await;
    let first = w.until_event("conversation.updated").await;
    drop(w);
    // An id the conversation never had.
    let mut w = watch(&s.access, &id, Some(first.id.unwrap() + 1000)).await;
    let reload = w.until_event("reload").await;
    assert_eq!(
        reload.id, first.id,
        "the reload notice carries the latest id"
    );
    drop(w);
    // Past the retention (EVENT_RETENTION_SECONDS in the test stack), the
    // object's alarm drops the event: id 0 can no longer be replayed.
    let started = std::time::Instant::now();
    loop {
        let mut w = watch(&s.access, &id, Some(0)).await;
        assert!(
            w.until(Duration::from_secs(3), |e| !e.is_empty()).await,
            "{}",
            w.raw
        );
        match w.events[0].name.as_str() {
            "reload" => break,
            "conversation.updated" if started.elapsed() < Duration::from_secs(30) => {}
            other => panic!("still {other} after {:?}", started.elapsed()),
        }
        drop(w);
        // A closed stream's slot frees at its next heartbeat: poll gently.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

/// Between events, an object whose watchers are all that is left is evicted
/// from memory (hibernation: the local runtime does it after about 10 s
/// idle, and bills nothing meanwhile in production); the next event wakes
/// it with its watchers' sockets, which receive it.
#[tokio::test]
async fn an_idle_object_hibernates_and_its_watchers_still_get_events() {
    let (s, id) = owner().await;
    let mut w = watch(&s.access, &id, None).await;
    let retitle = |title: &'static str| {
        let (access, id) = (s.access.clone(), id.clone());
        async move {
            let r =
                patch_conversation(Auth::Bearer(&access), &id, &json!({ "title": title })).await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
    };
    retitle("Before").await;
    w.until_event("conversation.updated").await;
    let kept = events_object(&id).expect("the conversation's object is on disk");
    let object = kept
        .file
        .rsplit('/')
        .next()
        .and_then(|f| f.strip_suffix(".sqlite"))
        .expect("the object's id names its file");
    logged(&["events: object", object, "starts with 0 sockets"]).await;

    tokio::time::sleep(Duration::from_secs(20)).await;
    retitle("After").await;
    assert!(
        w.until(WAIT, |events| events
            .iter()
            .any(|e| e.data["conversation"]["title"] == "After"))
            .await,
        "the woken object reaches its watcher: {}",
        w.raw
    );
    logged(&["events: object", object, "starts with 1 sockets"]).await;
    assert_eq!(w.named("conversation.updated").len(), 2);
    w.assert_well_formed();
}
