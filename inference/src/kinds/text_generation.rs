//! The `text-generation` kind: chat messages (ChatML) or a raw prompt in, greedy-decoded text out,
//! from a Llama decoder graph with a KV cache; validators judge claims by one teacher-forced pass.
//!
//! Input (UTF-8): `{"messages":[{"role":"system"|"user"|"assistant","content":"..."}],
//! "max_tokens":n,"stop":["..."]}`, `{"prompt":"raw text, no template","max_tokens":n}`, or plain
//! non-JSON text (one user message). Output: `{"finish_reason":"stop"|"length","prompt_tokens":n,
//! "text":"...","token_ids":[...]}`; `token_ids` keeps the stop token that ended the answer, `text`
//! does not. A stop string ends the answer at the token that completes it, and `text` is cut
//! before the stop string. An input object may also name `"stream_to"` (an http(s) URL where the
//! worker streams tokens to the gateway, see `protocol::stream`): it does not change the output.
//!
//! Verification re-reads the claim instead of re-generating it: one forward pass over the prompt
//! and the claimed tokens (no KV cache), and every claimed token must be within `verify.margin` of
//! its position's largest logit (greedy up to numerical noise across machines).

use std::collections::HashSet;

use ort::session::Session;
use ort::value::{DynValue, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokenizers::Tokenizer;

use super::{check_input_size, to_canonical, LoadOptions, Runner};
use crate::bundle::{Bundle, Kind};
use crate::compare::{Verdict, QUALITY_MAX};
use crate::{session_from_file, InferenceError, Provider, Runtime};

/// Most stop strings a request may give, and the longest one, in bytes.
const MAX_STOP_STRINGS: usize = 8;
const MAX_STOP_BYTES: usize = 128;
/// Longest `stream_to` URL (as `protocol::stream::MAX_URL_BYTES`).
const MAX_STREAM_URL_BYTES: usize = 512;

/// The canonical output of one generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Output {
    finish_reason: String,
    prompt_tokens: usize,
    text: String,
    token_ids: Vec<u32>,
}

/// A checked request: prompt ids, token budget and stop strings.
struct Request {
    prompt: Vec<u32>,
    max_tokens: usize,
    stop: Vec<String>,
}

/// A loaded SmolLM2-style decoder (one ONNX graph with `past_*`/`present_*` KV tensors) and its
/// tokenizer.
pub struct TextGeneration {
    session: Session,
    provider: Provider,
    /// Parses special tokens (raw prompts); `literal` never does (chat message text).
    tokenizer: Tokenizer,
    literal: Tokenizer,
    name: String,
    layers: usize,
    kv_heads: usize,
    head_dim: usize,
    vocab: usize,
    context: usize,
    bos: Option<u32>,
    stop_ids: Vec<u32>,
    max_tokens_default: usize,
    max_tokens_limit: usize,
    system_prompt: Option<String>,
    im_start: u32,
    im_end: u32,
    margin: f32,
    max_input_bytes: usize,
}

