//! Token counts: a free upper bound, and `cl100k_base` (tiktoken) when the
//! bound is not good enough. Counts are stored per message, so each text is
//! tokenised at most once.

use tiktoken_rs::cl100k_base_singleton;

/// An upper bound on the tokens of `text` that costs nothing: a byte-level
/// BPE token covers at least one byte.
pub fn upper_bound(text: &str) -> u32 {
    u32::try_from(text.len()).unwrap_or(u32::MAX)
}

/// Tokens of `text` in `cl100k_base`. The first call in an isolate builds
/// the tables (tens of milliseconds); later calls reuse them.
pub fn count(text: &str) -> u32 {
    let tokens = cl100k_base_singleton().encode_ordinary(text);
    u32::try_from(tokens.len()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_bounds() {
        assert_eq!(count("hello world"), 2);
        assert_eq!(count(""), 0);
        assert_eq!(count("<|endoftext|>"), 7, "special tokens are plain text");
        for text in ["hello world", "é ü 漢字 🎉", "x".repeat(5000).as_str()] {
            assert!(count(text) <= upper_bound(text), "{text}");
        }
    }
}
