//! `GET /api/v1/conversations/{id}/messages`: order, shape, limits, cursors
//! and pagination while messages arrive. Messages are inserted straight
//! into the database (sending comes later). Runs in the PostgreSQL phase;
//! every test makes its own users.

use std::collections::HashSet;

use serde_json::Value;

use crate::support::{
    all_message_pages, assert_empty_page, assert_invalid_field, assert_message, create_titled, db,
    db_message_order, get_conversation, insert_message, insert_message_with,
    insert_messages_at_once, list_messages, new_user, page_of, query_encode, Auth, Page,
};

/// Every id of these pages, in order.
fn concat(pages: &[Page]) -> Vec<String> {
    pages.iter().flat_map(|p| p.ids.iter().cloned()).collect()
}

/// Asserts no id appears twice.
fn assert_unique(ids: &[String]) {
    let set: HashSet<&String> = ids.iter().collect();
    assert_eq!(set.len(), ids.len(), "an id repeats: {ids:?}");
}

#[tokio::test]
async fn a_new_conversation_has_no_messages() {
    let s = new_user().await;
    let id = create_titled(&s.access, "empty").await;
    let r = list_messages(Auth::Bearer(&s.access), &id, "").await;
    assert_empty_page(&r);
}

#[tokio::test]
async fn messages_are_listed_oldest_first_with_every_field() {
    let s = new_user().await;
    let auth = Auth::Bearer(&s.access);
    let id = create_titled(&s.access, "chat").await;
    let contents = [
        ("user", "Hello 👋\nsecond line, \"quoted\" & <tagged>"),
        ("assistant", "Hi! How can I help?"),
        ("user", "  spaces kept  "),
    ];
    let mut ids = Vec::new();
    for (role, content) in contents {
        ids.push(insert_message(&id, &s.user_id, role, content).await);
    }

    let r = list_messages(auth, &id, "").await;
    let p = page_of(&r);
    assert_eq!(p.ids, ids, "oldest first");
    assert!(!p.has_more);
    for (m, (role, content)) in p.items.iter().zip(contents) {
        assert_message(m);
        assert_eq!(m["conversation_id"], id.as_str(), "{m}");
        assert_eq!(m["role"], role, "{m}");
        assert_eq!(m["content"], content, "{m}");
        assert_eq!(m["thinking"], Value::Null, "{m}");
        assert_eq!(m["model"], Value::Null, "{m}");
        assert_eq!(m["provider"], Value::Null, "{m}");
        assert_eq!(m["status"], "complete", "{m}");
        assert_eq!(m["cost_usd"].as_f64(), Some(0.0), "{m}");
    }

    // The conversation embeds the same messages in the same order.
    let c = get_conversation(auth, &id).await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(
        c.json["messages"],
        Value::Array(p.items.clone()),
        "{}",
        c.text
    );
    assert_eq!(c.json["message_count"], 3);
}

