//! The load run behind the `load::` end-to-end test and `stack bench-load`:
//! many users streaming answers at the same moment while others read, then
//! what every answer left behind checked through the API.
//!
//! [`run`] registers the users, gives each its conversations, scripts the
//! provider stand-in (one answer of [`Plan::words`] words, one word every
//! [`Plan::word_delay_ms`]), starts every streamed send at once and keeps
//! [`Plan::readers`] clients listing conversations and messages until the
//! last stream ends. It then checks that every stream ended with
//! `message_stop` after the whole answer, that every conversation holds its
//! question and its answer exactly once, `complete`, and that each user's
//! `GET /usage/stats` totals equal the sums over that user's messages.
//! Anything else (a 5xx, any other unexpected status, a lost connection) is
//! a [`Report::problems`] entry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Users registered for the run.
    pub users: usize,
    /// Streamed sends started at once, spread evenly over the users, each
    /// in its own conversation.
    pub sends: usize,
    /// Words in every answer (one upstream chunk each).
    pub words: usize,
    /// The stand-in's pause before each word but the first.
    pub word_delay_ms: u64,
    /// Clients reading (`GET` conversations and messages) during the sends.
    pub readers: usize,
}

impl Default for Plan {
    /// 200 streamed sends of 200-word answers at 20 ms a word, over 50
    /// users, with 10 readers.
    fn default() -> Self {
        Plan {
            users: 50,
            sends: 200,
            words: 200,
            word_delay_ms: 20,
            readers: 10,
        }
    }
}

/// What a run measured and found.
#[derive(Debug, Default)]
pub struct Report {
    /// From the first send to the end of the last stream.
    pub burst: Duration,
    /// Streams that ended with `message_stop`.
    pub answers: usize,
    /// Words streamed (`text_delta` text, counted by whitespace).
    pub words: usize,
    /// Time to the first `text_delta` of every stream that had one, sorted (ms).
    pub ttft_ms: Vec<f64>,
    /// Reads done during the burst.
    pub reads: usize,
    /// Their latencies, sorted (ms).
    pub read_ms: Vec<f64>,
    /// Responses with a 5xx status (streams and reads).
    pub server_errors: usize,
    /// Everything that went wrong; empty on success.
    pub problems: Vec<String>,
    /// The whole run: registering, the burst and the checks.
    pub total: Duration,
}

impl Report {
    /// Answers per second over the burst.
    pub fn answers_per_s(&self) -> f64 {
        self.answers as f64 / self.burst.as_secs_f64().max(1e-9)
    }

    /// Streamed words per second over the burst.
    pub fn words_per_s(&self) -> f64 {
        self.words as f64 / self.burst.as_secs_f64().max(1e-9)
    }

    /// The figures as printed lines.
    pub fn lines(&self, plan: &Plan) -> Vec<String> {
        vec![
            format!(
                "{} streamed sends ({} words at {} ms a word) over {} users, {} readers: \
                 burst {:.1} s, {} answers, {:.1} answers/s, {:.0} words/s",
                plan.sends,
                plan.words,
                plan.word_delay_ms,
                plan.users,
                plan.readers,
                self.burst.as_secs_f64(),
                self.answers,
                self.answers_per_s(),
                self.words_per_s(),
            ),
            format!(
                "time to first token: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                percentile(&self.ttft_ms, 50),
                percentile(&self.ttft_ms, 99),
                self.ttft_ms.last().copied().unwrap_or(0.0),
            ),
            format!(
                "reads during the burst: {} (p50 {:.0} ms, p99 {:.0} ms); 5xx: {}; problems: {}; \
                 whole run {:.1} s",
                self.reads,
                percentile(&self.read_ms, 50),
                percentile(&self.read_ms, 99),
                self.server_errors,
                self.problems.len(),
                self.total.as_secs_f64(),
            ),
        ]
    }
}

/// The `p`th percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[f64], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = (sorted.len() * p).div_ceil(100).saturating_sub(1);
    sorted[i.min(sorted.len() - 1)]
}

/// One user's access token and conversations.
struct User {
    access: String,
    conversations: Vec<String>,
}

/// How one streamed send went.
#[derive(Default)]
struct Streamed {
    status: u16,
    ttft_ms: Option<f64>,
    text: String,
    stopped: bool,
    error: Option<String>,
}

