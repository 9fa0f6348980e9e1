//! The `speech-recognition` kind: a 16 kHz WAV in, Whisper's greedy transcript out
//! (`{"text","token_ids"}`); validators judge a claim by one teacher-forced decoder pass.
//!
//! The bundle holds `encoder` (audio f32 `[1, 480000]`, 30 s zero-padded, with the log-mel front
//! end inside -> every decoder layer's cross-attention keys `cross_k` `[L, H, D, 1500]` and values
//! `cross_v` `[L, H, 1500, D]`), `decoder` (`tokens` `[1, S]` at positions `P..P+S`, `cross_k`,
//! `cross_v`, the self-attention cache `past_k`/`past_v` `[L, H, P, D]` -> `logits` `[1, S, V]`,
//! `present_k`/`present_v` `[L, H, P+S, D]`) and `tokenizer` (byte-level BPE).
//!
//! Greedy decoding starts from `params.prompt_token_ids` and takes, at each step, the largest
//! logit among allowed ids (below `suppress_from_id`, not in `suppress_token_ids`, and at the first
//! step not in `suppress_at_begin_ids`; the lowest id wins ties) until `eot_token_id` or
//! `max_tokens`. `token_ids` leaves the end token out; `text` is their decoding, trimmed.
//! Verification: every claimed token, and the end token when the claim is shorter than
//! `max_tokens`, must be allowed and within `verify.margin` of its position's largest allowed
//! logit in one decoder pass over prompt + claim (greedy up to numerical noise across machines).

use ort::session::Session;
use ort::value::{DynValue, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokenizers::Tokenizer;

use super::{check_input_size, decode_wav_16k, to_canonical, LoadOptions, Runner};
use crate::bundle::{Bundle, Kind};
use crate::compare::{Verdict, QUALITY_MAX};
use crate::{session_from_file, InferenceError, Provider, Runtime};

/// The canonical output of one transcription (fields in key order: canonical JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Output {
    text: String,
    token_ids: Vec<u32>,
}

/// A loaded Whisper bundle: encoder and decoder sessions, tokenizer and decoding parameters.
pub struct SpeechRecognition {
    encoder: Session,
    decoder: Session,
    provider: Provider,
    tokenizer: Tokenizer,
    name: String,
    prompt: Vec<u32>,
    eot: u32,
    rules: Rules,
    dims: Dims,
    max_tokens: usize,
    max_seconds: f64,
    audio_samples: usize,
    margin: f32,
    max_input_bytes: usize,
}

/// Which ids greedy decoding may choose.
struct Rules {
    /// `allowed[id]`: the id may be chosen (any step).
    allowed: Vec<bool>,
    /// Also barred at the first generated position.
    begin_banned: Vec<u32>,
}

impl Rules {
    /// Whether greedy decoding may choose `id` at generated position `pos`.
    fn may_choose(&self, id: u32, pos: usize) -> bool {
        self.allowed.get(id as usize).copied().unwrap_or(false)
            && !(pos == 0 && self.begin_banned.contains(&id))
    }

    /// The largest allowed logit of `row` at generated position `pos`: (id, value); ties go to
    /// the lowest id, NaN is an error.
    fn best(&self, row: &[f32], pos: usize) -> Result<(u32, f32), InferenceError> {
        let mut best: Option<(u32, f32)> = None;
        for (i, (&v, &ok)) in row.iter().zip(&self.allowed).enumerate() {
            if v.is_nan() {
                return Err(InferenceError::Runtime(format!("logit {i} is NaN")));
            }
            if ok && best.is_none_or(|(_, b)| v > b) && self.may_choose(i as u32, pos) {
                best = Some((i as u32, v));
            }
        }
        best.ok_or_else(|| InferenceError::Runtime("no token may be chosen".into()))
    }
}

/// Decoder tensor sizes.
struct Dims {
    layers: usize,
    heads: usize,
    head_dim: usize,
    vocab: usize,
}

