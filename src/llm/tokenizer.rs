//! The tokenisers of the worker, loaded once per isolate from the static
//! assets (`/tokenizers/<encoding>.bin`, written at build time by the
//! harness's `tokenizer-tables`) instead of being linked into the script.
//!
//! A table is a sequence of tokens in rank order, each as one length byte
//! followed by its bytes. It is fetched through the `ASSETS` binding by the
//! first send that needs an exact count; building the tokeniser from it
//! takes tens of milliseconds, once. If it cannot be loaded, the isolate
//! counts with the byte-length upper bound instead, and says so once.

use std::sync::OnceLock;

use worker::{console_error, Env};

use super::bpe::{Bpe, Ranks};

use super::tokens::Encoding;
use crate::assets;

/// Per isolate and encoding: not tried yet, loaded, or failed (`None`).
static LOADED: [OnceLock<Option<Bpe>>; 2] = [OnceLock::new(), OnceLock::new()];

fn slot(encoding: Encoding) -> &'static OnceLock<Option<Bpe>> {
    match encoding {
        Encoding::Cl100kBase => &LOADED[0],
        Encoding::O200kBase => &LOADED[1],
    }
}

/// Whether `encoding`'s load has been tried in this isolate.
pub fn tried(encoding: Encoding) -> bool {
    slot(encoding).get().is_some()
}

/// The tokeniser for `encoding`, loading it on first use; `None` when its
/// table could not be loaded (logged the first time only).
pub async fn load(env: &Env, encoding: Encoding) -> Option<&'static Bpe> {
    let slot = slot(encoding);
    if let Some(loaded) = slot.get() {
        return loaded.as_ref();
    }
    let loaded = match fetch_table(env, encoding).await {
        Ok(table) => build(encoding, &table),
        Err(e) => Err(e),
    };
    let loaded = loaded
        .map_err(|e| {
            console_error!(
                "tokeniser {} unavailable, this isolate counts tokens by bytes: {e}",
                encoding.name()
            )
        })
        .ok();
    // A concurrent send may have loaded it meanwhile: either copy will do.
    let _ = slot.set(loaded);
    slot.get().and_then(Option::as_ref)
}

/// The table's path in the static assets.
pub fn table_path(encoding: Encoding) -> String {
    format!("/tokenizers/{}.bin", encoding.name())
}

async fn fetch_table(env: &Env, encoding: Encoding) -> Result<Vec<u8>, String> {
    assets::fetch(env, &table_path(encoding)).await
}

/// Builds `encoding`'s tokeniser from its table, checking that the table is
/// whole (every rank, nothing after the last).
pub fn build(encoding: Encoding, table: &[u8]) -> Result<Bpe, String> {
    let mut encoder = Ranks::default();
    encoder.reserve(encoding.ranks());
    let mut rest = table;
    let mut rank = 0u32;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len);
        if len == 0 || tail.len() < len {
            return Err(format!("table truncated at rank {rank}"));
        }
        let (token, tail) = tail.split_at(len);
        encoder.insert(token.to_vec(), rank);
        rank += 1;
        rest = tail;
    }
    if encoder.len() != encoding.ranks() || usize::try_from(rank) != Ok(encoding.ranks()) {
        return Err(format!(
            "table has {rank} tokens ({} distinct), {} expected",
            encoder.len(),
            encoding.ranks()
        ));
    }
    Ok(Bpe::new(encoding, encoder))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::tokens::embedded;
    use harness::tokenizer_tables::table;

    /// Prose, code, numbers, whitespace runs, several scripts and emoji,
    /// special-token lookalikes and raw punctuation.
    fn sample() -> Vec<String> {
        let mut texts: Vec<String> = [
            "hello world",
            "The quick brown fox jumps over the lazy dog. It's 3:45pm; we'll see.",
            "fn main() {\n    println!(\"{}\", 1_000_000 + 0x1F);\n}\n",
            "   leading and trailing spaces   \n\n\t\ttabs\r\nCRLF",
            "Ünïcödé façade naïve — «quotes» ‘single’ “double”",
            "数据库中的对话记录，以及模型的上下文窗口。",
            "Привет, мир! Как дела? Ελληνικά κείμενα. עברית. العربية.",
            "हिन्दी में लिखा गया वाक्य। 日本語のテキストです。한국어 문장입니다.",
            "emoji 🎉🚀👩‍👩‍👧‍👦 and flags 🇫🇷🇯🇵",
            "<|endoftext|> <|fim_prefix|> <|endofprompt|> are plain text here",
            "12345678901234567890 3.14159 -42 1e-9 0b1010",
            "https://example.com/path?query=a&b=c#frag user@example.org",
            "!!!???...---___===+++***###@@@$$$%%%^^^&&&",
            "",
        ]
        .map(String::from)
        .into();
        texts.push("a".repeat(3000));
        texts.push("lorem ipsum dolor sit amet ".repeat(200));
        texts.push(
            (0..2000u32)
                .map(|i| char::from_u32(0x4E00 + i * 7).unwrap_or('x'))
                .collect(),
        );
        texts
    }

    #[test]
    fn the_asset_tables_give_exactly_tiktokens_token_ids() {
        for encoding in Encoding::ALL {
            let reference = embedded(encoding);
            let bytes = table(reference).unwrap();
            let built = build(encoding, &bytes).unwrap();
            for text in sample() {
                assert_eq!(
                    built.encode_ordinary(&text),
                    reference.encode_ordinary(&text),
                    "{} on {text:?}",
                    encoding.name()
                );
                assert_eq!(
                    built.count(&text),
                    reference.encode_ordinary(&text).len(),
                    "{} count on {text:?}",
                    encoding.name()
                );
            }
        }
    }

    #[test]
    fn a_damaged_table_is_refused() {
        let encoding = Encoding::Cl100kBase;
        let bytes = table(embedded(encoding)).unwrap();
        let error = |table: &[u8]| build(encoding, table).err().unwrap_or_default();
        let err = error(&bytes[..bytes.len() - 1]);
        assert!(err.contains("truncated"), "{err}");
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[1, b'x']);
        let err = error(&longer);
        assert!(err.contains("100257 tokens"), "{err}");
        assert!(
            build(Encoding::O200kBase, &bytes).is_err(),
            "wrong encoding"
        );
        assert!(build(encoding, &[]).is_err());
    }

    #[test]
    fn tables_are_addressed_by_encoding_name() {
        assert_eq!(
            table_path(Encoding::O200kBase),
            "/tokenizers/o200k_base.bin"
        );
    }
}