/// Runs `plan` against the worker at `base` with the stand-in at
/// `standin` (its control API). Setup failures are errors; what the load
/// itself broke is in [`Report::problems`].
pub async fn run(base: &str, standin: &str, plan: &Plan) -> Result<Report, String> {
    let started = Instant::now();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.sends + plan.readers)
        .build()
        .map_err(|e| e.to_string())?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let nonce = format!("{}-{nanos}", std::process::id());
    let marker = format!("load-{nonce}");
    let answer: Vec<String> = (0..plan.words).map(|i| format!("word{i} ")).collect();
    let script = json!({
        "contains": marker,
        "times": 0,
        "reply": {"chunks": answer, "chunk_delay_ms": plan.word_delay_ms},
    });
    let r = client
        .post(format!(
            "{}/_control/scripts",
            standin.trim_end_matches('/')
        ))
        .json(&script)
        .send()
        .await
        .map_err(|e| format!("stand-in: {e}"))?;
    if !r.status().is_success() {
        return Err(format!("stand-in refused the script: {}", r.status()));
    }
    let answer = answer.concat();

    let users = setup_users(&client, base, plan, &nonce).await?;
    let pairs: Vec<(String, String)> = users
        .iter()
        .flat_map(|u| {
            u.conversations
                .iter()
                .map(move |c| (u.access.clone(), c.clone()))
        })
        .take(plan.sends)
        .collect();

    let mut report = Report::default();
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(Mutex::new(Reads::default()));
    let readers: Vec<_> = (0..plan.readers)
        .map(|r| {
            let (client, base, done, reads) = (
                client.clone(),
                base.to_string(),
                done.clone(),
                reads.clone(),
            );
            // Each reader starts at its own place in the list.
            let mut targets = pairs.clone();
            targets.rotate_left(r * pairs.len() / plan.readers);
            tokio::spawn(read_loop(client, base, targets, done, reads))
        })
        .collect();

    let burst = Instant::now();
    let sends: Vec<_> = pairs
        .iter()
        .cloned()
        .enumerate()
        .map(|(k, (access, conversation))| {
            let client = client.clone();
            let url = format!("{base}/api/v1/conversations/{conversation}/messages/stream");
            let content = format!("{marker} send {k}");
            tokio::spawn(async move {
                let streamed = stream_one(&client, &url, &access, &content).await;
                (k, conversation, access, content, streamed)
            })
        })
        .collect();
    let mut results = Vec::with_capacity(sends.len());
    for s in sends {
        results.push(s.await.map_err(|e| e.to_string())?);
    }
    report.burst = burst.elapsed();
    done.store(true, Ordering::SeqCst);
    for r in readers {
        r.await.map_err(|e| e.to_string())?;
    }
    {
        let mut reads = reads.lock().map_err(|e| e.to_string())?;
        report.reads = reads.latencies.len();
        reads.latencies.sort_by(f64::total_cmp);
        report.read_ms = std::mem::take(&mut reads.latencies);
        report.server_errors += reads.server_errors;
        report.problems.append(&mut reads.problems);
    }

    for (k, _, _, _, s) in &results {
        if s.status >= 500 {
            report.server_errors += 1;
        }
        if let Some(e) = &s.error {
            report.problems.push(format!("send {k}: {e}"));
            continue;
        }
        if !s.stopped {
            report
                .problems
                .push(format!("send {k}: the stream ended without message_stop"));
            continue;
        }
        if s.text != answer {
            report.problems.push(format!(
                "send {k}: streamed {} words, not the {} answered",
                s.text.split_whitespace().count(),
                plan.words
            ));
        }
        report.answers += 1;
        report.words += s.text.split_whitespace().count();
        if let Some(t) = s.ttft_ms {
            report.ttft_ms.push(t);
        }
    }
    report.ttft_ms.sort_by(f64::total_cmp);

    let mut sent: Vec<(String, String)> = results
        .iter()
        .map(|(_, conversation, _, content, _)| (conversation.clone(), content.clone()))
        .collect();
    sent.sort();
    for user in &users {
        check_user(&client, base, user, &sent, &answer, &mut report).await;
    }
    report.total = started.elapsed();
    Ok(report)
}

