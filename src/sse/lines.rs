//! Incremental server-sent-events framing.
//!
//! [`LineDecoder`] takes the body of an `text/event-stream` response in
//! arbitrary byte chunks and yields complete [`SseFrame`]s, following the
//! WHATWG event-stream parsing rules:
//!
//! - a line ends with `\n`, `\r\n` or `\r` (a `\r` ending one chunk followed by
//!   a `\n` starting the next is one line end);
//! - a blank line dispatches the frame being built; a frame without any
//!   `data:` line is not dispatched;
//! - `data:` values are joined with `\n`; `event:` sets the event name;
//! - one space after the colon is stripped; lines starting with `:` are
//!   comments (keep-alives) and are ignored, as are unknown fields (`id:`,
//!   `retry:`, …);
//! - a UTF-8 byte-order mark at the very start is skipped.
//!
//! Bytes are buffered until their line is complete, so a multi-byte UTF-8
//! character split across chunks is decoded correctly; a complete line is
//! decoded with [`String::from_utf8_lossy`].
//!
//! A partial line may grow to at most [`MAX_LINE_BYTES`]. Beyond that the
//! line is dropped (up to its end), the frame being built is discarded, and a
//! frame `SseFrame { event: Some("error"), data: "line too long" }` is
//! emitted in its place (see [`LINE_TOO_LONG`]).

