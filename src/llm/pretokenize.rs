//! Splitting a text into the pieces byte-pair encoding works on, with the
//! encoding's pattern, as tiktoken does (`find_iter`: leftmost-first
//! matches, characters no alternative matches are skipped).
//!
//! tiktoken's patterns are written for a backtracking engine with
//! possessive quantifiers and Unicode-aware case-insensitive groups. The
//! worker runs them with the JavaScript runtime's own `RegExp` (a `u`
//! flag pattern) instead of linking a regex engine into the script, so
//! [`Encoding::pattern`] is tiktoken's pattern spelt for both engines:
//! - possessive quantifiers become greedy ones: no alternative here can
//!   match differently by giving characters back;
//! - `\s` is written out as Unicode `White_Space` (JavaScript's `\s` also
//!   has U+FEFF and lacks U+0085), `\S` as its complement;
//! - `(?i:…)` over the contractions becomes explicit classes (`s` also
//!   matches `ſ`, U+017F, as under Unicode case folding).
//!
//! Natively (tests, benchmarks) the same pattern runs with `fancy-regex`;
//! the unit tests check it splits exactly as tiktoken's original pattern.

use super::tokens::Encoding;

/// Unicode `White_Space`, the members of `\s` in a Unicode regex.
macro_rules! ws {
    () => {
        r"\t-\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"
    };
}

/// `cl100k_base`: `'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s`.
pub const CL100K_BASE: &str = concat!(
    r"'(?:[sdmtSDMT\u017F]|[lL][lL]|[vV][eE]|[rR][eE])",
    r"|[^\r\n\p{L}\p{N}]?\p{L}+",
    r"|\p{N}{1,3}",
    r"| ?[^",
    ws!(),
    r"\p{L}\p{N}]+[\r\n]*",
    r"|[",
    ws!(),
    r"]+$|[",
    ws!(),
    r"]*[\r\n]|[",
    ws!(),
    r"]+(?![^",
    ws!(),
    r"])|[",
    ws!(),
    r"]"
);

/// The contractions of `o200k_base`: `(?i:'s|'t|'re|'ve|'m|'ll|'d)`.
macro_rules! contractions {
    () => {
        r"(?:'[sS\u017F]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?"
    };
}

/// `o200k_base`: tiktoken-rs's `O200K_BASE_PAT_STR`.
pub const O200K_BASE: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+",
    contractions!(),
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*",
    contractions!(),
    r"|\p{N}{1,3}",
    r"| ?[^",
    ws!(),
    r"\p{L}\p{N}]+[\r\n/]*",
    r"|[",
    ws!(),
    r"]*[\r\n]+|[",
    ws!(),
    r"]+(?![^",
    ws!(),
    r"])|[",
    ws!(),
    r"]+"
);

/// Calls `piece` with each piece of `text`, in order.
#[cfg(target_arch = "wasm32")]
pub fn pieces(encoding: Encoding, text: &str, mut piece: impl FnMut(&[u8])) {
    use worker::js_sys::{JsString, RegExp, RegExpMatchArray};
    use worker::wasm_bindgen::JsCast;

    let regex = RegExp::new(encoding.pattern(), "gu");
    let js_text = JsString::from(text);
    // Matches are in UTF-16 units and in order: one walk over the text
    // turns them into byte offsets.
    let mut chars = text.char_indices();
    let (mut units, mut byte) = (0u32, 0usize);
    let mut to_byte = |target: u32| {
        while units < target {
            match chars.next() {
                Some((at, c)) => {
                    units += u32::try_from(c.len_utf16()).unwrap_or(2);
                    byte = at + c.len_utf8();
                }
                None => break,
            }
        }
        byte
    };
    for found in js_text.match_all(&regex).into_iter().flatten() {
        let found: RegExpMatchArray = found.unchecked_into();
        let start = found.index();
        let len = found.get(0).map_or(0, |m| m.length());
        let (from, to) = (to_byte(start), to_byte(start + len));
        if let Some(bytes) = text.as_bytes().get(from..to) {
            if !bytes.is_empty() {
                piece(bytes);
            }
        }
    }
}

