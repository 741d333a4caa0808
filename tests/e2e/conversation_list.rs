//! `GET /api/v1/conversations`: order, limits, cursors, pagination under
//! concurrent writes, and the `q` title filter. Runs in the PostgreSQL
//! phase; every test makes its own users.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use crate::support::{
    all_conversation_pages, assert_conversation, assert_empty_page, assert_invalid_field,
    create_conversation, create_titled, db_conversation_order, db_updated_at_micros,
    get_conversation, insert_conversations_at_once, insert_message, instant, list_conversations,
    new_user, page_of, patch_conversation, query_encode, Auth, Page, CONVERSATION_FIELDS,
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

/// The ids of the conversations `q` finds, following every page.
async fn search(access: &str, q: &str) -> Vec<String> {
    let extra = format!("q={}", query_encode(q));
    let pages = all_conversation_pages(Auth::Bearer(access), 100, &extra).await;
    concat(&pages)
}

#[tokio::test]
async fn a_new_user_has_an_empty_list() {
    let s = new_user().await;
    let r = list_conversations(Auth::Bearer(&s.access), "").await;
    assert_empty_page(&r);
}

#[tokio::test]
async fn the_list_is_newest_first_and_only_the_users_own() {
    let a = new_user().await;
    let b = new_user().await;
    let c1 = create_conversation(
        &a.access,
        &json!({"title": "first", "metadata": {"n": "1"}}),
    )
    .await;
    let c2 = create_titled(&a.access, "second").await;
    let c3 = create_titled(&a.access, "third").await;
    let other = create_titled(&b.access, "b's only").await;

    let p = page_of(&list_conversations(Auth::Bearer(&a.access), "").await);
    let c1_id = c1["id"].as_str().unwrap().to_string();
    assert_eq!(p.ids, vec![c3.clone(), c2.clone(), c1_id.clone()]);
    assert_eq!(p.ids, db_conversation_order(&a.user_id).await);
    assert!(!p.has_more);
    for item in &p.items {
        assert_conversation(item);
        assert!(
            item.get("messages").is_none(),
            "a list item with messages: {item}"
        );
    }
    let listed_c1 = &p.items[2];
    for k in CONVERSATION_FIELDS {
        assert_eq!(listed_c1[k], c1[k], "{k}: {listed_c1} vs {c1}");
    }

    let p = page_of(&list_conversations(Auth::Bearer(&b.access), "").await);
    assert_eq!(p.ids, vec![other]);
}

#[tokio::test]
async fn the_default_limit_is_20() {
    let s = new_user().await;
    let ids = insert_conversations_at_once(&s.user_id, 23, "bulk").await;
    let first = page_of(&list_conversations(Auth::Bearer(&s.access), "").await);
    assert_eq!(first.items.len(), 20);
    assert!(first.has_more);
    let cursor = first.next_cursor.clone().unwrap();
    let rest = page_of(
        &list_conversations(
            Auth::Bearer(&s.access),
            &format!("cursor={}", query_encode(&cursor)),
        )
        .await,
    );
    assert_eq!(rest.items.len(), 3);
    assert!(!rest.has_more);
    let all = concat(&[first, rest]);
    assert_unique(&all);
    let want: HashSet<&String> = ids.iter().collect();
    assert_eq!(all.iter().collect::<HashSet<_>>(), want);
}

#[tokio::test]
async fn limits_from_1_to_100_are_accepted() {
    let s = new_user().await;
    insert_conversations_at_once(&s.user_id, 3, "few").await;
    let auth = Auth::Bearer(&s.access);
    let p = page_of(&list_conversations(auth, "limit=1").await);
    assert_eq!(p.items.len(), 1);
    assert!(p.has_more);
    let p = page_of(&list_conversations(auth, "limit=3").await);
    assert_eq!(p.items.len(), 3);
    assert!(
        !p.has_more,
        "exactly limit items left: has_more must be false"
    );
    let p = page_of(&list_conversations(auth, "limit=100").await);
    assert_eq!(p.items.len(), 3);
    assert!(!p.has_more);
}

#[tokio::test]
async fn invalid_limits_are_422() {
    let s = new_user().await;
    for bad in [
        "0",
        "101",
        "-1",
        "abc",
        "1.5",
        "1e1",
        "99999999999999999999",
    ] {
        let r = list_conversations(Auth::Bearer(&s.access), &format!("limit={bad}")).await;
        assert_eq!(r.status, 422, "limit={bad}: {}", r.text);
        assert_invalid_field(&r, "limit");
    }
}

#[tokio::test]
async fn malformed_cursors_are_400() {
    let s = new_user().await;
    insert_conversations_at_once(&s.user_id, 2, "c").await;
    for bad in [
        "garbage",
        "!!!",
        "aGVsbG8",
        "eyJ4IjoxfQ",
        "eyJ4IjoxfQ==",
        "%%%",
        &"A".repeat(2000),
    ] {
        let q = format!("cursor={}", query_encode(bad));
        let r = list_conversations(Auth::Bearer(&s.access), &q).await;
        assert_eq!(r.status, 400, "cursor={bad}: {}", r.text);
        r.assert_error(400, "invalid_request_error");
    }
}