/// One decoder pass over `tokens` after the cache `past` (empty when `None`); `read` sees the
/// logits `[S * vocab]` in place. Returns what `read` returned and the new cache.
fn decode_step<R>(
    decoder: &mut Session,
    dims: &Dims,
    tokens: &[u32],
    cross: &(DynValue, DynValue),
    past: Option<(DynValue, DynValue)>,
    read: impl FnOnce(&[f32]) -> Result<R, InferenceError>,
) -> Result<(R, (DynValue, DynValue)), InferenceError> {
    let rt = |what: &str, e: ort::Error| InferenceError::Runtime(format!("{what}: {e}"));
    let (past_k, past_v) = match past {
        Some(p) => p,
        None => {
            let empty = || {
                Tensor::from_array((
                    [dims.layers, dims.heads, 0, dims.head_dim],
                    Vec::<f32>::new(),
                ))
                .map(|t| t.into_dyn())
                .map_err(|e| rt("empty cache", e))
            };
            (empty()?, empty()?)
        }
    };
    let n = tokens.len();
    let ids: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
    let t = Tensor::from_array(([1, n], ids)).map_err(|e| rt("tokens", e))?;
    let mut out = decoder
        .run(ort::inputs![
            "tokens" => t,
            "cross_k" => &cross.0,
            "cross_v" => &cross.1,
            "past_k" => past_k,
            "past_v" => past_v,
        ])
        .map_err(|e| rt("decoder", e))?;
    let logits = out
        .get("logits")
        .ok_or_else(|| InferenceError::Runtime("the decoder returned no logits".into()))?;
    let (_, data) = logits
        .try_extract_tensor::<f32>()
        .map_err(|e| rt("logits", e))?;
    if data.len() != n * dims.vocab {
        return Err(InferenceError::Runtime(format!(
            "logits hold {} values, expected {n} x {}",
            data.len(),
            dims.vocab
        )));
    }
    let result = read(data)?;
    let mut take = |name: &str| {
        out.remove(name)
            .ok_or_else(|| InferenceError::Runtime(format!("the decoder returned no {name}")))
    };
    Ok((result, (take("present_k")?, take("present_v")?)))
}