impl TextGeneration {
    /// Loads the bundle's `model` (decoder graph) and `tokenizer` (tokenizer.json) parts and
    /// checks that the graph, tokenizer and `params` agree.
    pub fn load(
        runtime: &Runtime,
        bundle: &Bundle,
        opts: LoadOptions,
    ) -> Result<Self, InferenceError> {
        let m = &bundle.manifest;
        let bad = |reason: String| InferenceError::BundleInvalid {
            reason: format!("bundle {}: {reason}", m.name),
        };
        if m.param_str("chat_template")? != "chatml" {
            return Err(bad("params.chat_template must be \"chatml\"".into()));
        }
        if m.verify.get("rule").and_then(Value::as_str) != Some("teacher-forced") {
            return Err(bad("verify.rule must be \"teacher-forced\"".into()));
        }
        let margin = m.verify_f64("margin")?;
        if !(0.0..=10.0).contains(&margin) {
            return Err(bad(format!("verify.margin {margin} is outside 0..=10")));
        }
        let usize_param = |key: &str| -> Result<usize, InferenceError> {
            let v = m.param_u64(key)?;
            usize::try_from(v)
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| bad(format!("params.{key} must be a positive integer")))
        };
        let id_list = |key: &str| -> Result<Vec<u32>, InferenceError> {
            m.params
                .get(key)
                .and_then(Value::as_array)
                .and_then(|a| {
                    a.iter()
                        .map(|v| v.as_u64().and_then(|v| u32::try_from(v).ok()))
                        .collect::<Option<Vec<u32>>>()
                })
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    bad(format!(
                        "params.{key} must be a non-empty list of token ids"
                    ))
                })
        };
        let bos = match m.params.get("bos_token_id") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| bad("params.bos_token_id must be a token id or null".into()))?,
            ),
        };
        let system_prompt = match m.params.get("system_prompt") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_str()
                    .ok_or_else(|| bad("params.system_prompt must be a string".into()))?
                    .to_string(),
            ),
        };
        let (max_tokens_default, max_tokens_limit) = (
            usize_param("max_tokens_default")?,
            usize_param("max_tokens_limit")?,
        );
        if max_tokens_default > max_tokens_limit {
            return Err(bad(
                "params.max_tokens_default exceeds params.max_tokens_limit".into(),
            ));
        }

        let tok_path = bundle.part("tokenizer")?;
        let tok_err = |e: Box<dyn std::error::Error + Send + Sync>| InferenceError::BundlePart {
            part: "tokenizer".into(),
            reason: format!("{}: {e}", tok_path.display()),
        };
        let tokenizer = Tokenizer::from_file(tok_path).map_err(tok_err)?;
        let mut literal = Tokenizer::from_file(tok_path).map_err(tok_err)?;
        literal.set_encode_special_tokens(true);
        let special = |s: &str| {
            tokenizer
                .token_to_id(s)
                .ok_or_else(|| bad(format!("the tokenizer has no {s} token")))
        };
        let (im_start, im_end) = (special("<|im_start|>")?, special("<|im_end|>")?);
        let vocab = usize_param("vocab_size")?;
        if tokenizer.get_vocab_size(true) != vocab {
            return Err(bad(format!(
                "the tokenizer has {} tokens, params.vocab_size is {vocab}",
                tokenizer.get_vocab_size(true)
            )));
        }
        let stop_ids = id_list("stop_token_ids")?;
        if stop_ids.iter().chain(&bos).any(|&id| id as usize >= vocab) {
            return Err(bad(
                "a stop or bos token id is outside the vocabulary".into()
            ));
        }

        let (session, provider) =
            session_from_file(runtime, bundle.part("model")?, opts.device, opts.threads)?;
        let layers = usize_param("num_layers")?;
        let inputs: HashSet<&str> = session.inputs().iter().map(|i| i.name()).collect();
        let outputs: HashSet<&str> = session.outputs().iter().map(|o| o.name()).collect();
        for i in 0..layers {
            for (set, name) in [
                (&inputs, format!("past_key_{i}")),
                (&inputs, format!("past_value_{i}")),
                (&outputs, format!("present_key_{i}")),
                (&outputs, format!("present_value_{i}")),
            ] {
                if !set.contains(name.as_str()) {
                    return Err(bad(format!("the model graph has no tensor {name}")));
                }
            }
        }
        if inputs.len() != 1 + 2 * layers || !inputs.contains("input_ids") {
            return Err(bad(format!(
                "the model graph must take input_ids and {} past tensors",
                2 * layers
            )));
        }
        if !outputs.contains("logits") {
            return Err(bad("the model graph has no output logits".into()));
        }
        Ok(TextGeneration {
            session,
            provider,
            tokenizer,
            literal,
            name: m.name.clone(),
            layers,
            kv_heads: usize_param("num_kv_heads")?,
            head_dim: usize_param("head_dim")?,
            vocab,
            context: usize_param("context_length")?,
            bos,
            stop_ids,
            max_tokens_default,
            max_tokens_limit,
            system_prompt,
            im_start,
            im_end,
            margin: margin as f32,
            max_input_bytes: opts.max_input_bytes,
        })
    }

    /// Parses and checks a task input into prompt ids, token budget and stop strings.
    fn request(&self, input: &[u8]) -> Result<Request, InferenceError> {
        check_input_size(input, self.max_input_bytes)?;
        let bad = |m: String| InferenceError::InputInvalid(m);
        let text =
            std::str::from_utf8(input).map_err(|e| bad(format!("input is not UTF-8 text: {e}")))?;
        if !text.trim_start().starts_with('{') {
            if text.trim().is_empty() {
                return Err(bad("the prompt is empty".into()));
            }
            let prompt = self.chatml(&[("user".to_string(), text.to_string())])?;
            return self.checked(prompt, None, Vec::new());
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|e| bad(format!("input starts with '{{' but is not valid JSON: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| bad("input is not a JSON object".into()))?;
        if let Some(k) = obj.keys().find(|k| {
            !matches!(
                k.as_str(),
                "messages" | "prompt" | "max_tokens" | "stop" | "stream_to"
            )
        }) {
            return Err(bad(format!(
                "unknown field {k:?} (expected messages or prompt, max_tokens, stop, stream_to)"
            )));
        }
        if let Some(v) = obj.get("stream_to").filter(|v| !v.is_null()) {
            let url = v
                .as_str()
                .ok_or_else(|| bad("field stream_to must be a string (an http(s) URL)".into()))?;
            let lower = url.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://"))
                || url.len() > MAX_STREAM_URL_BYTES
            {
                return Err(bad(format!(
                    "field stream_to must be an http:// or https:// URL of at most {MAX_STREAM_URL_BYTES} bytes"
                )));
            }
        }
        let max_tokens = match obj.get("max_tokens") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|v| usize::try_from(v).ok())
                    .ok_or_else(|| bad("field max_tokens must be a non-negative integer".into()))?,
            ),
        };
        let mut stop = Vec::new();
        if let Some(v) = obj.get("stop").filter(|v| !v.is_null()) {
            let list = v
                .as_array()
                .ok_or_else(|| bad("field stop must be a list of strings".into()))?;
            if list.len() > MAX_STOP_STRINGS {
                return Err(bad(format!(
                    "field stop has {} strings; at most {MAX_STOP_STRINGS} are accepted",
                    list.len()
                )));
            }
            for (i, s) in list.iter().enumerate() {
                match s.as_str() {
                    Some(s) if !s.is_empty() && s.len() <= MAX_STOP_BYTES => stop.push(s.into()),
                    _ => {
                        return Err(bad(format!(
                            "field stop[{i}] must be a non-empty string of at most {MAX_STOP_BYTES} bytes"
                        )))
                    }
                }
            }
        }
        let prompt = match (obj.get("messages"), obj.get("prompt")) {
            (Some(_), Some(_)) => {
                return Err(bad("give either messages or prompt, not both".into()))
            }
            (None, None) => return Err(bad("missing field messages (or prompt)".into())),
            (None, Some(p)) => {
                let p = p
                    .as_str()
                    .ok_or_else(|| bad("field prompt must be a string".into()))?;
                if p.is_empty() {
                    return Err(bad("field prompt is empty".into()));
                }
                let enc = self
                    .tokenizer
                    .encode(p, false)
                    .map_err(|e| bad(format!("field prompt does not tokenize: {e}")))?;
                self.bos
                    .iter()
                    .copied()
                    .chain(enc.get_ids().iter().copied())
                    .collect()
            }
            (Some(list), None) => {
                let list = list
                    .as_array()
                    .ok_or_else(|| bad("field messages must be a list".into()))?;
                if list.is_empty() {
                    return Err(bad("field messages is empty".into()));
                }
                let mut messages = Vec::with_capacity(list.len());
                for (i, msg) in list.iter().enumerate() {
                    let field = |key: &str| {
                        msg.get(key).and_then(Value::as_str).ok_or_else(|| {
                            bad(format!("field messages[{i}].{key} must be a string"))
                        })
                    };
                    let (role, content) = (field("role")?, field("content")?);
                    if !matches!(role, "system" | "user" | "assistant") {
                        return Err(bad(format!(
                            "field messages[{i}].role {role:?} is not system, user or assistant"
                        )));
                    }
                    if msg.as_object().is_some_and(|o| o.len() != 2) {
                        return Err(bad(format!(
                            "field messages[{i}] must hold only role and content"
                        )));
                    }
                    messages.push((role.to_string(), content.to_string()));
                }
                self.chatml(&messages)?
            }
        };
        self.checked(prompt, max_tokens, stop)
    }

    fn checked(
        &self,
        prompt: Vec<u32>,
        max_tokens: Option<usize>,
        stop: Vec<String>,
    ) -> Result<Request, InferenceError> {
        let bad = |m: String| InferenceError::InputInvalid(m);
        let max_tokens = max_tokens.unwrap_or(self.max_tokens_default);
        if max_tokens == 0 || max_tokens > self.max_tokens_limit {
            return Err(bad(format!(
                "field max_tokens is {max_tokens}; it must be between 1 and {}",
                self.max_tokens_limit
            )));
        }
        if prompt.is_empty() {
            return Err(bad("the prompt is empty".into()));
        }
        if prompt.len() + max_tokens > self.context {
            return Err(bad(format!(
                "the prompt of {} tokens plus max_tokens {max_tokens} exceeds the context of {} tokens",
                prompt.len(),
                self.context
            )));
        }
        Ok(Request {
            prompt,
            max_tokens,
            stop,
        })
    }

    /// ChatML ids: `<|im_start|>{role}\n{content}<|im_end|>\n` per message (the bundle's system
    /// prompt first when the first message is not a system one), then `<|im_start|>assistant\n`.
    /// Message text is tokenized literally: `<|im_end|>` typed by a user stays plain text.
    fn chatml(&self, messages: &[(String, String)]) -> Result<Vec<u32>, InferenceError> {
        let enc = |s: &str| -> Result<Vec<u32>, InferenceError> {
            self.literal
                .encode(s, false)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| {
                    InferenceError::InputInvalid(format!("message does not tokenize: {e}"))
                })
        };
        let mut ids = Vec::new();
        let system = match (&self.system_prompt, messages.first()) {
            (Some(s), Some((role, _))) if role != "system" => {
                Some(("system".to_string(), s.clone()))
            }
            _ => None,
        };
        for (role, content) in system.iter().chain(messages) {
            ids.push(self.im_start);
            ids.extend(enc(&format!("{role}\n{content}"))?);
            ids.push(self.im_end);
            ids.extend(enc("\n")?);
        }
        ids.push(self.im_start);
        ids.extend(enc("assistant\n")?);
        Ok(ids)
    }

    fn empty_cache(&self) -> Result<Vec<DynValue>, InferenceError> {
        (0..2 * self.layers)
            .map(|_| {
                Tensor::from_array(([1, self.kv_heads, 0, self.head_dim], Vec::<f32>::new()))
                    .map(|t| t.into_dyn())
                    .map_err(|e| InferenceError::Runtime(format!("building the KV cache: {e}")))
            })
            .collect()
    }

    /// One decoder pass over `ids` after the cache `pasts`; `read` sees the logits `[S * vocab]`
    /// in place. Returns what `read` returned and the new cache.
    fn forward<R>(
        &mut self,
        ids: &[u32],
        pasts: Vec<DynValue>,
        read: impl FnOnce(&[f32]) -> Result<R, InferenceError>,
    ) -> Result<(R, Vec<DynValue>), InferenceError> {
        let rt = |what: &str, e: ort::Error| InferenceError::Runtime(format!("{what}: {e}"));
        let ids: Vec<i64> = ids.iter().map(|&t| i64::from(t)).collect();
        let n = ids.len();
        let mut inputs: Vec<(String, DynValue)> = Vec::with_capacity(1 + pasts.len());
        let input_ids = Tensor::from_array(([1, n], ids)).map_err(|e| rt("input_ids", e))?;
        inputs.push(("input_ids".into(), input_ids.into_dyn()));
        for (k, past) in pasts.into_iter().enumerate() {
            let kind = if k % 2 == 0 { "key" } else { "value" };
            inputs.push((format!("past_{kind}_{}", k / 2), past));
        }
        let mut outputs = self.session.run(inputs).map_err(|e| rt("decoder", e))?;
        let logits = outputs
            .get("logits")
            .ok_or_else(|| InferenceError::Runtime("the decoder returned no logits".into()))?;
        let (_, data) = logits
            .try_extract_tensor::<f32>()
            .map_err(|e| rt("logits", e))?;
        if data.len() != n * self.vocab {
            return Err(InferenceError::Runtime(format!(
                "logits hold {} values, expected {n} x {}",
                data.len(),
                self.vocab
            )));
        }
        let result = read(data)?;
        let mut presents = Vec::with_capacity(2 * self.layers);
        for i in 0..self.layers {
            for kind in ["key", "value"] {
                let name = format!("present_{kind}_{i}");
                presents.push(outputs.remove(name.as_str()).ok_or_else(|| {
                    InferenceError::Runtime(format!("the decoder returned no {name}"))
                })?);
            }
        }
        Ok((result, presents))
    }

    fn decode(&self, ids: &[u32]) -> Result<String, InferenceError> {
        self.tokenizer
            .decode(ids, false)
            .map_err(|e| InferenceError::Runtime(format!("decoding tokens: {e}")))
    }

    /// The text of `ids` cut before the first stop string, if it holds one.
    fn cut_at_stop(&self, ids: &[u32], stop: &[String]) -> Result<Option<String>, InferenceError> {
        if stop.is_empty() {
            return Ok(None);
        }
        let text = self.decode(ids)?;
        Ok(stop
            .iter()
            .filter_map(|s| text.find(s.as_str()))
            .min()
            .map(|at| text[..at].to_string()))
    }

    /// Greedy decoding; `on_token` (when streaming) hears each token as it is decided, with the
    /// text it adds.
    fn generate(
        &mut self,
        req: &Request,
        mut on_token: Option<&mut OnToken<'_>>,
    ) -> Result<Output, InferenceError> {
        let mut pasts = self.empty_cache()?;
        let mut feed = req.prompt.clone();
        let mut ids = Vec::new();
        let mut streamed = Streamed::default();
        let vocab = self.vocab;
        loop {
            let (next, presents) = self.forward(&feed, pasts, |logits| {
                argmax(&logits[logits.len() - vocab..])
            })?;
            pasts = presents;
            ids.push(next);
            let (text, finish) = if self.stop_ids.contains(&next) {
                (self.decode(&ids[..ids.len() - 1])?, "stop")
            } else if let Some(text) = self.cut_at_stop(&ids, &req.stop)? {
                (text, "stop")
            } else if ids.len() == req.max_tokens {
                (self.decode(&ids)?, "length")
            } else {
                if let Some(f) = on_token.as_mut() {
                    let text = self.decode(&ids)?;
                    f(next, streamed.delta(&text, &req.stop, false));
                }
                feed = vec![next];
                continue;
            };
            if let Some(f) = on_token.as_mut() {
                f(next, streamed.delta(&text, &req.stop, true));
            }
            return Ok(Output {
                finish_reason: finish.into(),
                prompt_tokens: req.prompt.len(),
                text,
                token_ids: ids,
            });
        }
    }

    /// The structural checks of a claim (everything but the logits): `Err` holds the reason.
    fn check_structure(
        &self,
        req: &Request,
        claim: &Output,
    ) -> Result<Result<(), String>, InferenceError> {
        let ids = &claim.token_ids;
        if claim.prompt_tokens != req.prompt.len() {
            return Ok(Err(format!(
                "prompt_tokens is {}, the prompt has {} tokens",
                claim.prompt_tokens,
                req.prompt.len()
            )));
        }
        if ids.is_empty() || ids.len() > req.max_tokens {
            return Ok(Err(format!(
                "{} tokens claimed; between 1 and max_tokens {} expected",
                ids.len(),
                req.max_tokens
            )));
        }
        if let Some(j) = ids.iter().position(|&t| t as usize >= self.vocab) {
            return Ok(Err(format!(
                "token {j} (id {}) is outside the vocabulary",
                ids[j]
            )));
        }
        let ends_with_stop = self.stop_ids.contains(&ids[ids.len() - 1]);
        let body = if ends_with_stop {
            &ids[..ids.len() - 1]
        } else {
            &ids[..]
        };
        if let Some(j) = body.iter().position(|t| self.stop_ids.contains(t)) {
            return Ok(Err(format!(
                "stop token id {} at position {j}, before the end",
                ids[j]
            )));
        }
        // The same rule as generation: after each token, a stop string ends the answer.
        for k in 1..=body.len() {
            if let Some(text) = self.cut_at_stop(&body[..k], &req.stop)? {
                if k != ids.len() {
                    return Ok(Err(format!(
                        "a stop string is complete at token {}, but the answer goes on",
                        k - 1
                    )));
                }
                return Ok(expect_fields(claim, "stop", &text));
            }
        }
        let text = self.decode(body)?;
        if ends_with_stop {
            return Ok(expect_fields(claim, "stop", &text));
        }
        if ids.len() != req.max_tokens {
            return Ok(Err(format!(
                "{} tokens without a stop token or stop string, but max_tokens is {}",
                ids.len(),
                req.max_tokens
            )));
        }
        Ok(expect_fields(claim, "length", &text))
    }
}

