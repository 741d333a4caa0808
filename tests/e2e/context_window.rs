//! The context window: a conversation longer than the model's window sends
//! the system prompt, the newest whole exchanges that fit the budget
//! (`context_window − max_output_tokens − max(2%, 64)`, counted in the
//! model's encoding, `o200k_base` for the gpt-oss models, with 4 tokens per
//! message and 3 for the reply) and the new message; a fallback to a model
//! with a smaller window re-plans, reusing the counts already made; token
//! counts are stored so the history is not tokenised again; a message that
//! cannot fit at all is a 422 that stores nothing and calls no model. The
//! test worker shrinks two windows through `MODEL_LIMITS`.

use std::time::Duration;

use serde_json::{json, Value};
use tiktoken_rs::{cl100k_base_singleton, o200k_base_singleton};

use crate::support::{
    db, get, marker, messages_of, requests, script, send_message, send_ok, stream_message,
    stream_path, test_limits, user_with_conversation, Auth, Session, FALLBACK_MODEL,
    SMALL_WINDOW_MODEL,
};

const PER_MESSAGE: u32 = 4;
const PER_REPLY: u32 = 3;

/// Tokens in `o200k_base`, the encoding of the gpt-oss models these tests
/// converse with (and whose counts a fallback's re-plan reuses).
fn tokens(text: &str) -> u32 {
    u32::try_from(o200k_base_singleton().encode_ordinary(text).len()).expect("small")
}

/// The prompt budget of `model` as `/api/v1/models` states its limits.
async fn budget(model: &str) -> u32 {
    let r = get("/api/v1/models").await;
    let m = r.json["data"]
        .as_array()
        .and_then(|l| l.iter().find(|m| m["id"] == model))
        .unwrap_or_else(|| panic!("{model} listed: {}", r.text))
        .clone();
    let window = u32::try_from(m["context_window"].as_u64().expect("window")).expect("u32");
    let output = u32::try_from(m["max_output_tokens"].as_u64().expect("max")).expect("u32");
    assert_eq!(
        test_limits(model),
        Some((window, output)),
        "the listing shows the test worker's MODEL_LIMITS"
    );
    window - output - (window / 50).max(64)
}