/// Registers the users (a few at a time: each is a password hash) and
/// makes their titled conversations (no title request adds to the load).
async fn setup_users(
    client: &reqwest::Client,
    base: &str,
    plan: &Plan,
    nonce: &str,
) -> Result<Vec<User>, String> {
    let per_user = plan.sends.div_ceil(plan.users.max(1));
    let mut users = Vec::with_capacity(plan.users);
    for batch in (0..plan.users).collect::<Vec<_>>().chunks(5) {
        let made = futures_util::future::join_all(batch.iter().map(|i| {
            let client = client.clone();
            let base = base.to_string();
            let email = format!("load-{i}-{nonce}@example.com");
            async move {
                let reg = json_ok(
                    client
                        .post(format!("{base}/api/v1/auth/register"))
                        .json(&json!({"email": email, "password": "load-password-1"})),
                    201,
                )
                .await?;
                let access = reg["access_token"]
                    .as_str()
                    .ok_or_else(|| format!("register gave no access token: {reg}"))?
                    .to_string();
                let mut conversations = Vec::with_capacity(per_user);
                for c in 0..per_user {
                    let conv = json_ok(
                        client
                            .post(format!("{base}/api/v1/conversations"))
                            .bearer_auth(&access)
                            .json(&json!({"title": format!("load {i}.{c}")})),
                        201,
                    )
                    .await?;
                    conversations.push(
                        conv["id"]
                            .as_str()
                            .ok_or_else(|| format!("no conversation id: {conv}"))?
                            .to_string(),
                    );
                }
                Ok::<User, String>(User {
                    access,
                    conversations,
                })
            }
        }))
        .await;
        for u in made {
            users.push(u?);
        }
    }
    Ok(users)
}

/// Sends a request and reads its JSON body, requiring `status`.
async fn json_ok(req: reqwest::RequestBuilder, status: u16) -> Result<Value, String> {
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let got = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    if got != status {
        return Err(format!("expected {status}, got {got}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
}

/// Streams one send to its end, noting when its first `text_delta`
/// arrived (from the request's start), the text and how the stream ended.
async fn stream_one(client: &reqwest::Client, url: &str, access: &str, content: &str) -> Streamed {
    let mut out = Streamed::default();
    let started = Instant::now();
    let resp = client
        .post(url)
        .bearer_auth(access)
        .header("Accept", "text/event-stream")
        .json(&json!({ "content": content }))
        .send()
        .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            out.error = Some(format!("no response: {e}"));
            return out;
        }
    };
    out.status = resp.status().as_u16();
    if out.status != 200 {
        let body = resp.text().await.unwrap_or_default();
        out.error = Some(format!("status {}: {body}", out.status));
        return out;
    }
    let mut body = resp.bytes_stream();
    let mut buffer = String::new();
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                out.error = Some(format!("the stream broke: {e}"));
                return out;
            }
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let (event, data) = parse_frame(&frame);
            match event.as_str() {
                "content_block_delta" if data["delta"]["type"] == "text_delta" => {
                    if out.ttft_ms.is_none() {
                        out.ttft_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
                    }
                    out.text
                        .push_str(data["delta"]["text"].as_str().unwrap_or_default());
                }
                "message_stop" => out.stopped = true,
                "error" => {
                    out.error = Some(format!("error event: {data}"));
                }
                _ => {}
            }
        }
    }
    out
}

/// The event name and JSON data of one Server-Sent Events frame.
fn parse_frame(frame: &str) -> (String, Value) {
    let mut event = "message".to_string();
    let mut data = String::new();
    for line in frame.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            event = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    (event, serde_json::from_str(&data).unwrap_or(Value::Null))
}

/// What the readers saw.
#[derive(Default)]
struct Reads {
    latencies: Vec<f64>,
    server_errors: usize,
    problems: Vec<String>,
}

