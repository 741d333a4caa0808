//! Accounts, refresh tokens and API keys.

use serde_json::json;

use super::{nobody, Db};

const LATER: &str = "2099-01-01T00:00:00Z";

fn refresh(family: &str, hash: &str, expires: &str) -> serde_json::Value {
    json!({"family_id": family, "token_hash": hash, "expires_at": expires})
}

const FAMILY: &str = "11111111-1111-4111-8111-111111111111";

#[tokio::test]
async fn register_login_and_password_upgrade() {
    let db = Db::new().await;
    let out = db
        .call(
            "register",
            json!({"email": "a@example.com", "password_hash": "h1",
                   "refresh": refresh(FAMILY, "r1", LATER)}),
        )
        .await;
    assert_eq!(out["outcome"], "created");
    assert_eq!(out["user"]["email"], "a@example.com");
    assert!(out["user"]["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(out["user"].get("password_hash").is_none(), "{out}");
    let uid = out["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        db.count("SELECT count(*) FROM app.refresh_tokens WHERE token_hash = 'r1'")
            .await,
        1,
        "the first refresh token is stored with the account"
    );
    let again = db
        .call(
            "register",
            json!({"email": "a@example.com", "password_hash": "h"}),
        )
        .await;
    assert_eq!(again, json!({"outcome": "conflict"}));

    let login = db
        .call(
            "login",
            json!({"email": "a@example.com", "refresh": refresh(FAMILY, "r2", LATER)}),
        )
        .await;
    assert_eq!(login["outcome"], "found");
    assert_eq!(login["password_hash"], "h1");
    assert_eq!(login["user"]["id"], uid.as_str());
    let missing = db
        .call(
            "login",
            json!({"email": "b@example.com", "refresh": refresh(FAMILY, "r3", LATER)}),
        )
        .await;
    assert_eq!(missing, json!({"outcome": "not_found"}));
    assert_eq!(
        db.count("SELECT count(*) FROM app.refresh_tokens WHERE token_hash = 'r3'")
            .await,
        0
    );
    // A login whose password did not verify revokes the token it stored.
    let revoked = db.call("revoke_refresh", json!({"token_hash": "r2"})).await;
    assert_eq!(revoked, json!({"outcome": "revoked", "count": 1}));
    let rotated = db
        .call(
            "refresh",
            json!({"token_hash": "r2", "new_token_hash": "r4", "new_expires_at": LATER}),
        )
        .await;
    assert_eq!(rotated, json!({"outcome": "invalid"}));

    let up = db
        .call(
            "set_password_hash",
            json!({"user_id": uid, "password_hash": "h2"}),
        )
        .await;
    assert_eq!(up, json!({"outcome": "updated"}));
    let login = db.call("login", json!({"email": "a@example.com"})).await;
    assert_eq!(login["password_hash"], "h2");
    let gone = db
        .call(
            "set_password_hash",
            json!({"user_id": nobody(), "password_hash": "h"}),
        )
        .await;
    assert_eq!(gone, json!({"outcome": "not_found"}));

    let me = db.call("me", json!({"user_id": uid})).await;
    assert_eq!(me["outcome"], "found");
    assert_eq!(me["user"]["email"], "a@example.com");
    let me = db.call("me", json!({"user_id": nobody()})).await;
    assert_eq!(me, json!({"outcome": "unauthenticated"}));
    db.done().await;
}

#[tokio::test]
async fn refresh_rotates_detects_reuse_and_logout_revokes() {
    let db = Db::new().await;
    let out = db
        .call(
            "register",
            json!({"email": "a@example.com", "password_hash": "h",
                   "refresh": refresh(FAMILY, "r1", LATER)}),
        )
        .await;
    let uid = out["user"]["id"].as_str().unwrap().to_string();
    let rotate = |old: &str, new: &str| json!({"token_hash": old, "new_token_hash": new, "new_expires_at": LATER});
    let first = db.call("refresh", rotate("r1", "r2")).await;
    assert_eq!(first["outcome"], "rotated");
    assert_eq!(first["user"]["id"], uid.as_str());
    // r1 again: reuse, and the whole family (r2 included) is revoked.
    assert_eq!(
        db.call("refresh", rotate("r1", "r3")).await,
        json!({"outcome": "reused"})
    );
    assert_eq!(
        db.call("refresh", rotate("r2", "r4")).await,
        json!({"outcome": "invalid"})
    );
    assert_eq!(
        db.call("refresh", rotate("unknown", "r5")).await,
        json!({"outcome": "invalid"})
    );

    // An expired token is invalid.
    let other = "22222222-2222-4222-8222-222222222222";
    db.call(
        "login",
        json!({"email": "a@example.com", "refresh": refresh(other, "old", "2000-01-01T00:00:00Z")}),
    )
    .await;
    assert_eq!(
        db.call("refresh", rotate("old", "r6")).await,
        json!({"outcome": "invalid"})
    );

    // Logout revokes the family of one of the user's own tokens only.
    let third = "33333333-3333-4333-8333-333333333333";
    db.call(
        "login",
        json!({"email": "a@example.com", "refresh": refresh(third, "s1", LATER)}),
    )
    .await;
    let theirs = db
        .call("logout", json!({"user_id": nobody(), "token_hash": "s1"}))
        .await;
    assert_eq!(theirs, json!({"outcome": "revoked", "count": 0}));
    let mine = db
        .call("logout", json!({"user_id": uid, "token_hash": "s1"}))
        .await;
    assert_eq!(mine, json!({"outcome": "revoked", "count": 1}));
    assert_eq!(
        db.call("refresh", rotate("s1", "s2")).await,
        json!({"outcome": "invalid"})
    );
    db.done().await;
}

#[tokio::test]
async fn api_keys_are_created_listed_found_and_deleted() {
    let db = Db::new().await;
    let uid = db.user("a@example.com").await;
    let other = db.user("b@example.com").await;
    let made = db
        .call(
            "create_api_key",
            json!({"user_id": uid, "name": "ci", "prefix": "cak_abcd", "key_hash": "kh1"}),
        )
        .await;
    assert_eq!(made["outcome"], "created");
    assert_eq!(made["key"]["name"], "ci");
    assert_eq!(made["key"]["last_used_at"], serde_json::Value::Null);
    assert!(made["key"].get("key_hash").is_none());
    let id = made["key"]["id"].as_str().unwrap().to_string();
    let nokey = db
        .call(
            "create_api_key",
            json!({"user_id": nobody(), "name": "x", "prefix": "cak_x", "key_hash": "kh2"}),
        )
        .await;
    assert_eq!(nokey, json!({"outcome": "unauthenticated"}));

    let owner = db.call("key_owner", json!({"key_hash": "kh1"})).await;
    assert_eq!(owner, json!({"outcome": "found", "user_id": uid}));
    let listed = db.call("list_api_keys", json!({"user_id": uid})).await;
    assert_eq!(listed["outcome"], "ok");
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1);
    assert!(
        listed["keys"][0]["last_used_at"].is_string(),
        "the lookup recorded the use: {listed}"
    );
    let none = db.call("list_api_keys", json!({"user_id": other})).await;
    assert_eq!(none, json!({"outcome": "ok", "keys": []}));
    assert_eq!(
        db.call("key_owner", json!({"key_hash": "nope"})).await,
        json!({"outcome": "not_found"})
    );

    let not_theirs = db
        .call("delete_api_key", json!({"user_id": other, "id": id}))
        .await;
    assert_eq!(not_theirs, json!({"outcome": "not_found"}));
    let deleted = db
        .call("delete_api_key", json!({"user_id": uid, "id": id}))
        .await;
    assert_eq!(deleted, json!({"outcome": "deleted"}));
    assert_eq!(
        db.call("key_owner", json!({"key_hash": "kh1"})).await,
        json!({"outcome": "not_found"})
    );
    db.done().await;
}
