//! The refresh grace window: the same rotation repeated within seconds (two
//! tabs refreshing with one token at once, a retry after a lost response)
//! answers the same new refresh token instead of counting as reuse and
//! revoking the login; reuse after the window still revokes it (see
//! `auth::reusing_a_refresh_token_revokes_the_whole_family`). Runs in the
//! PostgreSQL phase.

use crate::support::{assert_token_pair, me, new_user, refresh, refresh_session, Auth};

#[tokio::test]
async fn two_concurrent_refreshes_with_one_token_get_the_same_new_token() {
    let s = new_user().await;
    let (a, b) = tokio::join!(refresh(&s.refresh), refresh(&s.refresh));
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(b.status, 200, "{}", b.text);
    assert_token_pair(&a, &s.email);
    assert_token_pair(&b, &s.email);
    assert_eq!(
        a.json["refresh_token"], b.json["refresh_token"],
        "the same new refresh token"
    );
    for r in [&a, &b] {
        let access = r.json["access_token"].as_str().unwrap_or_default();
        assert_eq!(me(Auth::Bearer(access)).await.status, 200);
    }
    // The login lives on: the new token rotates in turn.
    let next = a.json["refresh_token"].as_str().unwrap_or_default();
    let r = refresh(next).await;
    assert_eq!(r.status, 200, "not revoked: {}", r.text);
}

#[tokio::test]
async fn a_retry_after_a_lost_response_gets_the_same_new_token() {
    let s = new_user().await;
    let first = refresh_session(&s.refresh).await;
    let retry = refresh(&s.refresh).await;
    assert_eq!(retry.status, 200, "{}", retry.text);
    assert_eq!(retry.json["refresh_token"], first.refresh.as_str());
    let r = refresh(&first.refresh).await;
    assert_eq!(r.status, 200, "the login lives on: {}", r.text);
}

#[tokio::test]
async fn a_token_whose_successor_was_used_is_reuse_even_within_the_window() {
    let s = new_user().await;
    let second = refresh_session(&s.refresh).await;
    let third = refresh_session(&second.refresh).await;
    refresh(&s.refresh)
        .await
        .assert_error(401, "authentication_error");
    refresh(&third.refresh)
        .await
        .assert_error(401, "authentication_error");
}
