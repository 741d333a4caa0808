//! The model catalogue: ids, providers, limits, prices and abilities, in one
//! table. Model ids are data: retiring or adding a model is a change here
//! (and, for the defaults, a configuration change), nowhere else.

use serde::Serialize;

use super::tokens::Encoding;

/// Which upstream API serves a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Groq's OpenAI-compatible chat completions (`GROQ_BASE_URL`).
    Groq,
    /// Google's Gemini API (`GEMINI_BASE_URL`).
    Gemini,
}

impl Provider {
    /// The name used in responses and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Groq => "groq",
            Provider::Gemini => "gemini",
        }
    }
}

/// One model the API can call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Model {
    /// The provider's model id, e.g. `openai/gpt-oss-20b`.
    pub id: &'static str,
    /// Who serves it.
    pub provider: Provider,
    /// Context window in tokens (prompt + answer).
    pub context_window: u32,
    /// Largest answer the provider allows, in tokens.
    pub max_output_tokens: u32,
    /// USD per million prompt tokens.
    pub input_price_per_mtok: f64,
    /// USD per million answer tokens.
    pub output_price_per_mtok: f64,
    /// Whether the model can return its reasoning.
    pub supports_thinking: bool,
    /// The tiktoken encoding its prompts are counted with: the model's own
    /// where tiktoken has it, else the closest available (`cl100k_base`).
    pub tokenizer: Encoding,
}

/// Every model offered, in the order `/api/v1/models` lists them.
/// Prices and windows as published by the providers in late 2026.
pub const MODELS: &[Model] = &[
    Model {
        id: "openai/gpt-oss-20b",
        provider: Provider::Groq,
        context_window: 131_072,
        max_output_tokens: 65_536,
        input_price_per_mtok: 0.075,
        output_price_per_mtok: 0.30,
        supports_thinking: true,
        tokenizer: Encoding::O200kBase,
    },
    Model {
        id: "openai/gpt-oss-120b",
        provider: Provider::Groq,
        context_window: 131_072,
        max_output_tokens: 65_536,
        input_price_per_mtok: 0.15,
        output_price_per_mtok: 0.60,
        supports_thinking: true,
        tokenizer: Encoding::O200kBase,
    },
    Model {
        id: "gemini-2.5-flash-lite",
        provider: Provider::Gemini,
        context_window: 1_048_576,
        max_output_tokens: 65_536,
        input_price_per_mtok: 0.10,
        output_price_per_mtok: 0.40,
        supports_thinking: true,
        tokenizer: Encoding::Cl100kBase,
    },
];

/// How much a model reads and writes, in tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Context window (prompt + answer).
    pub context_window: u32,
    /// Largest answer.
    pub max_output_tokens: u32,
}

/// Limits assumed for a model id no longer in the catalogue (e.g. retired
/// but still named by an old conversation): modest, so its context fits.
pub const UNKNOWN_MODEL_LIMITS: Limits = Limits {
    context_window: 32_768,
    max_output_tokens: 8_192,
};

impl Model {
    /// The published limits.
    pub fn limits(&self) -> Limits {
        Limits {
            context_window: self.context_window,
            max_output_tokens: self.max_output_tokens,
        }
    }
}

/// Finds a model by its exact id.
pub fn find(id: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.id == id)
}

/// The encoding to count a model's prompts with; `cl100k_base` for an id
/// no longer in the catalogue.
pub fn tokenizer(id: &str) -> Encoding {
    find(id).map_or(Encoding::Cl100kBase, |m| m.tokenizer)
}

/// A catalogue entry as `/api/v1/models` shows it.
#[derive(Debug, Serialize)]
pub struct Listed {
    #[serde(flatten)]
    model: Model,
    is_default: bool,
    is_fallback: bool,
}

/// The catalogue with the deployment's limits (`limits`, which applies any
/// override) and its default and fallback marked.
pub fn listing(
    default_model: &str,
    fallback_model: &str,
    limits: impl Fn(&Model) -> Limits,
) -> Vec<Listed> {
    MODELS
        .iter()
        .map(|model| {
            let Limits {
                context_window,
                max_output_tokens,
            } = limits(model);
            Listed {
                model: Model {
                    context_window,
                    max_output_tokens,
                    ..model.clone()
                },
                is_default: model.id == default_model,
                is_fallback: model.id == fallback_model,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_found() {
        for (i, m) in MODELS.iter().enumerate() {
            assert_eq!(find(m.id), Some(m));
            assert!(MODELS[i + 1..].iter().all(|o| o.id != m.id));
            assert!(m.max_output_tokens < m.context_window);
        }
        assert_eq!(
            find("llama-3.1-8b-instant"),
            None,
            "retired models are not offered"
        );
    }

    #[test]
    fn listing_marks_default_and_fallback() {
        let l = listing("openai/gpt-oss-20b", "gemini-2.5-flash-lite", |m| {
            if m.provider == Provider::Groq {
                Limits {
                    context_window: 4096,
                    max_output_tokens: 1024,
                }
            } else {
                m.limits()
            }
        });
        let v = serde_json::to_value(&l).unwrap();
        assert_eq!(v[0]["id"], "openai/gpt-oss-20b");
        assert_eq!(v[0]["provider"], "groq");
        assert_eq!(v[0]["is_default"], true);
        assert_eq!(v[2]["is_fallback"], true);
        assert_eq!(v[2]["context_window"], 1_048_576);
        assert_eq!(v[0]["context_window"], 4096, "overrides are shown");
        assert_eq!(v[1]["max_output_tokens"], 1024);
        assert_eq!(l.iter().filter(|m| m.is_default).count(), 1);
        assert_eq!(v[0]["tokenizer"], "o200k_base");
        assert_eq!(v[2]["tokenizer"], "cl100k_base");
    }

    #[test]
    fn gpt_oss_models_count_with_o200k_and_the_rest_with_cl100k() {
        for m in MODELS {
            let expected = if m.id.starts_with("openai/gpt-oss") {
                Encoding::O200kBase
            } else {
                Encoding::Cl100kBase
            };
            assert_eq!(m.tokenizer, expected, "{}", m.id);
            assert_eq!(tokenizer(m.id), expected);
        }
        assert_eq!(tokenizer("llama-3.1-8b-instant"), Encoding::Cl100kBase);
    }
}
