//! Prompted reasoning for models without native thinking.
//!
//! We ask such models (see [`THINKING_INSTRUCTION`]) to reason inside
//! `<thinking>…</thinking>` at the very start of the answer, and split the
//! streamed text with [`ThinkSplitter`]:
//!
//! - whitespace before `<thinking>` is allowed (and dropped);
//! - if the answer does not start with `<thinking>`, everything is `Text`,
//!   flushed as soon as it is certain not to be the tag (at most the tag's
//!   length is held back, besides leading whitespace);
//! - text inside the tags is `Thinking`;
//! - after `</thinking>`, whitespace up to the first other character is
//!   dropped and the rest is `Text`;
//! - tags may be split across pushes anywhere;
//! - if the stream ends inside the tags, what was inside is `Thinking`.

use super::LlmEvent;

/// The system-prompt addition asking for reasoning inside `<thinking>` tags.
pub const THINKING_INSTRUCTION: &str = "Before answering, first reason step by step inside \
<thinking></thinking> tags placed at the very start of your reply. After the closing \
</thinking> tag, write your final answer outside the tags; do not repeat the tags or \
mention them in the answer.";

const OPEN: &str = "<thinking>";
const CLOSE: &str = "</thinking>";

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Not yet known whether the answer starts with the tag; holds the
    /// leading whitespace and a possible tag prefix.
    Start(String),
    /// Inside the tags; holds a possible prefix of the closing tag.
    Inside(String),
    /// Right after the closing tag: dropping whitespace.
    AfterClose,
    /// Plain answer text.
    Text,
}

/// Splits streamed answer text into `Thinking` and `Text` events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinkSplitter {
    state: State,
}

impl Default for ThinkSplitter {
    fn default() -> Self {
        ThinkSplitter::new()
    }
}

impl ThinkSplitter {
    /// A splitter at the start of an answer.
    pub fn new() -> ThinkSplitter {
        ThinkSplitter {
            state: State::Start(String::new()),
        }
    }

    /// Feeds a text delta; returns the `Thinking` / `Text` events that are
    /// certain so far (never empty strings).
    pub fn push(&mut self, text: &str) -> Vec<LlmEvent> {
        let mut out = Vec::new();
        self.feed(text, &mut out);
        out
    }

    /// Ends the answer: flushes anything held back (a partial opening tag as
    /// `Text`, a partial closing tag as `Thinking`) and resets the splitter.
    pub fn finish(&mut self) -> Vec<LlmEvent> {
        let mut out = Vec::new();
        match std::mem::replace(&mut self.state, State::Start(String::new())) {
            State::Start(held) => push_text(&held, &mut out),
            State::Inside(held) => push_thinking(&held, &mut out),
            State::AfterClose | State::Text => {}
        }
        out
    }

    fn feed(&mut self, text: &str, out: &mut Vec<LlmEvent>) {
        match &mut self.state {
            State::Start(held) => {
                held.push_str(text);
                let trimmed = held.trim_start();
                if let Some(rest) = trimmed.strip_prefix(OPEN) {
                    let rest = rest.to_string();
                    self.state = State::Inside(String::new());
                    self.feed(&rest, out);
                } else if !OPEN.starts_with(trimmed) {
                    let held = std::mem::take(held);
                    self.state = State::Text;
                    push_text(&held, out);
                }
            }
            State::Inside(held) => {
                held.push_str(text);
                if let Some(pos) = held.find(CLOSE) {
                    let inside = held.get(..pos).unwrap_or_default().to_string();
                    let rest = held
                        .get(pos + CLOSE.len()..)
                        .unwrap_or_default()
                        .to_string();
                    push_thinking(&inside, out);
                    self.state = State::AfterClose;
                    self.feed(&rest, out);
                } else {
                    let keep = partial_suffix(held, CLOSE);
                    let tail = held.split_off(held.len() - keep);
                    push_thinking(held, out);
                    *held = tail;
                }
            }
            State::AfterClose => {
                let rest = text.trim_start();
                if !rest.is_empty() {
                    self.state = State::Text;
                    push_text(rest, out);
                }
            }
            State::Text => push_text(text, out),
        }
    }
}

/// The length of the longest proper suffix of `s` that is a prefix of `tag`
/// (so it might still become `tag`).
fn partial_suffix(s: &str, tag: &str) -> usize {
    let max = s.len().min(tag.len().saturating_sub(1));
    (1..=max)
        .rev()
        .find(|&k| {
            let start = s.len() - k;
            s.is_char_boundary(start) && s.get(start..).is_some_and(|t| tag.starts_with(t))
        })
        .unwrap_or(0)
}

fn push_text(s: &str, out: &mut Vec<LlmEvent>) {
    if !s.is_empty() {
        out.push(LlmEvent::Text(s.to_string()));
    }
}

