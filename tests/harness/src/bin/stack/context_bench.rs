//! `npm run bench`, context window part: inside the worker, the tokeniser's
//! first use in an isolate against later uses, and what a send costs for
//! short and long conversations. The worker reports the planning time as
//! `Server-Timing: context;dur=…;desc="N counted"`; whole requests are
//! timed from the client.

use std::time::Instant;

use reqwest::Client;
use serde_json::json;

use crate::bench::json_of;

/// Tokens per seeded message: `repeat(..., 15)` of a 10-token sentence.
const SEED_SENTENCE: &str = "the quick brown fox jumps over the lazy dog ";
/// The Groq model the test worker's `MODEL_LIMITS` shrinks to 8,000 tokens.
const SMALL: &str = "openai/gpt-oss-120b";
/// The default model (131,072-token window).
const LARGE: &str = "openai/gpt-oss-20b";
/// Sends per measured series.
const SENDS: usize = 20;

/// What one send reported.
struct Sent {
    total_ms: f64,
    context_ms: f64,
    counted: u32,
    /// `Server-Timing: tokenizer`: the tokeniser's load, on the first send
    /// of an isolate that counts with it.
    tokenizer: Option<String>,
}

/// Runs the context benchmarks against `base`, seeding through `database_url`.
pub async fn run(base: &str, database_url: &str, access: &str) -> Result<(), String> {
    println!("\n==> context window inside the worker (Server-Timing: context)");
    let (db, conn) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let client = Client::new();
    let me = json_of(
        client
            .get(format!("{base}/api/v1/auth/me"))
            .bearer_auth(access),
    )
    .await?;
    let user = me["id"].as_str().ok_or("no user id")?.to_string();
    let new_conversation = |model: &'static str, messages: i32| {
        let (client, db, user) = (&client, &db, &user);
        async move {
            let c = json_of(
                client
                    .post(format!("{base}/api/v1/conversations"))
                    .bearer_auth(access)
                    .json(&json!({"title": "context bench", "model": model})),
            )
            .await?;
            let id = c["id"].as_str().ok_or("no conversation id")?.to_string();
            db.execute(
                "INSERT INTO app.messages (conversation_id, user_id, role, content)
                 SELECT $1::text::uuid, $2::text::uuid,
                        CASE WHEN g % 2 = 0 THEN 'user' ELSE 'assistant' END,
                        'turn ' || g || ': ' || repeat($4::text, 15)
                   FROM generate_series(0, $3::int - 1) AS g ORDER BY g",
                &[&id, user, &messages, &SEED_SENTENCE],
            )
            .await
            .map_err(|e| e.to_string())?;
            Ok::<String, String>(id)
        }
    };
    let send = |id: String| {
        let client = &client;
        async move {
            let start = Instant::now();
            let resp = client
                .post(format!("{base}/api/v1/conversations/{id}/messages"))
                .bearer_auth(access)
                .json(&json!({"content": "One more question about the fox?"}))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = resp.status();
            let (context_ms, counted) = context_timing(resp.headers());
            let tokenizer = harness::server_timing::find(resp.headers(), "tokenizer")
                .and_then(|e| Some(format!("{:.0} ms ({})", e.dur?, e.desc.unwrap_or_default())));
            let _ = resp.bytes().await;
            if status != 201 {
                return Err(format!("send failed with {status}"));
            }
            Ok::<Sent, String>(Sent {
                total_ms: start.elapsed().as_secs_f64() * 1000.0,
                context_ms,
                counted,
                tokenizer,
            })
        }
    };

    // The first send that must count, in this isolate: the tables are built.
    let first = send(new_conversation(SMALL, 80).await?).await?;
    println!(
        "first counting send in the isolate (cold): context {:.0} ms for {} texts \
         (of which loading the tokeniser: {}), request {:.0} ms",
        first.context_ms,
        first.counted,
        first.tokenizer.as_deref().unwrap_or("not reported"),
        first.total_ms
    );
    let mut warm = Vec::new();
    for _ in 0..5 {
        warm.push(send(new_conversation(SMALL, 80).await?).await?);
    }
    let texts: u32 = warm.iter().map(|s| s.counted).sum();
    let ms: f64 = warm.iter().map(|s| s.context_ms).sum();
    // Each seeded text is 154 tokens; the new message 8.
    println!(
        "later counting sends (warm), 5 conversations: context {:.1} ms mean for {:.0} texts \
         (~{:.0} tokens) = {:.2} ms per 1,000 tokens",
        ms / 5.0,
        f64::from(texts) / 5.0,
        f64::from(texts) / 5.0 * 154.0,
        ms / (f64::from(texts) * 154.0 / 1000.0)
    );

    for (model, label) in [(LARGE, "131k window"), (SMALL, "8k window, counts stored")] {
        for turns in [10, 200] {
            let id = new_conversation(model, turns).await?;
            let _ = send(id.clone()).await?;
            let mut total = Vec::new();
            let mut context = Vec::new();
            let mut counted = 0;
            for _ in 0..SENDS {
                let s = send(id.clone()).await?;
                total.push(s.total_ms);
                context.push(s.context_ms);
                counted += s.counted;
            }
            total.sort_by(f64::total_cmp);
            context.sort_by(f64::total_cmp);
            println!(
                "{turns:>3}-turn conversation, {label}: send median {:.1} ms (p90 {:.1}), \
                 context median {:.0} ms (max {:.0}), {:.1} texts counted per send",
                total[SENDS / 2],
                total[SENDS * 9 / 10],
                context[SENDS / 2],
                context[SENDS - 1],
                f64::from(counted) / SENDS as f64
            );
        }
    }
    Ok(())
}

/// `(dur, count)` from `Server-Timing: context;dur=N;desc="M counted"`.
fn context_timing(headers: &reqwest::header::HeaderMap) -> (f64, u32) {
    let entry = harness::server_timing::find(headers, "context");
    let dur = entry.as_ref().and_then(|e| e.dur).unwrap_or(0.0);
    let counted = entry.and_then(|e| e.desc_count()).unwrap_or(0);
    (dur, counted)
}