/// Calls `piece` with each piece of `text`, in order.
#[cfg(not(target_arch = "wasm32"))]
pub fn pieces(encoding: Encoding, text: &str, mut piece: impl FnMut(&[u8])) {
    use std::sync::OnceLock;

    static COMPILED: OnceLock<[fancy_regex::Regex; 2]> = OnceLock::new();
    let compiled = COMPILED.get_or_init(|| {
        Encoding::ALL.map(|e| fancy_regex::Regex::new(e.pattern()).expect("the pattern compiles"))
    });
    let regex = &compiled[Encoding::ALL
        .iter()
        .position(|&e| e == encoding)
        .unwrap_or_default()];
    for found in regex.find_iter(text).flatten() {
        piece(found.as_str().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use fancy_regex::Regex;

    use super::*;

    /// tiktoken-rs's `cl100k_base` pattern.
    const CL100K_ORIGINAL: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s";

    fn split_original(encoding: Encoding, text: &str) -> Vec<String> {
        static ORIGINAL: std::sync::OnceLock<[Regex; 2]> = std::sync::OnceLock::new();
        let [cl100k, o200k] = ORIGINAL.get_or_init(|| {
            [CL100K_ORIGINAL, tiktoken_rs::O200K_BASE_PAT_STR].map(|p| Regex::new(p).unwrap())
        });
        let original = match encoding {
            Encoding::Cl100kBase => cl100k,
            Encoding::O200kBase => o200k,
        };
        original
            .find_iter(text)
            .map(|m| m.unwrap().as_str().to_string())
            .collect()
    }

    fn split(encoding: Encoding, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        pieces(encoding, text, |p| {
            out.push(String::from_utf8(p.to_vec()).unwrap())
        });
        out
    }

    /// Every character `pattern` matches alone, among all of Unicode.
    fn members(pattern: &str) -> Vec<char> {
        let regex = Regex::new(&format!("^(?:{pattern})$")).unwrap();
        (0..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter(|c| regex.is_match(c.encode_utf8(&mut [0; 4])).unwrap())
            .collect()
    }

    #[test]
    fn white_space_is_spelt_out_exactly() {
        assert_eq!(members(concat!("[", ws!(), "]")), members(r"\s"));
        assert_eq!(members(concat!("[^", ws!(), "]")), members(r"\S"));
    }

    #[test]
    fn case_insensitive_letters_are_spelt_out_exactly() {
        assert_eq!(members("[sdmtSDMT\u{17F}]"), members("(?i:[sdmt])"));
        for letter in ["s", "t", "r", "e", "v", "m", "l", "d"] {
            let folded = members(&format!("(?i:{letter})"));
            let spelt: Vec<char> = members(&format!("[{}{}]", letter, letter.to_uppercase()))
                .into_iter()
                .chain((letter == "s").then_some('\u{17F}'))
                .collect();
            assert_eq!(spelt, folded, "{letter}");
        }
    }

    /// Texts where the alternatives compete: contractions in every case,
    /// whitespace runs before words, line ends and the end of the text,
    /// numbers, punctuation runs, marks, titlecase and several scripts.
    fn samples() -> Vec<String> {
        let mut texts: Vec<String> = [
            "I'm sure it's what we'll do; they've said they'd 'RE-try' and WE'LL SEE'S",
            "DON'T Won'T can'ſ 'ſ ''s 's 'S 'x",
            "a  b   c\t\td \n\n e \r\n f\u{85}g\u{a0}h\u{3000}i\u{feff}j\u{2028}k   ",
            "   \n",
            "x\n\n\n",
            "tail spaces   ",
            "1234567 12 3.14159 ١٢٣٤ ²³ Ⅻ",
            "!!!??? ...--- <|endoftext|> a/b/c //\n/\r\n",
            "ǅungla ǈ Ǉ ǅabc ABCdef abcDEF ÀÉÎõü",
            "e\u{301}te\u{301} n\u{303} a\u{20dd}",
            "数据库中的对话记录，以及模型的上下文窗口。",
            "Привет, мир! Ελληνικά. עברית. العربية. हिन्दी। 日本語。한국어.",
            "emoji 🎉🚀👩‍👩‍👧‍👦 🇫🇷",
            "fn main() {\n    println!(\"{}\", 1_000_000 + 0x1F);\n}\n",
            "",
        ]
        .map(String::from)
        .into();
        texts.push("word ".repeat(50) + "\n\n  end");
        texts
    }

    #[test]
    fn the_patterns_split_exactly_as_tiktokens() {
        for encoding in Encoding::ALL {
            for text in samples() {
                assert_eq!(
                    split(encoding, &text),
                    split_original(encoding, &text),
                    "{} on {text:?}",
                    encoding.name()
                );
            }
        }
    }

    #[test]
    fn the_patterns_split_random_text_exactly_as_tiktokens() {
        // Characters from every class the patterns distinguish.
        let alphabet: Vec<char> =
            "aZǅʰ\u{301}5٣Ⅻ'sStTlLdDmMvVrReEſ -/!\n\r\t\u{85}\u{a0}\u{3000}\u{feff}字🎉"
                .chars()
                .collect();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            let len = usize::try_from(next() % 24).unwrap();
            let text: String = (0..len)
                .map(|_| alphabet[usize::try_from(next()).unwrap() % alphabet.len()])
                .collect();
            for encoding in Encoding::ALL {
                assert_eq!(
                    split(encoding, &text),
                    split_original(encoding, &text),
                    "{} on {text:?}",
                    encoding.name()
                );
            }
        }
    }
}