/// The largest partial line buffered (1 MiB); longer lines are dropped.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// The `data` of the `error` frame emitted for a line over [`MAX_LINE_BYTES`].
pub const LINE_TOO_LONG: &str = "line too long";

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched event: its optional `event:` name and its joined `data:`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseFrame {
    /// The `event:` field, if the frame had a non-empty one.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental SSE decoder: feed bytes with [`push`](Self::push), end with
/// [`finish`](Self::finish).
#[derive(Debug, Default)]
pub struct LineDecoder {
    /// Bytes of the current, incomplete line.
    buf: Vec<u8>,
    /// The previous chunk ended with `\r`: skip a `\n` starting the next one.
    pending_cr: bool,
    /// The current line overflowed: drop bytes until its end.
    overflow: bool,
    /// No line has been completed yet (for the byte-order mark).
    first_line: bool,
    /// The `event:` name of the frame being built.
    event: Option<String>,
    /// The joined `data:` of the frame being built.
    data: String,
    /// The frame being built has at least one `data:` line.
    has_data: bool,
}

impl LineDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> LineDecoder {
        LineDecoder {
            first_line: true,
            ..LineDecoder::default()
        }
    }

    /// Feeds a chunk; returns the frames completed by it (possibly none).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseFrame> {
        let mut out = Vec::new();
        let mut rest = bytes;
        if self.pending_cr && !rest.is_empty() {
            self.pending_cr = false;
            if let Some(tail) = rest.strip_prefix(b"\n") {
                rest = tail;
            }
        }
        while let Some(i) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (line, tail) = rest.split_at(i);
            self.append(line, &mut out);
            self.end_line(&mut out);
            match tail.split_first() {
                Some((b'\r', after)) if after.is_empty() => {
                    self.pending_cr = true;
                    rest = after;
                }
                Some((b'\r', after)) => rest = after.strip_prefix(b"\n").unwrap_or(after),
                Some((_, after)) => rest = after,
                None => rest = tail,
            }
        }
        self.append(rest, &mut out);
        out
    }

    /// Ends the stream: completes a final line without a line end and
    /// dispatches a final frame not followed by a blank line. The decoder is
    /// then reset and can decode a new stream.
    pub fn finish(&mut self) -> Vec<SseFrame> {
        let mut out = Vec::new();
        if !self.buf.is_empty() || self.overflow {
            self.end_line(&mut out);
        }
        self.dispatch(&mut out);
        *self = LineDecoder::new();
        out
    }

    /// Adds bytes to the current line, enforcing [`MAX_LINE_BYTES`].
    fn append(&mut self, part: &[u8], out: &mut Vec<SseFrame>) {
        if self.overflow || part.is_empty() {
            return;
        }
        if self.buf.len() + part.len() > MAX_LINE_BYTES {
            self.overflow = true;
            self.buf = Vec::new();
            self.event = None;
            self.data.clear();
            self.has_data = false;
            out.push(SseFrame {
                event: Some("error".to_string()),
                data: LINE_TOO_LONG.to_string(),
            });
            return;
        }
        self.buf.extend_from_slice(part);
    }

    /// Processes the completed current line.
    fn end_line(&mut self, out: &mut Vec<SseFrame>) {
        let mut bytes = std::mem::take(&mut self.buf);
        if std::mem::take(&mut self.first_line) && bytes.starts_with(BOM) {
            bytes.drain(..BOM.len());
        }
        if std::mem::take(&mut self.overflow) {
            return;
        }
        let line = String::from_utf8_lossy(&bytes);
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => {
                self.event = (!value.is_empty()).then(|| value.to_string());
            }
            _ => {}
        }
    }

    /// Emits the frame being built if it has data, and starts a new one.
    fn dispatch(&mut self, out: &mut Vec<SseFrame>) {
        let event = self.event.take();
        let data = std::mem::take(&mut self.data);
        if std::mem::take(&mut self.has_data) {
            out.push(SseFrame { event, data });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::test_support::assert_split_invariant;

    fn decode(chunks: &[&[u8]]) -> Vec<SseFrame> {
        let mut d = LineDecoder::new();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(d.push(c));
        }
        out.extend(d.finish());
        out
    }

    fn frame(event: Option<&str>, data: &str) -> SseFrame {
        SseFrame {
            event: event.map(str::to_string),
            data: data.to_string(),
        }
    }

    #[test]
    fn basic_frames_every_split() {
        let input = "data: one\n\nevent: ping\ndata: {\"a\":1}\n\n".as_bytes();
        let frames = assert_split_invariant(input, decode);
        assert_eq!(
            frames,
            vec![frame(None, "one"), frame(Some("ping"), "{\"a\":1}")]
        );
    }

    #[test]
    fn crlf_cr_and_lf_line_ends_every_split() {
        let input = b"data: a\r\n\r\ndata: b\r\rdata: c\n\ndata: d\r\n\n";
        let frames = assert_split_invariant(input, decode);
        let want: Vec<SseFrame> = ["a", "b", "c", "d"]
            .iter()
            .map(|d| frame(None, d))
            .collect();
        assert_eq!(frames, want);
    }

    #[test]
    fn cr_at_chunk_end_then_lf_is_one_line_end() {
        let mut d = LineDecoder::new();
        assert!(d.push(b"data: x\r").is_empty());
        // `\n` completing `\r\n`, then the blank line `\r\n`.
        assert_eq!(d.push(b"\n"), vec![]);
        assert_eq!(d.push(b"\r"), vec![frame(None, "x")]);
        assert_eq!(d.push(b"\n"), vec![]);
        assert_eq!(d.finish(), vec![]);
    }

    #[test]
    fn multiline_data_comments_and_unknown_fields() {
        let input = b": ping\n\ndata: line1\ndata:line2\ndata\nid: 7\nretry: 10\nfoo: bar\n: keep-alive\n\n";
        let frames = assert_split_invariant(input, decode);
        assert_eq!(frames, vec![frame(None, "line1\nline2\n")]);
    }

    #[test]
    fn only_one_leading_space_is_stripped() {
        assert_eq!(decode(&[b"data:  two\n\n"]), vec![frame(None, " two")]);
    }

    #[test]
    fn frames_without_data_are_not_dispatched() {
        assert_eq!(decode(&[b"event: x\n\n: c\n\nid: 3\n\n"]), vec![]);
        // The event name does not leak into the next frame.
        assert_eq!(
            decode(&[b"event: x\n\ndata: y\n\n"]),
            vec![frame(None, "y")]
        );
        // An empty data line is still data.
        assert_eq!(decode(&[b"data:\n\n"]), vec![frame(None, "")]);
    }

    #[test]
    fn utf8_split_mid_character() {
        let input = "data: héllo 😀\n\n".as_bytes();
        let frames = assert_split_invariant(input, decode);
        assert_eq!(frames, vec![frame(None, "héllo 😀")]);
    }

    #[test]
    fn finish_flushes_final_frame() {
        assert_eq!(decode(&[b"data: tail"]), vec![frame(None, "tail")]);
        assert_eq!(decode(&[b"data: tail\n"]), vec![frame(None, "tail")]);
        assert_eq!(decode(&[b"data: tail\r"]), vec![frame(None, "tail")]);
        assert_eq!(decode(&[b""]), vec![]);
    }

    #[test]
    fn bom_is_skipped_at_start_only() {
        let input = b"\xEF\xBB\xBFdata: a\n\n";
        assert_eq!(
            assert_split_invariant(input, decode),
            vec![frame(None, "a")]
        );
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(
            decode(&[b"data: a\xFFb\n\n"]),
            vec![frame(None, "a\u{FFFD}b")]
        );
    }

    #[test]
    fn over_long_line_is_dropped_with_error_frame() {
        let mut d = LineDecoder::new();
        assert_eq!(
            d.push(b"data: ok\n\ndata: partial\ndata: "),
            vec![frame(None, "ok")]
        );
        let big = vec![b'x'; MAX_LINE_BYTES];
        assert_eq!(d.push(&big), vec![frame(Some("error"), LINE_TOO_LONG)]);
        // Still inside the over-long line: dropped, no second error.
        assert_eq!(d.push(&big), vec![]);
        assert_eq!(d.push(b"yyy\n\n"), vec![]);
        assert_eq!(d.push(b"data: next\n\n"), vec![frame(None, "next")]);
        assert_eq!(d.finish(), vec![]);
    }

    #[test]
    fn line_of_exactly_the_cap_is_kept() {
        let mut d = LineDecoder::new();
        let mut line = b"data:".to_vec();
        line.resize(MAX_LINE_BYTES, b'z');
        assert_eq!(d.push(&line), vec![]);
        let frames = d.push(b"\n\n");
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].data.len(), MAX_LINE_BYTES - 5);
    }
}
