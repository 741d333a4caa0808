//! Response bodies: whole JSON bodies and channel-backed streaming bodies.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc;

/// The body type of every response the stand-in sends.
pub type ResponseBody = BoxBody<Bytes, io::Error>;

/// One item of a streamed body: bytes to write, or an error that makes hyper
/// abort the connection without terminating the chunked encoding.
pub type BodyItem = Result<Bytes, io::Error>;

/// A complete (content-length) body.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A response with a JSON body.
pub fn json(status: StatusCode, value: &Value) -> Response<ResponseBody> {
    json_text(status, value.to_string())
}

/// A response with a body that is already JSON text.
pub fn json_text(status: StatusCode, text: String) -> Response<ResponseBody> {
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A body fed by an mpsc channel: each item is handed to hyper (and so written
/// and flushed) as soon as the producer sends it. The channel's receiver is
/// dropped when the connection goes away, which the producer observes.
pub struct ChannelBody {
    rx: mpsc::Receiver<BodyItem>,
}

impl ChannelBody {
    /// A channel of capacity 1 and the body reading from it.
    pub fn channel() -> (mpsc::Sender<BodyItem>, ResponseBody) {
        let (tx, rx) = mpsc::channel(1);
        (tx, ChannelBody { rx }.boxed())
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|result| result.map(Frame::data)))
    }
}
