//! How passwords are stored: PHC strings at the default iteration count,
//! upgraded at login when an older count is found.

use conversation_api::auth::password;
use serde_json::json;

use crate::support::{db, login, post_json, register, unique_email};

const PASSWORD: &str = "rehash-me-42";

async fn stored_hash(email: &str) -> String {
    db().await
        .query_one(
            "SELECT password_hash FROM app.users WHERE email = $1",
            &[&email],
        )
        .await
        .expect("user row")
        .get(0)
}

/// Replaces the user's hash with one of 1,000 iterations (salt bytes `salt`);
/// returns it.
async fn downgrade(email: &str, salt: u8) -> String {
    let old = password::hash(PASSWORD, &[salt; password::SALT_LEN], 1_000);
    db().await
        .execute(
            "UPDATE app.users SET password_hash = $1 WHERE email = $2",
            &[&old, &email],
        )
        .await
        .expect("downgrade the hash");
    old
}

#[tokio::test]
async fn passwords_are_stored_as_pbkdf2_phc_strings_never_in_clear() {
    let email = unique_email("phc");
    register(&email, PASSWORD).await;
    let hash = stored_hash(&email).await;
    assert!(hash.starts_with("$pbkdf2-sha256$i=100000$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
}

#[tokio::test]
async fn login_upgrades_a_hash_with_an_older_iteration_count() {
    let email = unique_email("rehash");
    register(&email, PASSWORD).await;
    let old = downgrade(&email, 9).await;

    let r = login(&email, PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let upgraded = stored_hash(&email).await;
    assert!(
        upgraded.starts_with("$pbkdf2-sha256$i=100000$"),
        "{upgraded}"
    );
    assert_ne!(upgraded, old);

    assert_eq!(
        login(&email, PASSWORD).await.status,
        200,
        "still the same password"
    );
    assert_eq!(login(&email, "wrong-pass-1").await.status, 401);
}

#[tokio::test]
async fn a_wrong_password_does_not_touch_an_old_hash() {
    let email = unique_email("norehash");
    register(&email, PASSWORD).await;
    let old = downgrade(&email, 3).await;
    let r = post_json(
        "/api/v1/auth/login",
        &json!({"email": email, "password": "not-it-123"}),
        None,
    )
    .await;
    r.assert_error(401, "authentication_error");
    assert_eq!(stored_hash(&email).await, old);
}

#[tokio::test]
async fn tokens_and_keys_are_stored_only_as_hashes() {
    let email = unique_email("hashes");
    let s = register(&email, PASSWORD).await;
    let key = crate::support::create_api_key(&s.access, "stored").await;
    let c = db().await;
    let refresh_rows = c
        .query(
            "SELECT token_hash FROM app.refresh_tokens WHERE user_id = $1::text::uuid",
            &[&s.user_id],
        )
        .await
        .unwrap();
    assert!(!refresh_rows.is_empty());
    for row in refresh_rows {
        let h: String = row.get(0);
        assert_eq!(h.len(), 64);
        assert_ne!(h, s.refresh);
    }
    let key_hash: String = c
        .query_one(
            "SELECT key_hash FROM app.api_keys WHERE user_id = $1::text::uuid",
            &[&s.user_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(key_hash.len(), 64);
    assert!(!key_hash.contains(&key.key[4..]));
}
