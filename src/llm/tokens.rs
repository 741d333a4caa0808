//! Token counts: a free upper bound, and the model's tiktoken encoding when
//! the bound is not good enough. Counts are stored per message, so each text
//! is tokenised at most once.

use serde::Serialize;

use super::bpe::Bpe;
use super::pretokenize;

/// A tiktoken encoding, as the catalogue records it per model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Encoding {
    /// GPT-4's encoding: the stand-in for models tiktoken has nothing closer
    /// for (Gemini, Llama…).
    #[serde(rename = "cl100k_base")]
    Cl100kBase,
    /// GPT-4o's encoding, on which the gpt-oss models' tokeniser is based.
    #[serde(rename = "o200k_base")]
    O200kBase,
}

impl Encoding {
    /// Every encoding, in the order the per-isolate cache keeps them.
    pub const ALL: [Encoding; 2] = [Encoding::Cl100kBase, Encoding::O200kBase];

    /// The name tiktoken uses, also the table's file name in the assets.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Cl100kBase => "cl100k_base",
            Encoding::O200kBase => "o200k_base",
        }
    }

    /// How many ordinary tokens it has (ranks `0..n`).
    pub fn ranks(self) -> usize {
        match self {
            Encoding::Cl100kBase => 100_256,
            Encoding::O200kBase => 199_998,
        }
    }

    /// The pre-tokenising pattern: tiktoken's, spelt for the JavaScript
    /// `RegExp` the worker splits with (see [`super::pretokenize`]).
    pub fn pattern(self) -> &'static str {
        match self {
            Encoding::Cl100kBase => pretokenize::CL100K_BASE,
            Encoding::O200kBase => pretokenize::O200K_BASE,
        }
    }
}

/// An upper bound on the tokens of `text` that costs nothing: a byte-level
/// BPE token covers at least one byte.
pub fn upper_bound(text: &str) -> u32 {
    u32::try_from(text.len()).unwrap_or(u32::MAX)
}

/// Tokens of `text` with the tokeniser `bpe` (special tokens count as plain
/// text).
pub fn count_with(bpe: &Bpe, text: &str) -> u32 {
    u32::try_from(bpe.count(text)).unwrap_or(u32::MAX)
}

/// tiktoken-rs's own tokeniser for `encoding`, from the tables it embeds:
/// for native tests and benchmarks only. The worker loads its tables from
/// the static assets instead (`llm::tokenizer`), so that the embedded ones
/// are not linked into the script.
#[cfg(not(target_arch = "wasm32"))]
pub fn embedded(encoding: Encoding) -> &'static tiktoken_rs::CoreBPE {
    match encoding {
        Encoding::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
        Encoding::O200kBase => tiktoken_rs::o200k_base_singleton(),
    }
}

/// Tokens of `text` in `encoding`, with tiktoken-rs and its embedded
/// tables (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn count(encoding: Encoding, text: &str) -> u32 {
    u32::try_from(embedded(encoding).encode_ordinary(text).len()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_bounds() {
        for encoding in Encoding::ALL {
            let count = |t: &str| count(encoding, t);
            assert_eq!(count("hello world"), 2);
            assert_eq!(count(""), 0);
            assert_eq!(count("<|endoftext|>"), 7, "special tokens are plain text");
            for text in ["hello world", "é ü 漢字 🎉", "x".repeat(5000).as_str()] {
                assert!(count(text) <= upper_bound(text), "{text}");
            }
        }
        let text = "数据库中的对话记录 — ünïcödé";
        assert_ne!(
            count(Encoding::Cl100kBase, text),
            count(Encoding::O200kBase, text),
            "the encodings differ"
        );
    }

    #[test]
    fn names_serialise_as_tiktoken_spells_them() {
        for encoding in Encoding::ALL {
            assert_eq!(serde_json::to_value(encoding).unwrap(), encoding.name());
        }
    }
}