impl SpeechRecognition {
    /// Loads the bundle's `encoder`, `decoder` and `tokenizer` parts and checks `params` and
    /// `verify` (`rule` must be `"teacher-forced"`).
    pub fn load(
        runtime: &Runtime,
        bundle: &Bundle,
        opts: LoadOptions,
    ) -> Result<Self, InferenceError> {
        let m = &bundle.manifest;
        let bad = |reason: String| InferenceError::BundleInvalid {
            reason: format!("bundle {}: {reason}", m.name),
        };
        let size = |key: &str| -> Result<usize, InferenceError> {
            usize::try_from(m.param_u64(key)?)
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| bad(format!("params.{key} must be a positive integer")))
        };
        let ids = |key: &str| -> Result<Vec<u32>, InferenceError> {
            m.params
                .get(key)
                .and_then(Value::as_array)
                .and_then(|a| {
                    a.iter()
                        .map(|v| v.as_u64().and_then(|v| u32::try_from(v).ok()))
                        .collect::<Option<Vec<u32>>>()
                })
                .ok_or_else(|| bad(format!("params.{key} must be a list of token ids")))
        };
        if m.param_u64("sample_rate")? != 16_000 {
            return Err(bad("params.sample_rate must be 16000".into()));
        }
        if m.verify.get("rule").and_then(Value::as_str) != Some("teacher-forced") {
            return Err(bad("verify.rule must be \"teacher-forced\"".into()));
        }
        let margin = m.verify_f64("margin")?;
        if !(0.0..=10.0).contains(&margin) {
            return Err(bad(format!("verify.margin {margin} is outside 0..=10")));
        }
        let (vocab, max_tokens, audio_samples) = (
            size("vocab_size")?,
            size("max_tokens")?,
            size("audio_samples")?,
        );
        let (layers, heads, head_dim) =
            (size("num_layers")?, size("num_heads")?, size("head_dim")?);
        let max_seconds = m.param_f64("max_seconds")?;
        if !(max_seconds > 0.0 && max_seconds * 16_000.0 <= audio_samples as f64) {
            return Err(bad(format!(
                "params.max_seconds {max_seconds} must be positive and fit params.audio_samples"
            )));
        }
        let prompt = ids("prompt_token_ids")?;
        let eot = u32::try_from(m.param_u64("eot_token_id")?)
            .map_err(|_| bad("params.eot_token_id is out of range".into()))?;
        let suppress_from = size("suppress_from_id")?;
        let begin_banned = ids("suppress_at_begin_ids")?;
        let suppressed = ids("suppress_token_ids")?;
        if prompt.is_empty() || prompt.len() + max_tokens > size("context_length")? {
            return Err(bad(
                "params.prompt_token_ids must be non-empty and, with max_tokens, fit context_length"
                    .into(),
            ));
        }
        let in_vocab = |&t: &u32| (t as usize) < vocab;
        if !(prompt.iter().all(in_vocab)
            && in_vocab(&eot)
            && begin_banned.iter().all(in_vocab)
            && suppressed.iter().all(in_vocab)
            && (eot as usize) < suppress_from.min(vocab)
            && !suppressed.contains(&eot))
        {
            return Err(bad(
                "params: a token id is outside the vocabulary, or eot_token_id is suppressed"
                    .into(),
            ));
        }
        let mut allowed: Vec<bool> = (0..vocab).map(|i| i < suppress_from).collect();
        for &t in &suppressed {
            allowed[t as usize] = false;
        }
        let tok_path = bundle.part("tokenizer")?;
        let tokenizer = Tokenizer::from_file(tok_path).map_err(|e| InferenceError::BundlePart {
            part: "tokenizer".into(),
            reason: format!("{}: {e}", tok_path.display()),
        })?;
        let (encoder, provider) =
            session_from_file(runtime, bundle.part("encoder")?, opts.device, opts.threads)?;
        let (decoder, _) =
            session_from_file(runtime, bundle.part("decoder")?, opts.device, opts.threads)?;
        for (part, session, names) in [
            ("encoder", &encoder, &["audio"][..]),
            (
                "decoder",
                &decoder,
                &["tokens", "cross_k", "cross_v", "past_k", "past_v"][..],
            ),
        ] {
            let have: Vec<&str> = session.inputs().iter().map(|o| o.name()).collect();
            if have != names {
                return Err(InferenceError::BundlePart {
                    part: part.into(),
                    reason: format!("graph inputs are {have:?}, this kind expects {names:?}"),
                });
            }
        }
        Ok(SpeechRecognition {
            encoder,
            decoder,
            provider,
            tokenizer,
            name: m.name.clone(),
            prompt,
            eot,
            rules: Rules {
                allowed,
                begin_banned,
            },
            dims: Dims {
                layers,
                heads,
                head_dim,
                vocab,
            },
            max_tokens,
            max_seconds,
            audio_samples,
            margin: margin as f32,
            max_input_bytes: opts.max_input_bytes,
        })
    }

    /// Decodes the task's WAV bytes into 16 kHz mono samples (errors name what is wrong).
    fn audio(&self, input: &[u8]) -> Result<Vec<f32>, InferenceError> {
        check_input_size(input, self.max_input_bytes)?;
        decode_wav_16k(input, self.max_seconds)
    }

    /// Runs the encoder on `audio` zero-padded to the graph's length: (cross_k, cross_v).
    fn encode(&mut self, audio: &[f32]) -> Result<(DynValue, DynValue), InferenceError> {
        let rt = |what: &str, e: ort::Error| InferenceError::Runtime(format!("{what}: {e}"));
        let mut padded = vec![0f32; self.audio_samples];
        let n = audio.len().min(self.audio_samples);
        padded[..n].copy_from_slice(&audio[..n]);
        let t =
            Tensor::from_array(([1, self.audio_samples], padded)).map_err(|e| rt("audio", e))?;
        let mut out = self
            .encoder
            .run(ort::inputs!["audio" => t])
            .map_err(|e| rt("encoder", e))?;
        let mut take = |name: &str| {
            out.remove(name)
                .ok_or_else(|| InferenceError::Runtime(format!("the encoder returned no {name}")))
        };
        Ok((take("cross_k")?, take("cross_v")?))
    }

    /// Greedy transcription of `audio`: the generated ids, end token excluded.
    fn transcribe(&mut self, audio: &[f32]) -> Result<Vec<u32>, InferenceError> {
        let cross = self.encode(audio)?;
        let mut out: Vec<u32> = Vec::new();
        let mut tokens = self.prompt.clone();
        let mut past = None;
        while out.len() < self.max_tokens {
            let pos = out.len();
            let rules = &self.rules;
            let vocab = self.dims.vocab;
            let (next, cache) = decode_step(
                &mut self.decoder,
                &self.dims,
                &tokens,
                &cross,
                past,
                |logits| {
                    rules
                        .best(&logits[logits.len() - vocab..], pos)
                        .map(|b| b.0)
                },
            )?;
            if next == self.eot {
                break;
            }
            out.push(next);
            tokens = vec![next];
            past = Some(cache);
        }
        Ok(out)
    }

    fn text_of(&self, ids: &[u32]) -> Result<String, InferenceError> {
        self.tokenizer
            .decode(ids, true)
            .map(|s| s.trim().to_string())
            .map_err(|e| InferenceError::Runtime(format!("decoding tokens: {e}")))
    }
}