/// Lists conversations and messages of `targets` in turn until `done`.
async fn read_loop(
    client: reqwest::Client,
    base: String,
    targets: Vec<(String, String)>,
    done: Arc<AtomicBool>,
    reads: Arc<Mutex<Reads>>,
) {
    let mut i = 0;
    while !done.load(Ordering::SeqCst) && !targets.is_empty() {
        let (access, conversation) = &targets[i % targets.len()];
        let url = if i % 2 == 0 {
            format!("{base}/api/v1/conversations?limit=20")
        } else {
            format!("{base}/api/v1/conversations/{conversation}/messages?limit=100")
        };
        i += 1;
        let started = Instant::now();
        let result = client.get(&url).bearer_auth(access).send().await;
        let outcome = match result {
            Ok(r) => {
                let status = r.status().as_u16();
                let body = r.text().await;
                match (status, body) {
                    (200, Ok(_)) => Ok(()),
                    (_, Ok(body)) => Err((status, format!("GET {url}: {status}: {body}"))),
                    (_, Err(e)) => Err((status, format!("GET {url}: body lost: {e}"))),
                }
            }
            Err(e) => Err((0, format!("GET {url}: no response: {e}"))),
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let Ok(mut reads) = reads.lock() else {
            return;
        };
        reads.latencies.push(ms);
        if let Err((status, problem)) = outcome {
            if status >= 500 {
                reads.server_errors += 1;
            }
            reads.problems.push(problem);
        }
    }
}

/// Checks one user's conversations (each its question and its complete
/// answer, once) and usage totals (equal to the sums over the messages).
async fn check_user(
    client: &reqwest::Client,
    base: &str,
    user: &User,
    sent: &[(String, String)],
    answer: &str,
    report: &mut Report,
) {
    let mut sums = (0u64, 0u64, 0f64, 0u64);
    for conversation in &user.conversations {
        let Some(content) = sent
            .binary_search_by(|(c, _)| c.as_str().cmp(conversation))
            .ok()
            .map(|i| &sent[i].1)
        else {
            continue;
        };
        let listed = json_ok(
            client
                .get(format!(
                    "{base}/api/v1/conversations/{conversation}/messages?limit=100"
                ))
                .bearer_auth(&user.access),
            200,
        )
        .await;
        let messages = match listed {
            Ok(page) => page["data"].as_array().cloned().unwrap_or_default(),
            Err(e) => {
                report
                    .problems
                    .push(format!("messages of {conversation}: {e}"));
                continue;
            }
        };
        let shape: Vec<(&str, &str, &str)> = messages
            .iter()
            .map(|m| {
                (
                    m["role"].as_str().unwrap_or_default(),
                    m["status"].as_str().unwrap_or_default(),
                    m["content"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        let want = vec![
            ("user", "complete", content.as_str()),
            ("assistant", "complete", answer),
        ];
        if shape != want {
            let summary: Vec<(&str, &str, usize)> =
                shape.iter().map(|(r, s, c)| (*r, *s, c.len())).collect();
            report.problems.push(format!(
                "conversation {conversation}: expected its question and one complete answer, \
                 found (role, status, length) {summary:?}"
            ));
        }
        for m in messages.iter().filter(|m| m["role"] == "assistant") {
            sums.0 += m["input_tokens"].as_u64().unwrap_or(0);
            sums.1 += m["output_tokens"].as_u64().unwrap_or(0);
            sums.2 += m["cost_usd"].as_f64().unwrap_or(0.0);
            sums.3 += 1;
        }
    }
    let stats = json_ok(
        client
            .get(format!("{base}/api/v1/usage/stats"))
            .bearer_auth(&user.access),
        200,
    )
    .await;
    match stats {
        Ok(s) => {
            let totals = (
                s["total_input_tokens"].as_u64().unwrap_or(u64::MAX),
                s["total_output_tokens"].as_u64().unwrap_or(u64::MAX),
                s["total_cost_usd"].as_f64().unwrap_or(f64::NAN),
                s["total_requests"].as_u64().unwrap_or(u64::MAX),
            );
            let cost_matches = (totals.2 - sums.2).abs() <= 1e-9 * sums.2.max(1.0);
            if (totals.0, totals.1, totals.3) != (sums.0, sums.1, sums.3) || !cost_matches {
                report.problems.push(format!(
                    "usage of a user: stats say (input, output, cost, requests) {totals:?}, \
                     the messages sum to {sums:?}"
                ));
            }
            if sums.1 == 0 && sums.3 > 0 {
                report
                    .problems
                    .push("answers were stored without output tokens".into());
            }
        }
        Err(e) => report.problems.push(format!("usage stats: {e}")),
    }
}
