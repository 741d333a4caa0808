//! The response side of a stream pulled from a Rust `Stream` (the
//! conversation's events): whatever was sent while the previous write was
//! going out leaves as one write. (A streamed answer writes through
//! [`crate::http::body_writer`] instead.)
//!
//! The response stream asks for data only when its last write is done,
//! and by then several pieces may be waiting. Joining them saves a write
//! (and the runtime's per-write work) per piece without holding anything
//! back: a read that finds one piece gets it at once.

use futures::{Stream, StreamExt};

/// Most pieces joined into one write.
const MAX_PIECES: usize = 1024;

/// `pieces`, with everything ready at each read joined into one chunk.
pub fn coalesce<S: Stream<Item = Vec<u8>>>(pieces: S) -> impl Stream<Item = Vec<u8>> {
    pieces.ready_chunks(MAX_PIECES).map(|batch| batch.concat())
}

#[cfg(test)]
mod tests {
    use futures::channel::mpsc::unbounded;
    use futures::FutureExt;

    use super::*;

    #[test]
    fn pieces_waiting_together_leave_as_one_write() {
        let (tx, rx) = unbounded::<Vec<u8>>();
        let mut out = Box::pin(coalesce(rx));
        for piece in ["event: a\n\n", "event: b\n\n", "event: c\n\n"] {
            tx.unbounded_send(piece.as_bytes().to_vec()).unwrap();
        }
        let first = out.next().now_or_never().flatten().unwrap();
        assert_eq!(first, b"event: a\n\nevent: b\n\nevent: c\n\n");
        // Nothing more is ready: the read waits instead of sending empty writes.
        assert!(out.next().now_or_never().is_none());
    }

    #[test]
    fn a_lone_piece_is_not_held_back() {
        let (tx, rx) = unbounded::<Vec<u8>>();
        let mut out = Box::pin(coalesce(rx));
        assert!(out.next().now_or_never().is_none());
        tx.unbounded_send(b"ping".to_vec()).unwrap();
        assert_eq!(out.next().now_or_never().flatten().unwrap(), b"ping");
        tx.unbounded_send(b"stop".to_vec()).unwrap();
        drop(tx);
        assert_eq!(out.next().now_or_never().flatten().unwrap(), b"stop");
        assert_eq!(out.next().now_or_never(), Some(None));
    }
}
