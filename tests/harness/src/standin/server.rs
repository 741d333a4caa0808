//! Accepting connections and routing requests.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming as IncomingBody;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use super::body::{self, ResponseBody};
use super::exchange::{self, Incoming};
use super::script::ProviderKind;
use super::state::State;
use super::{control, gemini, groq};

/// The largest request body read (bigger ones get 413).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A running in-process stand-in. Dropping it stops the server and closes
/// its connections.
#[derive(Debug)]
pub struct StandIn {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl StandIn {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the root of the control API.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The Groq base URL: `http://ADDR/groq/openai/v1`.
    pub fn groq_base_url(&self) -> String {
        groq_base_url(self.addr)
    }

    /// The Gemini base URL: `http://ADDR/gemini/v1beta`.
    pub fn gemini_base_url(&self) -> String {
        gemini_base_url(self.addr)
    }

    /// Stops the server now.
    pub fn shutdown(self) {
        self.task.abort();
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The Groq base URL of a stand-in listening on `addr`.
pub fn groq_base_url(addr: SocketAddr) -> String {
    format!("http://{addr}/groq/openai/v1")
}

/// The Gemini base URL of a stand-in listening on `addr`.
pub fn gemini_base_url(addr: SocketAddr) -> String {
    format!("http://{addr}/gemini/v1beta")
}

/// Binds `addr` (port 0 picks a free port) and serves on the current Tokio
/// runtime until the returned handle is dropped.
///
/// # Errors
/// When `addr` cannot be bound.
pub async fn serve(addr: SocketAddr) -> io::Result<StandIn> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(accept_loop(listener, Arc::new(State::default())));
    Ok(StandIn { addr, task })
}

/// Binds `addr` and serves from a thread of its own (with its own Tokio
/// runtime) for the rest of the process: for one stand-in shared by tests
/// that each run their own runtime. Returns the bound address.
///
/// # Errors
/// When `addr` cannot be bound or the runtime or thread cannot be started.
pub fn serve_in_background(addr: SocketAddr) -> io::Result<SocketAddr> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("provider-standin")
        .enable_all()
        .build()?;
    let listener = {
        let _context = runtime.enter();
        TcpListener::from_std(std_listener)?
    };
    std::thread::Builder::new()
        .name("provider-standin".into())
        .spawn(move || runtime.block_on(accept_loop(listener, Arc::new(State::default()))))?;
    Ok(addr)
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    // Connections live in the set so that ending this task ends them too.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    // Stream chunks are small: without this, Nagle's algorithm
                    // and delayed ACKs hold each one back by ~40 ms.
                    let _ = stream.set_nodelay(true);
                    let state = Arc::clone(&state);
                    connections.spawn(async move {
                        let service = service_fn(move |request| route(Arc::clone(&state), request));
                        // A connection error (client gone, scripted abort) ends only it.
                        // No half-close: a client that shuts its side down is gone,
                        // which cancels its handler and drops its streamed body, so
                        // the request gets recorded as `client_disconnected`.
                        let _ = http1::Builder::new()
                            .half_close(false)
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Err(err) => {
                    // Typically out of file descriptors: back off briefly.
                    eprintln!("provider-standin: accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn route(
    state: Arc<State>,
    request: Request<IncomingBody>,
) -> io::Result<Response<ResponseBody>> {
    let (parts, incoming) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let body = match Limited::new(incoming, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            let status = if err.is::<http_body_util::LengthLimitError>() {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            let message = format!("could not read the request body: {err}");
            return Ok(body::json(
                status,
                &json!({ "error": { "message": message } }),
            ));
        }
    };

    if path.starts_with(control::PREFIX) {
        return Ok(control::handle(
            &state,
            &parts.method,
            &path,
            query.as_deref(),
            &body,
        ));
    }
    let provider = if path == groq::PATH {
        Some(ProviderKind::Groq)
    } else if path.starts_with(gemini::PREFIX) {
        Some(ProviderKind::Gemini)
    } else {
        None
    };
    match provider {
        Some(provider) if parts.method == Method::POST => {
            let incoming = Incoming {
                provider,
                path,
                query,
                headers: parts.headers,
                body,
            };
            exchange::handle(state, incoming).await
        }
        Some(_) => Ok(body::json(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({ "error": { "message": "use POST" } }),
        )),
        None => Ok(body::json(
            StatusCode::NOT_FOUND,
            &json!({ "error": { "message": format!("no route for {path}") } }),
        )),
    }
}