fn push_thinking(s: &str, out: &mut Vec<LlmEvent>) {
    if !s.is_empty() {
        out.push(LlmEvent::Thinking(s.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the splitter over `chunks`, then merges consecutive events of
    /// the same kind (the split points may change how text is chunked).
    fn run(chunks: &[&str]) -> Vec<LlmEvent> {
        let mut s = ThinkSplitter::new();
        let mut events = Vec::new();
        for c in chunks {
            events.extend(s.push(c));
        }
        events.extend(s.finish());
        merge(events)
    }

    fn merge(events: Vec<LlmEvent>) -> Vec<LlmEvent> {
        let mut out: Vec<LlmEvent> = Vec::new();
        for e in events {
            match (out.last_mut(), e) {
                (Some(LlmEvent::Text(a)), LlmEvent::Text(b)) => a.push_str(&b),
                (Some(LlmEvent::Thinking(a)), LlmEvent::Thinking(b)) => a.push_str(&b),
                (_, e) => out.push(e),
            }
        }
        out
    }

    /// Asserts `input` gives `want` whole, split in two at every char
    /// boundary, split in three at every pair, and one char at a time.
    fn check(input: &str, want: &[LlmEvent]) {
        assert_eq!(run(&[input]), want, "whole");
        let bounds: Vec<usize> = (0..=input.len())
            .filter(|&i| input.is_char_boundary(i))
            .collect();
        for &i in &bounds {
            assert_eq!(run(&[&input[..i], &input[i..]]), want, "split at {i}");
            for &j in bounds.iter().filter(|&&j| j >= i) {
                let parts = [&input[..i], &input[i..j], &input[j..]];
                assert_eq!(run(&parts), want, "split at {i},{j}");
            }
        }
        let chars: Vec<String> = input.chars().map(String::from).collect();
        let chars: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(run(&chars), want, "one char at a time");
    }

    fn text(s: &str) -> LlmEvent {
        LlmEvent::Text(s.to_string())
    }

    fn thinking(s: &str) -> LlmEvent {
        LlmEvent::Thinking(s.to_string())
    }

    #[test]
    fn thinking_then_text() {
        check(
            "<thinking>step 1 < 2, héllo 😀</thinking>\n\nThe answer </thinking> <thinking>",
            &[
                thinking("step 1 < 2, héllo 😀"),
                text("The answer </thinking> <thinking>"),
            ],
        );
    }

    #[test]
    fn leading_whitespace_before_tag() {
        check(" \n <thinking>a</thinking>b", &[thinking("a"), text("b")]);
    }

    #[test]
    fn no_tag_is_all_text() {
        check(
            "Hello <thinking>x</thinking>",
            &[text("Hello <thinking>x</thinking>")],
        );
        check("  <think>raw</think>", &[text("  <think>raw</think>")]);
        check("<thinkin", &[text("<thinkin")]);
    }

    #[test]
    fn unclosed_thinking_is_thinking() {
        check(
            "<thinking>never closed </think",
            &[thinking("never closed </think")],
        );
        check("<thinking>", &[]);
    }

    #[test]
    fn only_whitespace_after_close() {
        check("<thinking>t</thinking>\n  \n", &[thinking("t")]);
    }

    #[test]
    fn text_flushed_as_soon_as_not_a_tag() {
        let mut s = ThinkSplitter::new();
        assert_eq!(s.push("<thi"), vec![]);
        assert_eq!(s.push("s is"), vec![text("<this is")]);
        assert_eq!(s.push(" more"), vec![text(" more")]);
        let mut s = ThinkSplitter::new();
        assert_eq!(s.push("Sure"), vec![text("Sure")]);
    }

    #[test]
    fn thinking_held_back_only_for_close_prefix() {
        let mut s = ThinkSplitter::new();
        assert_eq!(s.push("<thinking>abc</th"), vec![thinking("abc")]);
        assert_eq!(s.push("en"), vec![thinking("</then")]);
        assert_eq!(s.push("</thinking>"), vec![]);
        assert_eq!(s.push("  "), vec![]);
        assert_eq!(s.push(" x "), vec![text("x ")]);
        assert_eq!(s.finish(), vec![]);
    }

    #[test]
    fn partial_suffix_lengths() {
        assert_eq!(partial_suffix("abc</thin", CLOSE), 6);
        assert_eq!(partial_suffix("abc<", CLOSE), 1);
        assert_eq!(partial_suffix("abc", CLOSE), 0);
        assert_eq!(partial_suffix("é", CLOSE), 0);
    }

    #[test]
    fn instruction_mentions_tags() {
        assert!(THINKING_INSTRUCTION.contains("<thinking>"));
        assert!(THINKING_INSTRUCTION.contains("</thinking>"));
    }
}