#[tokio::test]
async fn only_this_conversations_messages_are_listed() {
    let s = new_user().await;
    let auth = Auth::Bearer(&s.access);
    let c1 = create_titled(&s.access, "one").await;
    let c2 = create_titled(&s.access, "two").await;
    let client = db().await;
    let mut in_c1 = Vec::new();
    let mut in_c2 = Vec::new();
    for i in 0..4 {
        in_c1.push(insert_message_with(&client, &c1, &s.user_id, "user", &format!("c1 {i}")).await);
        in_c2.push(insert_message_with(&client, &c2, &s.user_id, "user", &format!("c2 {i}")).await);
    }
    assert_eq!(page_of(&list_messages(auth, &c1, "").await).ids, in_c1);
    assert_eq!(page_of(&list_messages(auth, &c2, "").await).ids, in_c2);
    let c = get_conversation(auth, &c2).await;
    let embedded: Vec<&str> = c.json["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("messages: {}", c.text))
        .iter()
        .map(|m| m["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(embedded, in_c2);
}

#[tokio::test]
async fn the_default_limit_is_20_and_limits_from_1_to_100_work() {
    let s = new_user().await;
    let auth = Auth::Bearer(&s.access);
    let id = create_titled(&s.access, "many").await;
    let all = insert_messages_at_once(&id, &s.user_id, 23, "m").await;

    let first = page_of(&list_messages(auth, &id, "").await);
    assert_eq!(first.ids, all[..20]);
    assert!(first.has_more);
    let q = format!(
        "cursor={}",
        query_encode(first.next_cursor.as_deref().unwrap())
    );
    let rest = page_of(&list_messages(auth, &id, &q).await);
    assert_eq!(rest.ids, all[20..]);
    assert!(!rest.has_more);

    let p = page_of(&list_messages(auth, &id, "limit=1").await);
    assert_eq!(p.ids, all[..1]);
    assert!(p.has_more);
    let p = page_of(&list_messages(auth, &id, "limit=23").await);
    assert_eq!(p.ids, all);
    assert!(
        !p.has_more,
        "exactly limit items left: has_more must be false"
    );
    let p = page_of(&list_messages(auth, &id, "limit=100").await);
    assert_eq!(p.ids, all);
    assert!(!p.has_more);
}

#[tokio::test]
async fn invalid_limits_are_422() {
    let s = new_user().await;
    let id = create_titled(&s.access, "limits").await;
    for bad in ["0", "101", "-1", "abc", "2.5", "99999999999999999999"] {
        let r = list_messages(Auth::Bearer(&s.access), &id, &format!("limit={bad}")).await;
        assert_eq!(r.status, 422, "limit={bad}: {}", r.text);
        assert_invalid_field(&r, "limit");
    }
}

#[tokio::test]
async fn malformed_cursors_are_400() {
    let s = new_user().await;
    let id = create_titled(&s.access, "cursors").await;
    insert_message(&id, &s.user_id, "user", "one").await;
    for bad in [
        "garbage",
        "!!!",
        "aGVsbG8",
        "eyJ4IjoxfQ",
        "%%%",
        &"Z".repeat(2000),
    ] {
        let q = format!("cursor={}", query_encode(bad));
        let r = list_messages(Auth::Bearer(&s.access), &id, &q).await;
        assert_eq!(r.status, 400, "cursor={bad}: {}", r.text);
        r.assert_error(400, "invalid_request_error");
    }
}

#[tokio::test]
async fn ten_at_a_time_every_message_is_seen_once_in_order() {
    let s = new_user().await;
    let id = create_titled(&s.access, "long chat").await;
    let client = db().await;
    let mut ids = Vec::new();
    for i in 0..27 {
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        ids.push(
            insert_message_with(&client, &id, &s.user_id, role, &format!("message {i}")).await,
        );
    }
    let pages = all_message_pages(Auth::Bearer(&s.access), &id, 10).await;
    let sizes: Vec<usize> = pages.iter().map(|p| p.items.len()).collect();
    assert_eq!(sizes, vec![10, 10, 7]);
    let more: Vec<bool> = pages.iter().map(|p| p.has_more).collect();
    assert_eq!(more, vec![true, true, false]);
    let all = concat(&pages);
    assert_unique(&all);
    assert_eq!(all, ids, "oldest first");
    for (i, m) in pages.iter().flat_map(|p| p.items.iter()).enumerate() {
        assert_eq!(m["content"], format!("message {i}"), "{m}");
    }
}

#[tokio::test]
async fn messages_added_while_paging_come_after_the_originals() {
    let s = new_user().await;
    let auth = Auth::Bearer(&s.access);
    let id = create_titled(&s.access, "busy chat").await;
    let client = db().await;
    let mut original = Vec::new();
    for i in 0..25 {
        original
            .push(insert_message_with(&client, &id, &s.user_id, "user", &format!("old {i}")).await);
    }

    let mut added = Vec::new();
    let mut pages: Vec<Page> = Vec::new();
    let mut query = "limit=10".to_string();
    loop {
        let p = page_of(&list_messages(auth, &id, &query).await);
        let more = p.has_more;
        let cursor = p.next_cursor.clone();
        pages.push(p);
        if !more {
            break;
        }
        assert!(pages.len() < 10, "pagination does not end");
        added.push(
            insert_message_with(
                &client,
                &id,
                &s.user_id,
                "assistant",
                &format!("new {}", pages.len()),
            )
            .await,
        );
        query = format!("limit=10&cursor={}", query_encode(&cursor.unwrap()));
    }
    let seen = concat(&pages);
    assert_unique(&seen);
    let mut want = original.clone();
    want.extend(added.iter().cloned());
    assert_eq!(
        seen, want,
        "originals in order, then the new ones, each once"
    );
    assert_eq!(seen, db_message_order(&id).await);
}

#[tokio::test]
async fn messages_sharing_a_timestamp_page_without_gaps() {
    let s = new_user().await;
    let id = create_titled(&s.access, "burst").await;
    let ids = insert_messages_at_once(&id, &s.user_id, 9, "burst").await;
    assert_eq!(ids.len(), 9);
    let pages = all_message_pages(Auth::Bearer(&s.access), &id, 2).await;
    let sizes: Vec<usize> = pages.iter().map(|p| p.items.len()).collect();
    assert_eq!(sizes, vec![2, 2, 2, 2, 1]);
    let all = concat(&pages);
    assert_unique(&all);
    assert_eq!(all, ids, "insertion order, even within one timestamp");
}

#[tokio::test]
async fn a_long_conversation_embeds_its_100_newest_messages_and_points_to_the_rest() {
    let s = new_user().await;
    let auth = Auth::Bearer(&s.access);
    let id = create_titled(&s.access, "long").await;
    let all = insert_messages_at_once(&id, &s.user_id, 103, "m").await;
    let c = get_conversation(auth, &id).await;
    assert_eq!(c.status, 200, "{}", c.text);
    let embedded: Vec<&str> = c.json["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("messages: {}", c.text))
        .iter()
        .map(|m| m["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(embedded, all[3..], "the 100 newest, oldest first");
    assert_eq!(c.json["message_count"], 103);
    assert_eq!(c.json["messages_truncated"], true);
    assert_eq!(
        c.json["messages_url"],
        format!("/api/v1/conversations/{id}/messages")
    );
    let short = create_titled(&s.access, "short").await;
    let c = get_conversation(auth, &short).await;
    assert_eq!(c.json["messages_truncated"], false, "{}", c.text);
}
