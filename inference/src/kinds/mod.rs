//! Task kinds: how a bundle turns what a user has (text, chat messages, PNG/JPEG, WAV) into a
//! canonical output, and how a validator judges a worker's claimed output for the same input.
//!
//! Every kind implements [`Runner`]. Outputs are canonical JSON (serde_json's compact bytes of
//! the kind's output struct; `keccak256` of them is the committed output hash), except `tensor`,
//! whose output stays canonical safetensors.

use serde::Serialize;

use crate::bundle::{Bundle, Kind};
use crate::compare::Verdict;
use crate::{Device, InferenceError, Provider, Runtime};

pub mod embeddings;
pub mod image_classification;
pub mod ocr;
pub mod speech;
pub mod tensor;
pub mod text_generation;
mod util;

pub use util::{decode_image, decode_wav_16k, edit_distance};

/// A loaded bundle, ready to run tasks of its kind and to judge other workers' outputs.
///
/// One runner per thread: ONNX Runtime sessions run with `&mut self` in ort 2.0.
pub trait Runner: Send {
    /// The kind this runner serves.
    fn kind(&self) -> Kind;

    /// The execution provider the runner's sessions use.
    fn provider(&self) -> Provider;

    /// Runs one task: the user's input bytes in, the canonical output bytes out. Bad input is an
    /// error naming what is wrong ([`InferenceError::InputInvalid`], ...), never a panic.
    fn run(&mut self, input: &[u8]) -> Result<Vec<u8>, InferenceError>;

    /// Runs one task like [`Runner::run`], calling `on_token(token_id, text_delta)` as each
    /// generated token is decided (text-generation streams its answer this way; the deltas
    /// concatenate to the output's text). The default runs the task without calling it.
    fn run_streaming(
        &mut self,
        input: &[u8],
        on_token: &mut dyn FnMut(u32, &str),
    ) -> Result<Vec<u8>, InferenceError> {
        let _ = on_token;
        self.run(input)
    }

    /// Runs several tasks; one result per input, in order. The default runs them one by one
    /// (batching changes padding, and with it the bits of some outputs).
    fn run_batch(&mut self, inputs: &[&[u8]]) -> Vec<Result<Vec<u8>, InferenceError>> {
        inputs.iter().map(|i| self.run(i)).collect()
    }

    /// Judges `claimed`, a worker's output for `input`, by the kind's rule (see the README's
    /// verification table). A claimed output that is malformed or wrong is `Ok` with
    /// `matches == false`; `Err` means the validator itself could not judge (bad bundle,
    /// runtime failure) and must not sign. The default re-runs the task and compares with
    /// [`Runner::compare`].
    fn verify(&mut self, input: &[u8], claimed: &[u8]) -> Result<Verdict, InferenceError> {
        let own = self.run(input)?;
        self.compare(claimed, &own)
    }

    /// Compares a claimed output with the validator's own output of the same input.
    fn compare(&self, claimed: &[u8], own: &[u8]) -> Result<Verdict, InferenceError>;

    /// TEST-ONLY (`--test-cheat-rate`): a plausible but fake output for `input` made without
    /// running the model (random tokens, a made-up label...), from `seed`.
    fn counterfeit(&mut self, input: &[u8], seed: u64) -> Result<Vec<u8>, InferenceError>;
}

/// Options every kind takes when it is loaded.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Execution device.
    pub device: Device,
    /// Intra-op threads (ONNX Runtime's default when `None`).
    pub threads: Option<usize>,
    /// Largest input accepted, in bytes.
    pub max_input_bytes: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            device: Device::Cpu,
            threads: None,
            max_input_bytes: crate::DEFAULT_MAX_INPUT_BYTES,
        }
    }
}

/// Loads `bundle` as a runner of its kind.
pub fn load(
    runtime: &Runtime,
    bundle: &Bundle,
    opts: LoadOptions,
) -> Result<Box<dyn Runner>, InferenceError> {
    Ok(match bundle.manifest.kind {
        Kind::Tensor => Box::new(tensor::TensorRunner::load(runtime, bundle, opts)?),
        Kind::TextGeneration => Box::new(text_generation::TextGeneration::load(
            runtime, bundle, opts,
        )?),
        Kind::Embeddings => Box::new(embeddings::Embeddings::load(runtime, bundle, opts)?),
        Kind::SpeechRecognition => {
            Box::new(speech::SpeechRecognition::load(runtime, bundle, opts)?)
        }
        Kind::Ocr => Box::new(ocr::Ocr::load(runtime, bundle, opts)?),
        Kind::ImageClassification => Box::new(image_classification::ImageClassification::load(
            runtime, bundle, opts,
        )?),
    })
}

/// Canonical output bytes: serde_json's compact encoding of `value`.
pub fn to_canonical<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("kind outputs are plain data and always serialize")
}

/// Checks the input size against `max` before anything decodes it.
pub fn check_input_size(input: &[u8], max: usize) -> Result<(), InferenceError> {
    if input.is_empty() {
        return Err(InferenceError::InputInvalid("input is empty".into()));
    }
    if input.len() > max {
        return Err(InferenceError::InputTooLarge {
            size: input.len(),
            max,
        });
    }
    Ok(())
}