#[tokio::test]
async fn ten_at_a_time_every_conversation_is_seen_once_in_order() {
    let s = new_user().await;
    let mut created = Vec::new();
    for i in 0..25 {
        created.push(create_titled(&s.access, &format!("conversation {i}")).await);
    }
    let pages = all_conversation_pages(Auth::Bearer(&s.access), 10, "").await;
    let sizes: Vec<usize> = pages.iter().map(|p| p.items.len()).collect();
    assert_eq!(sizes, vec![10, 10, 5]);
    let more: Vec<bool> = pages.iter().map(|p| p.has_more).collect();
    assert_eq!(more, vec![true, true, false]);
    let all = concat(&pages);
    assert_unique(&all);
    created.reverse();
    assert_eq!(all, created, "newest first");
    assert_eq!(all, db_conversation_order(&s.user_id).await);
}

#[tokio::test]
async fn conversations_created_while_paging_are_not_on_later_pages() {
    let s = new_user().await;
    let auth = Auth::Bearer(&s.access);
    for i in 0..25 {
        create_titled(&s.access, &format!("old {i}")).await;
    }
    let original = db_conversation_order(&s.user_id).await;
    assert_eq!(original.len(), 25);

    let mut new_ids = Vec::new();
    let mut pages: Vec<Page> = Vec::new();
    let mut query = "limit=10".to_string();
    loop {
        let p = page_of(&list_conversations(auth, &query).await);
        let more = p.has_more;
        let cursor = p.next_cursor.clone();
        pages.push(p);
        if !more {
            break;
        }
        assert!(pages.len() < 10, "pagination does not end");
        // Someone else (another tab) keeps writing between page fetches.
        new_ids.push(create_titled(&s.access, &format!("new {}", pages.len())).await);
        new_ids.push(create_titled(&s.access, &format!("newer {}", pages.len())).await);
        query = format!("limit=10&cursor={}", query_encode(&cursor.unwrap()));
    }
    let seen = concat(&pages);
    assert_unique(&seen);
    for id in &new_ids {
        assert!(
            !seen.contains(id),
            "a conversation made while paging showed up later: {id}"
        );
    }
    assert_eq!(
        seen, original,
        "an old conversation was skipped, repeated or moved"
    );

    // A fresh first page starts with the newest.
    let p = page_of(&list_conversations(auth, "limit=1").await);
    assert_eq!(p.ids, vec![new_ids.last().unwrap().clone()]);
}

#[tokio::test]
async fn conversations_sharing_an_updated_at_page_without_gaps() {
    let s = new_user().await;
    let tied = insert_conversations_at_once(&s.user_id, 7, "tied").await;
    let pages = all_conversation_pages(Auth::Bearer(&s.access), 2, "").await;
    let sizes: Vec<usize> = pages.iter().map(|p| p.items.len()).collect();
    assert_eq!(sizes, vec![2, 2, 2, 1]);
    let all = concat(&pages);
    assert_unique(&all);
    assert_eq!(
        all.iter().collect::<HashSet<_>>(),
        tied.iter().collect::<HashSet<_>>()
    );
    // Ties are ordered by id (either direction, but consistently).
    let mut asc = all.clone();
    asc.sort();
    let mut desc = asc.clone();
    desc.reverse();
    assert!(all == asc || all == desc, "ties not ordered by id: {all:?}");

    // A newer conversation goes before all of them.
    let newest = create_titled(&s.access, "newest").await;
    let p = page_of(&list_conversations(Auth::Bearer(&s.access), "limit=3").await);
    assert_eq!(p.ids[0], newest);
    assert_eq!(p.ids[1..], all[..2]);
}

#[tokio::test]
async fn adding_a_message_moves_the_conversation_to_the_top() {
    let s = new_user().await;
    let auth = Auth::Bearer(&s.access);
    let c1 = create_titled(&s.access, "one").await;
    let c2 = create_titled(&s.access, "two").await;
    let c3 = create_titled(&s.access, "three").await;
    let before = page_of(&list_conversations(auth, "").await);
    assert_eq!(before.ids, vec![c3.clone(), c2.clone(), c1.clone()]);
    let old_updated = before.items[2]["updated_at"].as_str().unwrap().to_string();
    let old_micros = db_updated_at_micros(&c1).await;

    tokio::time::sleep(Duration::from_millis(1100)).await;
    insert_message(&c1, &s.user_id, "user", "bump").await;

    let after = page_of(&list_conversations(auth, "").await);
    assert_eq!(after.ids, vec![c1.clone(), c3, c2]);
    let top = &after.items[0];
    assert_eq!(top["message_count"], 1, "{top}");
    let new_updated = top["updated_at"].as_str().unwrap();
    assert!(
        instant(new_updated) > instant(&old_updated),
        "updated_at {old_updated} -> {new_updated}"
    );
    assert!(db_updated_at_micros(&c1).await > old_micros);
    let got = get_conversation(auth, &c1).await;
    assert_eq!(got.json["updated_at"], top["updated_at"]);
}

