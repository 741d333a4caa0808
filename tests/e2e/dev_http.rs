//! `npm run dev` over Supabase's HTTP API: the dev command's own start-up
//! (`SUPABASE_URL` and the secret key set, no `DATABASE_URL`) pointed at
//! the local Data API, the provider stand-in it starts without provider
//! keys. Runs only in its own phase.

use serde_json::json;

use crate::support::{
    create_conversation, db, db_message_count, get, id_of, new_user, stream_message,
};

#[tokio::test]
async fn dev_over_http_serves_and_stores_in_the_database() {
    let r = get("/health?deep=1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "ok");
    assert_eq!(r.json["database"], "ok");

    let user = new_user().await;
    let conversation = create_conversation(&user.access, &json!({"title": "dev over HTTP"})).await;
    let id = id_of(&conversation);
    let reply = stream_message(&user.access, &id, &json!({"content": "hello from dev"})).await;
    reply.assert_complete();
    assert!(!reply.text().is_empty(), "no answer text: {}", reply.dump());

    // What the API said it stored is in the PostgreSQL database behind the
    // Data API: the user, the conversation and both turns.
    let client = db().await;
    let row = client
        .query_one(
            "SELECT u.email, c.title FROM app.conversations c JOIN app.users u ON u.id = c.user_id WHERE c.id = $1::text::uuid",
            &[&id],
        )
        .await
        .expect("the conversation and its owner are in the database");
    assert_eq!(row.get::<_, String>(0), user.email);
    assert_eq!(row.get::<_, String>(1), "dev over HTTP");
    assert_eq!(db_message_count(&id).await, 2);
    let stored: String = client
        .query_one(
            "SELECT content FROM app.messages WHERE conversation_id = $1::text::uuid AND role = 'assistant'",
            &[&id],
        )
        .await
        .expect("the answer is in the database")
        .get(0);
    assert_eq!(stored, reply.text());
}
