//! The `embeddings` kind: UTF-8 text (or `{"input": "text"}`) in, one mean-pooled, L2-normalized
//! sentence vector out (`{"dims","embedding","tokens"}`), judged by cosine similarity.
//!
//! The bundle holds a BERT-style encoder graph (`model`: `input_ids` + `attention_mask` int64
//! `[1, L]` -> `embedding` f32 `[1, dims]`, pooling and normalization inside the graph) and its
//! Hugging Face `tokenizer.json`. Tasks run one at a time: padding into a batch changes the bits.
//! A text longer than `params.max_tokens` (special tokens included) is refused, never truncated.

use std::path::Path;

use ort::session::Session;
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use super::{check_input_size, to_canonical, LoadOptions, Runner};
use crate::bundle::{Bundle, Kind};
use crate::compare::{Verdict, QUALITY_MAX};
use crate::{session_from_file, InferenceError, Provider, Runtime};

/// How far from 1 the norm of a claimed embedding may be (honest ones are within ~1e-6).
const NORM_TOLERANCE: f64 = 1e-3;

/// The canonical output of one task (fields in key order, so the bytes are canonical JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Output {
    dims: usize,
    embedding: Vec<f32>,
    tokens: usize,
}

/// A loaded embeddings bundle: tokenizer + encoder session.
pub struct Embeddings {
    session: Session,
    provider: Provider,
    tokenizer: Tokenizer,
    max_tokens: usize,
    dims: usize,
    min_cosine: f64,
    max_input_bytes: usize,
}

impl Embeddings {
    /// Loads the bundle's `model` and `tokenizer` parts; reads `params.max_tokens`,
    /// `params.dims` and `verify.min_cosine` (`verify.rule` must be `"cosine"`).
    pub fn load(
        runtime: &Runtime,
        bundle: &Bundle,
        opts: LoadOptions,
    ) -> Result<Self, InferenceError> {
        let m = &bundle.manifest;
        let bad = |reason: String| InferenceError::BundleInvalid {
            reason: format!("bundle {}: {reason}", m.name),
        };
        let max_tokens = usize::try_from(m.param_u64("max_tokens")?)
            .map_err(|_| bad("params.max_tokens is out of range".into()))?;
        let dims = usize::try_from(m.param_u64("dims")?)
            .map_err(|_| bad("params.dims is out of range".into()))?;
        if max_tokens < 3 || dims == 0 {
            return Err(bad(format!(
                "params.max_tokens ({max_tokens}) must be >= 3 and params.dims ({dims}) >= 1"
            )));
        }
        match m.verify.get("rule").and_then(|v| v.as_str()) {
            Some("cosine") => {}
            other => {
                return Err(bad(format!(
                    "verify.rule is {other:?}; this kind takes \"cosine\""
                )))
            }
        }
        let min_cosine = m.verify_f64("min_cosine")?;
        if !(0.0..=1.0).contains(&min_cosine) {
            return Err(bad(format!(
                "verify.min_cosine {min_cosine} is not in [0, 1]"
            )));
        }
        let tokenizer = load_tokenizer(bundle.part("tokenizer")?)?;
        let (session, provider) =
            session_from_file(runtime, bundle.part("model")?, opts.device, opts.threads)?;
        Ok(Embeddings {
            session,
            provider,
            tokenizer,
            max_tokens,
            dims,
            min_cosine,
            max_input_bytes: opts.max_input_bytes,
        })
    }

    /// Token ids of the task's text, with `[CLS]`/`[SEP]`; errors on bad input or a text over
    /// `max_tokens`.
    fn tokenize(&self, input: &[u8]) -> Result<Vec<i64>, InferenceError> {
        check_input_size(input, self.max_input_bytes)?;
        let text = input_text(input)?;
        let enc = self
            .tokenizer
            .encode(text.as_str(), true)
            .map_err(|e| InferenceError::InputInvalid(format!("text does not tokenize: {e}")))?;
        let ids: Vec<i64> = enc.get_ids().iter().map(|&i| i64::from(i)).collect();
        if ids.len() > self.max_tokens {
            return Err(InferenceError::InputInvalid(format!(
                "input text is {} tokens long (special tokens included); this model takes at most {}",
                ids.len(),
                self.max_tokens
            )));
        }
        Ok(ids)
    }
}

fn load_tokenizer(path: &Path) -> Result<Tokenizer, InferenceError> {
    let bad = |reason: String| InferenceError::BundlePart {
        part: "tokenizer".into(),
        reason,
    };
    let mut tok =
        Tokenizer::from_file(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    // The shipped tokenizer.json pads/truncates to 128; tasks are refused over max_tokens instead.
    tok.with_truncation(None)
        .map_err(|e| bad(format!("disabling truncation: {e}")))?;
    tok.with_padding(None);
    Ok(tok)
}

/// The text of a task: the UTF-8 input itself, or the `"input"` string of a JSON object.
fn input_text(input: &[u8]) -> Result<String, InferenceError> {
    let bad = InferenceError::InputInvalid;
    let raw = std::str::from_utf8(input)
        .map_err(|e| bad(format!("input is not valid UTF-8 text: {e}")))?;
    let text = if raw.trim_start().starts_with('{') {
        match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(serde_json::Value::Object(obj)) => match obj.get("input") {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(_) => return Err(bad("JSON input: \"input\" must be a string".into())),
                None => {
                    return Err(bad(
                        "JSON input has no \"input\" string (expected {\"input\": \"text\"})"
                            .into(),
                    ))
                }
            },
            // Not a JSON object: plain text that happens to start with '{'.
            _ => raw.to_string(),
        }
    } else {
        raw.to_string()
    };
    if text.trim().is_empty() {
        return Err(bad("input text is empty (only whitespace)".into()));
    }
    Ok(text)
}

