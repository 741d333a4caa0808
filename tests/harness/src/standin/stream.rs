//! Feeds encoded frames into a channel-backed body with the scripted pacing,
//! drop and stall, and reports the outcome to the request log.

use std::io;
use std::time::Duration;

use tokio::sync::mpsc::Sender;
use tokio::time::sleep;

use super::body::{BodyItem, ChannelBody, ResponseBody};
use super::plan::{Frame, FrameKind};
use super::record::Tracker;

/// The longest a stall holds a connection.
pub const MAX_STALL: Duration = Duration::from_secs(600);

/// How long an abort waits so that hyper flushes the frames sent before it.
const FLUSH_GRACE: Duration = Duration::from_millis(50);

/// Pacing and scripted failures of one streamed body.
#[derive(Debug, Clone, Default)]
pub struct Pacing {
    /// Pause before each reasoning/answer frame but the first frame.
    pub chunk_delay: Duration,
    /// Abort the connection after this many answer frames.
    pub drop_after: Option<usize>,
    /// Send nothing more after this many answer frames.
    pub stall_after: Option<usize>,
}

enum Cut {
    Drop,
    Stall,
}

impl Pacing {
    fn cut_at(&self, content_sent: usize) -> Option<Cut> {
        if self.drop_after == Some(content_sent) {
            Some(Cut::Drop)
        } else if self.stall_after == Some(content_sent) {
            Some(Cut::Stall)
        } else {
            None
        }
    }
}

/// Starts a task writing `frames` and returns the body it feeds.
pub fn spawn(frames: Vec<Frame>, pacing: Pacing, tracker: Tracker) -> ResponseBody {
    let (tx, body) = ChannelBody::channel();
    tokio::spawn(drive(frames, pacing, tx, tracker));
    body
}

async fn drive(frames: Vec<Frame>, pacing: Pacing, tx: Sender<BodyItem>, tracker: Tracker) {
    let mut content_sent = 0;
    let mut sent_any = false;
    for frame in frames {
        if matches!(frame.kind, FrameKind::Content | FrameKind::Trailer) {
            if let Some(cut) = pacing.cut_at(content_sent) {
                return cut_short(cut, &tx, tracker).await;
            }
        }
        let paced = matches!(frame.kind, FrameKind::Thinking | FrameKind::Content);
        if sent_any && paced && !pause(&tx, pacing.chunk_delay).await {
            return tracker.disconnected();
        }
        if tx.send(Ok(frame.data)).await.is_err() {
            return tracker.disconnected();
        }
        sent_any = true;
        if frame.kind == FrameKind::Content {
            content_sent += 1;
        }
    }
    if let Some(cut) = pacing.cut_at(content_sent) {
        return cut_short(cut, &tx, tracker).await;
    }
    tracker.completed();
}

/// Waits `delay`; false when the client went away meanwhile.
async fn pause(tx: &Sender<BodyItem>, delay: Duration) -> bool {
    if delay.is_zero() {
        return !tx.is_closed();
    }
    tokio::select! {
        () = tx.closed() => false,
        () = sleep(delay) => true,
    }
}

async fn cut_short(cut: Cut, tx: &Sender<BodyItem>, tracker: Tracker) {
    match cut {
        Cut::Drop => {
            if !pause(tx, FLUSH_GRACE).await {
                return tracker.disconnected();
            }
            abort(tx, "drop_after_chunks").await;
            tracker.aborted();
        }
        Cut::Stall => {
            if pause(tx, MAX_STALL).await {
                abort(tx, "stall_after_chunks timed out").await;
                tracker.aborted();
            } else {
                tracker.disconnected();
            }
        }
    }
}

/// Makes hyper abort the connection, leaving the chunked body unterminated.
async fn abort(tx: &Sender<BodyItem>, why: &str) {
    let error = io::Error::new(
        io::ErrorKind::ConnectionAborted,
        format!("provider stand-in: {why}"),
    );
    // A closed channel means the connection is already gone: nothing to do.
    let _ = tx.send(Err(error)).await;
}