fn expect_fields(claim: &Output, finish: &str, text: &str) -> Result<(), String> {
    if claim.finish_reason != finish {
        return Err(format!(
            "finish_reason is {:?}, the tokens say {finish:?}",
            claim.finish_reason
        ));
    }
    if claim.text != text {
        return Err(format!(
            "text {:?} is not the decoded tokens {text:?}",
            claim.text
        ));
    }
    Ok(())
}

/// Index of the largest value, the lowest index on ties; NaN logits are an error.
/// Hears each generated token (id, text delta).
type OnToken<'a> = dyn FnMut(u32, &str) + 'a;

/// The text already streamed; deltas hold back what might still change: an incomplete UTF-8
/// sequence (decoded as U+FFFD) and a tail that could be the start of a stop string.
#[derive(Default)]
struct Streamed {
    sent: usize,
    diverged: bool,
}

impl Streamed {
    /// The part of `text` (the answer so far, or the final answer when `last`) not sent yet.
    fn delta<'t>(&mut self, text: &'t str, stop: &[String], last: bool) -> &'t str {
        if self.diverged || text.len() < self.sent || !text.is_char_boundary(self.sent) {
            // the decoded text no longer extends what was sent: send nothing more (the committed
            // answer is what counts; the gateway sees the difference)
            self.diverged = true;
            return "";
        }
        let mut end = text.len();
        if !last {
            end = text.trim_end_matches('\u{FFFD}').len();
            // hold back the longest tail that is a proper prefix of a stop string
            let hold = stop
                .iter()
                .filter_map(|s| {
                    (1..s.len())
                        .rev()
                        .find(|&k| s.is_char_boundary(k) && text[..end].ends_with(&s[..k]))
                })
                .max()
                .unwrap_or(0);
            end -= hold;
        }
        if end <= self.sent {
            return "";
        }
        let d = &text[self.sent..end];
        self.sent = end;
        d
    }
}

