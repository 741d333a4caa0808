//! The one place that talks to providers over the network: opens a
//! streaming request and hands back its body with the right decoder.

use std::time::Duration;

use worker::{AbortController, Fetch, Headers, Method, Request, RequestInit, ResponseBody};

use super::catalogue::Provider;
use super::chat::{Call, UpstreamRequest};
use super::fallback::{error_message, Failure};
use super::{gemini, groq};
use crate::config::Config;
use crate::http::body_reader::BodyReader;
use crate::runtime::timeout;
use crate::sse::gemini::GeminiDecoder;
use crate::sse::openai::OpenAiDecoder;
pub use crate::sse::Decoder;

/// A provider API: builds requests and decodes its stream.
pub trait ProviderApi {
    /// Which provider this is.
    fn provider(&self) -> Provider;
    /// The HTTP request for a call.
    fn request(&self, call: &Call) -> UpstreamRequest;
    /// A fresh decoder for its stream.
    fn decoder(&self) -> Box<dyn Decoder>;
}

/// Groq, or any OpenAI-compatible server.
pub struct Groq<'a> {
    base_url: &'a str,
    key: &'a str,
}

impl ProviderApi for Groq<'_> {
    fn provider(&self) -> Provider {
        Provider::Groq
    }
    fn request(&self, call: &Call) -> UpstreamRequest {
        groq::request(self.base_url, self.key, call)
    }
    fn decoder(&self) -> Box<dyn Decoder> {
        Box::new(OpenAiDecoder::new())
    }
}

/// Google's Gemini API.
pub struct Gemini<'a> {
    base_url: &'a str,
    key: &'a str,
}

impl ProviderApi for Gemini<'_> {
    fn provider(&self) -> Provider {
        Provider::Gemini
    }
    fn request(&self, call: &Call) -> UpstreamRequest {
        gemini::request(self.base_url, self.key, call)
    }
    fn decoder(&self) -> Box<dyn Decoder> {
        Box::new(GeminiDecoder::new())
    }
}

/// The configured API of `provider`, or `None` when it has no key.
pub fn api(config: &Config, provider: Provider) -> Option<Box<dyn ProviderApi + '_>> {
    match provider {
        Provider::Groq => config.groq_api_key.as_deref().map(|key| {
            Box::new(Groq {
                base_url: &config.groq_base_url,
                key,
            }) as Box<dyn ProviderApi>
        }),
        Provider::Gemini => config.google_ai_api_key.as_deref().map(|key| {
            Box::new(Gemini {
                base_url: &config.gemini_base_url,
                key,
            }) as Box<dyn ProviderApi>
        }),
    }
}

/// An open upstream answer: its body and a way to close it.
pub struct Upstream {
    /// The response body.
    pub body: BodyReader,
    abort: Option<AbortController>,
}

impl Upstream {
    /// Reads the next chunk (`None` at the end of the body).
    pub async fn next(&mut self) -> Option<Result<Vec<u8>, String>> {
        self.body.next().await
    }
}

impl Drop for Upstream {
    /// Closes the upstream request when the answer is abandoned.
    fn drop(&mut self) {
        if let Some(abort) = self.abort.take() {
            abort.abort();
        }
    }
}

/// Sends `req` and waits for a 200 with a body, at most `limit`.
pub async fn open(req: &UpstreamRequest, limit: Duration) -> Result<Upstream, Failure> {
    let headers = Headers::new();
    for (name, value) in &req.headers {
        headers
            .set(name, value)
            .map_err(|e| Failure::Connect(format!("bad header {name}: {e}")))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(req.body.as_str().into()));
    let request = Request::new_with_init(&req.url, &init)
        .map_err(|e| Failure::Connect(format!("bad request: {e}")))?;
    // Aborts the request if this future is dropped before it answers (the
    // client left while waiting) or gives up; an answer takes it over.
    let controller = AbortController::default();
    let signal = controller.signal();
    let mut abort = AbortOnDrop(Some(controller));
    let sent = timeout(limit, Fetch::Request(request).send_with_signal(&signal)).await;
    let mut resp = match sent {
        None => return Err(Failure::Timeout),
        Some(Err(e)) => return Err(Failure::Connect(e.to_string())),
        Some(Ok(resp)) => resp,
    };
    let status = resp.status_code();
    if status != 200 {
        let body = timeout(limit, resp.text())
            .await
            .and_then(Result::ok)
            .unwrap_or_default();
        return Err(Failure::Status {
            status,
            message: error_message(&body),
        });
    }
    let body = match resp.body() {
        ResponseBody::Stream(stream) => BodyReader::new(stream),
        _ => return Err(Failure::Stream("no body".into())),
    };
    Ok(Upstream {
        body,
        abort: abort.0.take(),
    })
}

/// Aborts a request that is still pending when dropped.
struct AbortOnDrop(Option<AbortController>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(abort) = self.0.take() {
            abort.abort();
        }
    }
}