#[tokio::test]
async fn a_real_patch_moves_the_conversation_to_the_top() {
    let s = new_user().await;
    let auth = Auth::Bearer(&s.access);
    let c1 = create_titled(&s.access, "one").await;
    let c2 = create_titled(&s.access, "two").await;
    let p = page_of(&list_conversations(auth, "").await);
    assert_eq!(p.ids, vec![c2.clone(), c1.clone()]);
    let r = patch_conversation(auth, &c1, &json!({"metadata": {"pinned": "yes"}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let p = page_of(&list_conversations(auth, "").await);
    assert_eq!(p.ids, vec![c1, c2]);
}

#[tokio::test]
async fn q_matches_titles_case_insensitively_as_a_substring() {
    let a = new_user().await;
    let b = new_user().await;
    let notes = create_titled(&a.access, "Quarterly PLANNING notes").await;
    let poker = create_titled(&a.access, "planning poker").await;
    let plan_b = create_titled(&a.access, "Plan B").await;
    create_titled(&a.access, "Lunch").await;
    create_conversation(&a.access, &json!({"system_prompt": "planning expert"})).await;
    create_conversation(&a.access, &json!({"metadata": {"topic": "planning"}})).await;
    create_titled(&b.access, "planning (b's)").await;

    assert_eq!(
        search(&a.access, "planning").await,
        vec![poker.clone(), notes.clone()]
    );
    assert_eq!(
        search(&a.access, "PlAnNiNg").await,
        vec![poker.clone(), notes.clone()]
    );
    assert_eq!(
        search(&a.access, "plan").await,
        vec![plan_b.clone(), poker.clone(), notes.clone()]
    );
    assert_eq!(search(&a.access, "ly plan").await, vec![notes]);
    assert_eq!(search(&a.access, "b").await, vec![plan_b]);
    assert!(search(&a.access, "nothing like this").await.is_empty());
    // The filtered list keeps the page envelope.
    let r = list_conversations(Auth::Bearer(&a.access), "q=zzz").await;
    let p = page_of(&r);
    assert!(p.items.is_empty() && !p.has_more, "{}", r.text);
}

#[tokio::test]
async fn q_treats_percent_and_underscore_literally() {
    let s = new_user().await;
    let percent = create_titled(&s.access, "100% sure").await;
    create_titled(&s.access, "100 sure").await;
    create_titled(&s.access, "1000 sure").await;
    let underscore = create_titled(&s.access, "a_b").await;
    create_titled(&s.access, "axb").await;
    create_titled(&s.access, "ab").await;

    assert_eq!(search(&s.access, "100%").await, vec![percent.clone()]);
    assert_eq!(search(&s.access, "%").await, vec![percent.clone()]);
    assert_eq!(search(&s.access, "0% s").await, vec![percent]);
    assert_eq!(search(&s.access, "a_b").await, vec![underscore.clone()]);
    assert_eq!(search(&s.access, "_").await, vec![underscore]);
    assert!(search(&s.access, "%%").await.is_empty());
    assert!(search(&s.access, "a__b").await.is_empty());
}

#[tokio::test]
async fn q_treats_backslash_and_quotes_literally() {
    let s = new_user().await;
    let path = create_titled(&s.access, "C:\\temp\\notes").await;
    create_titled(&s.access, "C:temp").await;
    let quoted = create_titled(&s.access, "it's \"quoted\"").await;
    create_titled(&s.access, "its quoted").await;

    assert_eq!(search(&s.access, "C:\\temp").await, vec![path.clone()]);
    assert_eq!(search(&s.access, "\\").await, vec![path]);
    assert_eq!(search(&s.access, "it's").await, vec![quoted.clone()]);
    assert_eq!(search(&s.access, "\"quoted\"").await, vec![quoted]);
    assert!(search(&s.access, "' OR '1'='1").await.is_empty());
}

#[tokio::test]
async fn q_results_page_like_the_full_list() {
    let s = new_user().await;
    let mut matching = Vec::new();
    for i in 0..5 {
        matching.push(create_titled(&s.access, &format!("Match {i}")).await);
        create_titled(&s.access, &format!("other {i}")).await;
    }
    let pages = all_conversation_pages(Auth::Bearer(&s.access), 2, "q=match").await;
    let sizes: Vec<usize> = pages.iter().map(|p| p.items.len()).collect();
    assert_eq!(sizes, vec![2, 2, 1]);
    let all = concat(&pages);
    matching.reverse();
    assert_eq!(all, matching);
}