impl Runner for Embeddings {
    fn kind(&self) -> Kind {
        Kind::Embeddings
    }

    fn provider(&self) -> Provider {
        self.provider
    }

    fn run(&mut self, input: &[u8]) -> Result<Vec<u8>, InferenceError> {
        let ids = self.tokenize(input)?;
        let n = ids.len();
        let rt = |what: &str, e: ort::Error| InferenceError::Runtime(format!("{what}: {e}"));
        let shape = vec![1i64, n as i64];
        let ids_t =
            ort::value::Tensor::from_array((shape.clone(), ids)).map_err(|e| rt("input_ids", e))?;
        let mask_t = ort::value::Tensor::from_array((shape, vec![1i64; n]))
            .map_err(|e| rt("attention_mask", e))?;
        let outputs = self
            .session
            .run(ort::inputs!["input_ids" => ids_t, "attention_mask" => mask_t])
            .map_err(|e| rt("run", e))?;
        let value = outputs.get("embedding").ok_or_else(|| {
            InferenceError::Runtime("the graph has no output \"embedding\"".into())
        })?;
        let (_, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| rt("output embedding", e))?;
        if data.len() != self.dims {
            return Err(InferenceError::Runtime(format!(
                "the graph gave {} values; the bundle says dims = {}",
                data.len(),
                self.dims
            )));
        }
        Ok(to_canonical(&Output {
            dims: self.dims,
            embedding: data.to_vec(),
            tokens: n,
        }))
    }

    fn compare(&self, claimed: &[u8], own: &[u8]) -> Result<Verdict, InferenceError> {
        let own: Output = serde_json::from_slice(own).map_err(|e| {
            InferenceError::Runtime(format!("own embeddings output does not parse: {e}"))
        })?;
        let no = |reason: String| {
            Ok(Verdict {
                matches: false,
                quality_ppm: 0,
                reason,
            })
        };
        let claimed: Output = match serde_json::from_slice(claimed) {
            Ok(c) => c,
            Err(e) => return no(format!("claimed output is not an embeddings output: {e}")),
        };
        if claimed.dims != own.dims || claimed.embedding.len() != own.embedding.len() {
            return no(format!(
                "claimed embedding has dims {} and {} values; expected {}",
                claimed.dims,
                claimed.embedding.len(),
                own.embedding.len()
            ));
        }
        let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
        for (&a, &b) in claimed.embedding.iter().zip(&own.embedding) {
            let (a, b) = (f64::from(a), f64::from(b));
            dot += a * b;
            na += a * a;
            nb += b * b;
        }
        let (na, nb) = (na.sqrt(), nb.sqrt());
        if !(na.is_finite() && (na - 1.0).abs() <= NORM_TOLERANCE) {
            return no(format!("claimed embedding has norm {na}, not 1"));
        }
        if nb == 0.0 || !nb.is_finite() {
            return Err(InferenceError::Runtime(format!(
                "own embedding has norm {nb}"
            )));
        }
        let cos = dot / (na * nb);
        let quality_ppm = (cos.clamp(0.0, 1.0) * f64::from(QUALITY_MAX)) as u32;
        let same_tokens = claimed.tokens == own.tokens;
        let matches = cos >= self.min_cosine && same_tokens;
        let mut reason = format!(
            "cosine {cos:.7} {} {}",
            if cos >= self.min_cosine { ">=" } else { "<" },
            self.min_cosine
        );
        if !same_tokens {
            reason += &format!(
                "; claimed {} tokens, the input has {}",
                claimed.tokens, own.tokens
            );
        }
        Ok(Verdict {
            matches,
            quality_ppm,
            reason,
        })
    }

    fn counterfeit(&mut self, input: &[u8], seed: u64) -> Result<Vec<u8>, InferenceError> {
        let tokens = self.tokenize(input)?.len();
        let mut state = seed ^ 0x6a09_e667_f3bc_c908;
        let mut v: Vec<f64> = (0..self.dims)
            .map(|_| {
                // Box-Muller: a Gaussian vector points in a uniformly random direction.
                let u1 = (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
                let u2 = (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
                (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
            })
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        v.iter_mut().for_each(|x| *x /= norm);
        Ok(to_canonical(&Output {
            dims: self.dims,
            embedding: v.into_iter().map(|x| x as f32).collect(),
            tokens,
        }))
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_text_takes_plain_text_or_json_input() {
        assert_eq!(input_text(b"hello").unwrap(), "hello");
        assert_eq!(input_text(br#"{"input":"hi there"}"#).unwrap(), "hi there");
        assert_eq!(input_text(b"{not json").unwrap(), "{not json");
        assert!(input_text(br#"{"text":"x"}"#)
            .unwrap_err()
            .to_string()
            .contains("\"input\""));
        assert!(input_text(br#"{"input":3}"#)
            .unwrap_err()
            .to_string()
            .contains("string"));
        assert!(input_text(b" \n\t ")
            .unwrap_err()
            .to_string()
            .contains("empty"));
        assert!(input_text(br#"{"input":"  "}"#)
            .unwrap_err()
            .to_string()
            .contains("empty"));
        assert!(input_text(&[0x66, 0xff, 0xfe])
            .unwrap_err()
            .to_string()
            .contains("UTF-8"));
    }
}