/// `(role, text)` of every message a provider request carried, the system
/// prompt first as `("system", …)`, Gemini's `model` role as `assistant`.
fn sent_turns(request: &Value) -> Vec<(String, String)> {
    let body = &request["body"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    if let Some(messages) = body["messages"].as_array() {
        return messages
            .iter()
            .map(|m| (text(&m["role"]), text(&m["content"])))
            .collect();
    }
    let parts = |c: &Value| -> String {
        c["parts"]
            .as_array()
            .map(|ps| ps.iter().filter_map(|p| p["text"].as_str()).collect())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    if body["systemInstruction"].is_object() {
        out.push(("system".to_string(), parts(&body["systemInstruction"])));
    }
    for c in body["contents"].as_array().expect("contents") {
        let role = if c["role"] == "model" {
            "assistant"
        } else {
            "user"
        };
        out.push((role.to_string(), parts(c)));
    }
    out
}

/// Seeds `exchanges` complete user/assistant pairs of about 150 tokens per
/// message straight into the database; returns their texts, oldest first.
async fn seed(s: &Session, id: &str, exchanges: i32) -> Vec<(String, String)> {
    let client = db().await;
    client
        .execute(
            "INSERT INTO app.messages (conversation_id, user_id, role, content)
             SELECT $1::text::uuid, $2::text::uuid,
                    CASE WHEN g % 2 = 0 THEN 'user' ELSE 'assistant' END,
                    'turn ' || g || ': ' || repeat('the quick brown fox jumps over the lazy dog ', 15)
               FROM generate_series(0, $3::int * 2 - 1) AS g ORDER BY g",
            &[&id, &s.user_id, &exchanges],
        )
        .await
        .expect("seed the history");
    messages_of(&s.access, id)
        .await
        .iter()
        .map(|m| {
            let text = |k: &str| m[k].as_str().unwrap_or_default().to_string();
            (text("role"), text("content"))
        })
        .collect()
}

/// Asserts `sent` is the system prompt, a suffix of `history` that starts
/// with a user message, and the new message; that it fits `budget` and that
/// the next older exchange would not have. Returns the suffix's length.
fn assert_window(
    sent: &[(String, String)],
    system: &str,
    history: &[(String, String)],
    new: &str,
    budget: u32,
) -> usize {
    assert_eq!(sent[0], ("system".to_string(), system.to_string()));
    let last = sent.last().expect("turns");
    assert_eq!(last, &("user".to_string(), new.to_string()));
    let middle = &sent[1..sent.len() - 1];
    let kept = middle.len();
    assert!(kept > 0, "some history fits");
    assert!(kept < history.len(), "not all of it: {kept}");
    assert_eq!(
        middle,
        &history[history.len() - kept..],
        "a suffix, in order"
    );
    assert_eq!(middle[0].0, "user", "the window starts at a whole exchange");
    let cost = |turns: &[(String, String)]| -> u32 {
        turns.iter().map(|(_, t)| tokens(t) + PER_MESSAGE).sum()
    };
    let used = cost(sent) + PER_REPLY;
    assert!(used <= budget, "{used} tokens sent, budget {budget}");
    let older = &history[history.len() - kept - 2..history.len() - kept];
    assert!(
        used + cost(older) > budget,
        "the next older exchange would have fit: {used} + {}",
        cost(older)
    );
    kept
}

/// `content_tokens` of a conversation's messages, oldest first.
async fn stored_counts(id: &str) -> Vec<Option<i32>> {
    db().await
        .query(
            "SELECT content_tokens FROM app.messages WHERE conversation_id = $1::text::uuid ORDER BY seq",
            &[&id],
        )
        .await
        .expect("read counts")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The `desc` of the `context` Server-Timing entry: how many texts were tokenised.
fn counted(headers: &reqwest::header::HeaderMap) -> u32 {
    harness::server_timing::find(headers, "context")
        .and_then(|e| e.desc_count())
        .unwrap_or_else(|| panic!("a context timing with a count: {headers:?}"))
}

#[tokio::test]
async fn a_long_conversation_sends_the_newest_exchanges_that_fit_and_counts_once() {
    let system = "You are the window test's assistant.";
    let (s, id) =
        user_with_conversation(&json!({"system_prompt": system, "model": SMALL_WINDOW_MODEL}))
            .await;
    let history = seed(&s, &id, 40).await;
    let budget = budget(SMALL_WINDOW_MODEL).await;
    let mk = marker();
    script(&mk, Some("groq"), json!({"text": "Short answer."}), 1).await;
    let new = format!("And the newest question {mk}");
    let r = send_message(Auth::Bearer(&s.access), &id, &json!({ "content": new })).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let first_counted = counted(&r.headers);
    for entry in ["total", "ratelimit", "db", "context"] {
        assert!(r.server_timing(entry).is_some(), "{entry}: {:?}", r.headers);
    }

    let seen = requests(&mk).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["model"], SMALL_WINDOW_MODEL);
    let kept = assert_window(&sent_turns(&seen[0]), system, &history, &new, budget);
    assert!(
        first_counted as usize >= kept,
        "{first_counted} counted, {kept} sent"
    );

    // The counts are stored: every message sent, and the new one.
    let counts = stored_counts(&id).await;
    let n = history.len();
    for (i, (_, text)) in history.iter().enumerate().skip(n - kept) {
        assert_eq!(
            counts[i],
            Some(i32::try_from(tokens(text)).unwrap()),
            "message {i}"
        );
    }
    assert_eq!(counts[n], Some(i32::try_from(tokens(&new)).unwrap()));

    // The next send (streamed) tokenises only what is new: the previous
    // answer (Groq reported no separate answer count) and the new message.
    let mk2 = marker();
    script(&mk2, Some("groq"), json!({"text": "Another."}), 1).await;
    let next = format!("One more {mk2}");
    let r = stream_message(&s.access, &id, &json!({ "content": next })).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert!(r.ended && r.raw.contains("message_stop"), "{}", r.raw);
    assert_eq!(counted(&r.headers), 2, "counted again");
    // `message_stop` came after the answer was stored: it is there, in order.
    let stored = messages_of(&s.access, &id).await;
    let tail: Vec<(&str, &str)> = stored[stored.len() - 2..]
        .iter()
        .map(|m| (m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    assert_eq!(tail, [("user", next.as_str()), ("assistant", "Another.")]);
    let counts = stored_counts(&id).await;
    assert_eq!(
        counts[n + 1],
        Some(i32::try_from(tokens("Short answer.")).unwrap()),
        "the previous answer, counted once"
    );
    assert_eq!(counts[n + 2], Some(i32::try_from(tokens(&next)).unwrap()));
}

#[tokio::test]
async fn a_conversation_well_within_its_budget_is_not_tokenised() {
    let (s, id) = user_with_conversation(&json!({"model": SMALL_WINDOW_MODEL})).await;
    seed(&s, &id, 2).await;
    let mk = marker();
    script(&mk, Some("groq"), json!({"text": "Fine."}), 1).await;
    let r = send_message(
        Auth::Bearer(&s.access),
        &id,
        &json!({ "content": format!("Small talk {mk}") }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        counted(&r.headers),
        0,
        "the byte-length bound fits the budget"
    );
    assert_eq!(requests(&mk).await.len(), 1);
    let sent = sent_turns(&requests(&mk).await[0]);
    assert_eq!(
        sent.len(),
        5,
        "all four earlier messages and the new one: {sent:?}"
    );
    assert!(stored_counts(&id).await[..4].iter().all(Option::is_none));
}

#[tokio::test]
async fn a_fallback_the_message_cannot_fit_is_skipped() {
    let (s, id) = user_with_conversation(&json!({"model": SMALL_WINDOW_MODEL})).await;
    let mk = marker();
    // Inside Groq's 6,840-token budget, over Gemini's 2,920.
    let digits: Vec<String> = (0..2_000).map(|i| (i % 10).to_string()).collect();
    let long = format!("{mk} {}", digits.join(" "));
    let size = tokens(&long);
    let (small, large) = (
        budget(FALLBACK_MODEL).await,
        budget(SMALL_WINDOW_MODEL).await,
    );
    assert!(
        size > small && size < large,
        "{size} tokens, budgets {small} and {large}"
    );
    script(&mk, Some("groq"), json!({"status": 503}), 1).await;
    script(&mk, Some("gemini"), json!({"text": "never"}), 1).await;
    let r = send_message(Auth::Bearer(&s.access), &id, &json!({ "content": long })).await;
    r.assert_error(502, "overloaded_error");
    let seen = requests(&mk).await;
    assert_eq!(seen.len(), 1, "Gemini was not called: {seen:?}");
    assert_eq!(seen[0]["provider"], "groq");
    let stored = messages_of(&s.access, &id).await;
    assert_eq!(stored.len(), 1, "the user message stays: {stored:?}");
}

#[tokio::test]
async fn a_fallback_to_a_smaller_window_re_plans_and_stores_the_reported_size() {
    let system = "Fallback window test.";
    let (s, id) =
        user_with_conversation(&json!({"system_prompt": system, "model": SMALL_WINDOW_MODEL}))
            .await;
    let history = seed(&s, &id, 40).await;
    let mk = marker();
    script(&mk, Some("groq"), json!({"status": 503}), 1).await;
    script(
        &mk,
        Some("gemini"),
        json!({
            "text": "From the smaller window.",
            "usage": {"input_tokens": 2500, "output_tokens": 42, "thinking_tokens": 17}
        }),
        1,
    )
    .await;
    let new = format!("Which window? {mk}");
    let body = send_ok(&s.access, &id, &json!({ "content": new })).await;
    assert_eq!(body["assistant_message"]["model"], FALLBACK_MODEL, "{body}");
    assert_eq!(
        body["assistant_message"]["output_tokens"],
        42 + 17,
        "{body}"
    );

    let seen = requests(&mk).await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    let groq_budget = budget(SMALL_WINDOW_MODEL).await;
    let gemini_budget = budget(FALLBACK_MODEL).await;
    assert!(gemini_budget < groq_budget);
    let on_groq = assert_window(&sent_turns(&seen[0]), system, &history, &new, groq_budget);
    let on_gemini = assert_window(&sent_turns(&seen[1]), system, &history, &new, gemini_budget);
    assert!(on_gemini < on_groq, "re-planned: {on_gemini} < {on_groq}");

    // Gemini reports the answer's own size (candidatesTokenCount, without
    // the thoughts): that is what is stored.
    let counts = stored_counts(&id).await;
    assert_eq!(counts.last(), Some(&Some(42)));
}

#[tokio::test]
async fn a_message_that_cannot_fit_is_422_and_nothing_is_stored_or_sent() {
    let (s, id) =
        user_with_conversation(&json!({"system_prompt": "Short.", "model": SMALL_WINDOW_MODEL}))
            .await;
    let mk = marker();
    // About 20,000 tokens (a digit and a space are two) in under 32,000
    // characters: far over the 6,840-token budget.
    let digits: Vec<String> = (0..10_000).map(|i| (i % 10).to_string()).collect();
    let huge = format!("{mk} {}", digits.join(" "));
    assert!(huge.chars().count() <= 32_000 && tokens(&huge) > budget(SMALL_WINDOW_MODEL).await);
    for path in [crate::support::messages_path(&id), stream_path(&id)] {
        let r = crate::support::call(
            reqwest::Method::POST,
            &path,
            Auth::Bearer(&s.access),
            Some(&json!({ "content": huge })),
        )
        .await;
        r.assert_error(422, "invalid_request_error");
        let detail = &r.json["error"]["details"][0];
        assert_eq!(detail["field"], "content", "{}", r.text);
        let message = detail["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("too long") && message.contains(SMALL_WINDOW_MODEL),
            "{message}"
        );
    }
    // The overridden answer limit holds too.
    let r = send_message(
        Auth::Bearer(&s.access),
        &id,
        &json!({ "content": format!("short {mk}"), "max_tokens": 1_001 }),
    )
    .await;
    r.assert_error(422, "invalid_request_error");
    assert_eq!(
        r.json["error"]["details"][0]["field"], "max_tokens",
        "above the overridden answer limit: {}",
        r.text
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(requests(&mk).await.is_empty(), "no model was called");
    assert!(
        messages_of(&s.access, &id).await.is_empty(),
        "nothing stored"
    );
}

/// Texts on which a pre-tokeniser can go wrong: contractions in every case
/// (and `ſ`, which folds to `s`), whitespace that is and is not Unicode
/// `White_Space` (U+0085 is, U+FEFF is not), runs before words, line ends,
/// numbers in several scripts, marks, titlecase, several scripts, emoji.
const TRICKY: [&str; 10] = [
    "I'm sure it's what we'll do; they've said they'd 'RE-try' and WE'LL SEE'S DON'T 'ſ",
    "a  b   c\t\td \n\n e \r\n f\u{85}g\u{a0}h\u{3000}i\u{feff}j\u{2028}k   ",
    "1234567 12 3.14159 ١٢٣٤ ²³ Ⅻ !!!??? ...--- <|endoftext|> a/b/c //\n/\r\n",
    "ǅungla ǈ Ǉ ǅabc ABCdef abcDEF ÀÉÎõü e\u{301}te\u{301} n\u{303}",
    "数据库中的对话记录，以及模型的上下文窗口。",
    "Привет, мир! Ελληνικά. עברית. العربية. हिन्दी। 日本語。한국어.",
    "emoji 🎉🚀👩‍👩‍👧‍👦 🇫🇷 and trailing spaces   ",
    "fn main() {\n    println!(\"{}\", 1_000_000 + 0x1F);\n}\n",
    "x\n\n\n",
    "   \n",
];

/// The worker's counts (its tables from the static assets, text split by
/// the runtime's `RegExp`) are tiktoken's, in both encodings.
#[tokio::test]
async fn stored_counts_are_tiktokens_on_tricky_text_in_both_encodings() {
    for (model, provider) in [(SMALL_WINDOW_MODEL, "groq"), (FALLBACK_MODEL, "gemini")] {
        let reference = match model {
            SMALL_WINDOW_MODEL => o200k_base_singleton(),
            _ => cl100k_base_singleton(),
        };
        let (s, id) = user_with_conversation(&json!({ "model": model })).await;
        // Filler first, so that the history outgrows the window and is counted.
        seed(&s, &id, 20).await;
        let texts: Vec<String> = TRICKY.iter().map(|t| t.to_string()).collect();
        db().await
            .execute(
                "INSERT INTO app.messages (conversation_id, user_id, role, content)
                 SELECT $1::text::uuid, $2::text::uuid,
                        CASE WHEN i % 2 = 1 THEN 'user' ELSE 'assistant' END, t
                   FROM unnest($3::text[]) WITH ORDINALITY AS u(t, i) ORDER BY i",
                &[&id, &s.user_id, &texts],
            )
            .await
            .expect("seed the tricky texts");
        let mk = marker();
        script(&mk, Some(provider), json!({"text": "Noted."}), 1).await;
        let new = format!("{} {mk}", TRICKY[0]);
        let r = send_message(Auth::Bearer(&s.access), &id, &json!({ "content": new })).await;
        assert_eq!(r.status, 201, "{model}: {}", r.text);
        let counts = stored_counts(&id).await;
        let stored = messages_of(&s.access, &id).await;
        let n = texts.len() + 1;
        assert!(counts.len() > n, "{model}: {counts:?}");
        // The tricky texts and the new message are the newest: all counted.
        for (i, m) in stored[stored.len() - 1 - n..stored.len() - 1]
            .iter()
            .enumerate()
        {
            let text = m["content"].as_str().expect("content");
            let want = i32::try_from(reference.encode_ordinary(text).len()).unwrap();
            let at = counts.len() - 1 - n + i;
            assert_eq!(counts[at], Some(want), "{model} on {text:?}");
        }
    }
}
