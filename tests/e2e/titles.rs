//! Automatic titles: generated after the first exchange of an untitled
//! conversation, off the response path; never over a title the user set;
//! absent when the title call fails.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{
    all_requests, db, get_conversation, insert_message, marker, script, send_ok, stream_message,
    title_requests, user_with_conversation, Auth,
};

/// Polls the conversation until its title is set (or `within` passes).
async fn title_within(access: &str, id: &str, within: Duration) -> Value {
    let started = Instant::now();
    loop {
        let c = get_conversation(Auth::Bearer(access), id).await.json;
        if !c["title"].is_null() || started.elapsed() > within {
            return c["title"].clone();
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Waits until the stand-in has seen `n` requests carrying `mk`.
async fn requests_reach(mk: &str, n: usize, within: Duration) -> usize {
    let started = Instant::now();
    loop {
        let seen = all_requests(mk).await.len();
        if seen >= n || started.elapsed() > within {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_first_exchange_titles_an_untitled_conversation() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(&mk, None, json!({"text": "Paris is lovely in spring."}), 1).await;
    script(&mk, None, json!({"text": "\"Trip to Paris.\""}), 1).await;
    let answer = send_ok(
        &s.access,
        &id,
        &json!({ "content": format!("{mk} plan a trip") }),
    )
    .await;
    assert_eq!(
        answer["assistant_message"]["content"],
        "Paris is lovely in spring."
    );
    let title = title_within(&s.access, &id, Duration::from_secs(8)).await;
    assert_eq!(
        title, "Trip to Paris",
        "quotes and the final period are removed"
    );
    let title_call = &title_requests(&mk).await[0];
    let sent = title_call["body"].to_string();
    assert!(
        sent.contains("plan a trip") && sent.contains("Paris is lovely"),
        "{sent}"
    );
    let kinds: Vec<String> = db()
        .await
        .query(
            "SELECT kind FROM app.usage_ledger WHERE user_id = $1::text::uuid ORDER BY created_at",
            &[&s.user_id],
        )
        .await
        .expect("ledger")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kinds, ["answer", "title"], "title calls are costed too");
}

#[tokio::test]
async fn a_streamed_first_exchange_is_titled_too() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(&mk, None, json!({"text": "Here you go."}), 1).await;
    script(&mk, None, json!({"text": "Weekly meal plan"}), 1).await;
    let reply = stream_message(&s.access, &id, &json!({ "content": mk })).await;
    assert_eq!(reply.status, 200);
    let title = title_within(&s.access, &id, Duration::from_secs(8)).await;
    assert_eq!(title, "Weekly meal plan");
}

#[tokio::test]
async fn a_title_the_user_set_is_never_replaced() {
    let (s, id) = user_with_conversation(&json!({"title": "Mine"})).await;
    let mk = marker();
    send_ok(&s.access, &id, &json!({ "content": mk })).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(all_requests(&mk).await.len(), 1, "no title call");
    let c = get_conversation(Auth::Bearer(&s.access), &id).await.json;
    assert_eq!(c["title"], "Mine");
}

#[tokio::test]
async fn only_the_first_exchange_triggers_a_title() {
    let (s, id) = user_with_conversation(&json!({})).await;
    insert_message(&id, &s.user_id, "user", "earlier question").await;
    insert_message(&id, &s.user_id, "assistant", "earlier answer").await;
    let mk = marker();
    send_ok(&s.access, &id, &json!({ "content": mk })).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(all_requests(&mk).await.len(), 1, "no title call");
    let c = get_conversation(Auth::Bearer(&s.access), &id).await.json;
    assert!(c["title"].is_null(), "{c}");
}

#[tokio::test]
async fn a_failed_title_call_leaves_the_title_empty() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(&mk, None, json!({"text": "An answer."}), 1).await;
    script(&mk, Some("groq"), json!({"status": 500}), 1).await;
    script(&mk, Some("gemini"), json!({"status": 503}), 1).await;
    let answer = send_ok(&s.access, &id, &json!({ "content": mk })).await;
    assert_eq!(answer["assistant_message"]["status"], "complete");
    assert_eq!(requests_reach(&mk, 3, Duration::from_secs(8)).await, 3);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let c = get_conversation(Auth::Bearer(&s.access), &id).await.json;
    assert!(c["title"].is_null(), "{c}");
}

#[tokio::test]
async fn long_titles_are_cut_to_60_characters() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(&mk, None, json!({"text": "Ok."}), 1).await;
    script(
        &mk,
        None,
        json!({"text": "A remarkably long title that goes on and on well beyond the sixty character limit"}),
        1,
    )
    .await;
    send_ok(&s.access, &id, &json!({ "content": mk })).await;
    let title = title_within(&s.access, &id, Duration::from_secs(8)).await;
    let title = title.as_str().expect("a title");
    assert!(title.chars().count() <= 60, "{title}");
    assert!(title.starts_with("A remarkably long title"), "{title}");
}