fn parse_output(bytes: &[u8]) -> Result<Output, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("not a speech-recognition output: {e}"))
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Runner for SpeechRecognition {
    fn kind(&self) -> Kind {
        Kind::SpeechRecognition
    }

    fn provider(&self) -> Provider {
        self.provider
    }

    fn run(&mut self, input: &[u8]) -> Result<Vec<u8>, InferenceError> {
        let audio = self.audio(input)?;
        let token_ids = self.transcribe(&audio)?;
        let text = self.text_of(&token_ids)?;
        Ok(to_canonical(&Output { text, token_ids }))
    }

    fn verify(&mut self, input: &[u8], claimed: &[u8]) -> Result<Verdict, InferenceError> {
        let audio = self.audio(input)?;
        let claim = match parse_output(claimed) {
            Ok(c) => c,
            Err(reason) => return Ok(Verdict::mismatch(format!("claimed output is {reason}"))),
        };
        let n = claim.token_ids.len();
        if n > self.max_tokens {
            return Ok(Verdict::mismatch(format!(
                "{n} claimed tokens exceed max_tokens {}",
                self.max_tokens
            )));
        }
        if let Some((j, t)) = claim
            .token_ids
            .iter()
            .enumerate()
            .find(|&(j, &t)| !self.rules.may_choose(t, j))
        {
            return Ok(Verdict::mismatch(format!(
                "claimed token {j} (id {t}) is never generated (special, suppressed or out of the vocabulary)"
            )));
        }
        if self.text_of(&claim.token_ids)? != claim.text {
            return Ok(Verdict::mismatch(
                "claimed text is not the decoding of the claimed token ids".into(),
            ));
        }
        // Positions to check: every claimed token, then the end token unless the claim stopped
        // at max_tokens.
        let mut expected = claim.token_ids.clone();
        if n < self.max_tokens {
            expected.push(self.eot);
        }
        let cross = self.encode(&audio)?;
        let mut seq = self.prompt.clone();
        seq.extend(&claim.token_ids);
        let p = self.prompt.len();
        let (rules, vocab) = (&self.rules, self.dims.vocab);
        let (gaps, _) = decode_step(
            &mut self.decoder,
            &self.dims,
            &seq,
            &cross,
            None,
            |logits| {
                let mut gaps = Vec::with_capacity(expected.len());
                for (j, &t) in expected.iter().enumerate() {
                    let row = &logits[(p + j - 1) * vocab..(p + j) * vocab];
                    let (best, value) = rules.best(row, j)?;
                    let gap = if rules.may_choose(t, j) {
                        value - row[t as usize]
                    } else {
                        f32::INFINITY
                    };
                    gaps.push((gap, best));
                }
                Ok(gaps)
            },
        )?;
        let margin = self.margin;
        let within = gaps.iter().filter(|(g, _)| *g <= margin).count();
        let total = gaps.len().max(1);
        let largest = gaps.iter().map(|(g, _)| *g).fold(0.0f32, f32::max);
        let reason = match gaps.iter().position(|(g, _)| *g > margin) {
            None => format!(
                "all {} positions within {margin} of the largest allowed logit (largest gap {largest:.2e})",
                gaps.len()
            ),
            Some(j) => format!(
                "{} at position {j} (id {}) is {:.4} below the largest allowed logit (id {}), margin {margin}; {within} of {} positions within it",
                if j == n { "the end token" } else { "token" },
                expected[j],
                gaps[j].0,
                gaps[j].1,
                gaps.len()
            ),
        };
        Ok(Verdict {
            matches: within == gaps.len(),
            quality_ppm: (within as u64 * u64::from(QUALITY_MAX) / total as u64) as u32,
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
        if claim == own {
            return Ok(Verdict {
                matches: true,
                quality_ppm: QUALITY_MAX,
                reason: format!("all {} token ids and the text equal", a.len()),
            });
        }
        let same = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let longest = a.len().max(b.len()).max(1);
        let reason = if a == b {
            "token ids equal but the text differs".to_string()
        } else {
            format!(
                "token ids differ at position {same} ({} claimed, {} own)",
                a.len(),
                b.len()
            )
        };
        Ok(Verdict {
            matches: false,
            quality_ppm: if a == b {
                0
            } else {
                (same as u64 * u64::from(QUALITY_MAX) / longest as u64) as u32
            },
            reason,
        })
    }

    fn counterfeit(&mut self, input: &[u8], seed: u64) -> Result<Vec<u8>, InferenceError> {
        let audio = self.audio(input)?;
        // About three tokens a second, like real speech, from the ids greedy decoding may choose.
        let n = (1 + audio.len() * 3 / 16_000).min(self.max_tokens);
        let mut state = seed;
        let mut ids = Vec::with_capacity(n);
        while ids.len() < n {
            let t = (splitmix64(&mut state) % self.dims.vocab as u64) as u32;
            if t != self.eot && self.rules.may_choose(t, ids.len()) {
                ids.push(t);
            }
        }
        let text = self.text_of(&ids)?;
        Ok(to_canonical(&Output {
            text,
            token_ids: ids,
        }))
    }
}