fn argmax(row: &[f32]) -> Result<u32, InferenceError> {
    let mut best = (0usize, f32::NEG_INFINITY);
    for (i, &v) in row.iter().enumerate() {
        if v.is_nan() {
            return Err(InferenceError::Runtime(format!("logit {i} is NaN")));
        }
        if v > best.1 {
            best = (i, v);
        }
    }
    Ok(best.0 as u32)
}

fn parse_output(bytes: &[u8]) -> Result<Output, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("not a text-generation output: {e}"))
}

impl Runner for TextGeneration {
    fn kind(&self) -> Kind {
        Kind::TextGeneration
    }

    fn provider(&self) -> Provider {
        self.provider
    }

    fn run(&mut self, input: &[u8]) -> Result<Vec<u8>, InferenceError> {
        let req = self.request(input)?;
        Ok(to_canonical(&self.generate(&req, None)?))
    }

    fn run_streaming(
        &mut self,
        input: &[u8],
        on_token: &mut dyn FnMut(u32, &str),
    ) -> Result<Vec<u8>, InferenceError> {
        let req = self.request(input)?;
        Ok(to_canonical(&self.generate(&req, Some(on_token))?))
    }

    fn verify(&mut self, input: &[u8], claimed: &[u8]) -> Result<Verdict, InferenceError> {
        let req = self.request(input)?;
        let claim = match parse_output(claimed) {
            Ok(c) => c,
            Err(reason) => return Ok(Verdict::mismatch(format!("claimed output is {reason}"))),
        };
        if let Err(reason) = self.check_structure(&req, &claim)? {
            return Ok(Verdict::mismatch(reason));
        }
        let (p, n, vocab, margin) = (
            req.prompt.len(),
            claim.token_ids.len(),
            self.vocab,
            self.margin,
        );
        let all: Vec<u32> = req.prompt.iter().chain(&claim.token_ids).copied().collect();
        let empty = self.empty_cache()?;
        // For each claimed token: (its gap below the row's max logit, the argmax).
        let (gaps, _) = self.forward(&all, empty, |logits| {
            let mut gaps = Vec::with_capacity(n);
            for (j, &t) in claim.token_ids.iter().enumerate() {
                let row = &logits[(p + j - 1) * vocab..(p + j) * vocab];
                let best = argmax(row)?;
                gaps.push((row[best as usize] - row[t as usize], best));
            }
            Ok(gaps)
        })?;
        let within = gaps.iter().filter(|(g, _)| *g <= margin).count();
        let quality_ppm = (within as u64 * u64::from(QUALITY_MAX) / n as u64) as u32;
        let largest = gaps.iter().map(|(g, _)| *g).fold(0.0f32, f32::max);
        let reason = match gaps.iter().position(|(g, _)| *g > margin) {
            None => format!(
                "all {n} tokens within {margin} of the largest logit (largest gap {largest:.2e})"
            ),
            Some(j) => format!(
                "token {j} (id {}) is {:.4} below the largest logit (id {}), margin {margin}; {within} of {n} tokens within it",
                claim.token_ids[j], gaps[j].0, gaps[j].1
            ),
        };
        Ok(Verdict {
            matches: within == n,
            quality_ppm,
            reason,
        })
    }

    fn compare(&self, claimed: &[u8], own: &[u8]) -> Result<Verdict, InferenceError> {
        let own = parse_output(own)
            .map_err(|e| InferenceError::Runtime(format!("{}: own output is {e}", self.name)))?;
        let claim = match parse_output(claimed) {
            Ok(c) => c,
            Err(reason) => return Ok(Verdict::mismatch(format!("claimed output is {reason}"))),
        };
        let (a, b) = (&claim.token_ids, &own.token_ids);
        let same = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let longest = a.len().max(b.len()).max(1);
        if a == b {
            return Ok(Verdict {
                matches: true,
                quality_ppm: QUALITY_MAX,
                reason: format!("all {} token ids equal", a.len()),
            });
        }
        Ok(Verdict {
            matches: false,
            quality_ppm: (same as u64 * u64::from(QUALITY_MAX) / longest as u64) as u32,
            reason: format!(
                "token ids differ at position {same} ({} claimed, {} own)",
                a.len(),
                b.len()
            ),
        })
    }

    fn counterfeit(&mut self, input: &[u8], seed: u64) -> Result<Vec<u8>, InferenceError> {
        let req = self.request(input)?;
        let mut state = seed;
        let mut ids = Vec::with_capacity(req.max_tokens);
        while ids.len() < req.max_tokens {
            let t = (splitmix64(&mut state) % self.vocab as u64) as u32;
            if !self.stop_ids.contains(&t) {
                ids.push(t);
            }
        }
        Ok(to_canonical(&Output {
            finish_reason: "length".into(),
            prompt_tokens: req.prompt.len(),
            text: self.decode(&ids)?,
            token_ids: ids,
        }))
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
