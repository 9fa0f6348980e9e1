//! The `tensor` kind: raw canonical safetensors in and out (the first protocol version), judged
//! by the rule in the manifest's `verify` (`{"rule": <on-chain rule number>, "tolerance": <n>}`,
//! exact bytes when absent); the registry's rule governs on-chain audits.

use super::{LoadOptions, Runner};
use crate::bundle::{Bundle, Kind};
use crate::compare::{self, CompareRule, Verdict};
use crate::{InferenceError, Model, Provider, Runtime};

/// A single ONNX graph run on safetensors inputs.
pub struct TensorRunner {
    model: Model,
    rule: CompareRule,
}

impl TensorRunner {
    /// Loads the bundle's `model` part.
    pub fn load(
        runtime: &Runtime,
        bundle: &Bundle,
        opts: LoadOptions,
    ) -> Result<Self, InferenceError> {
        let mut model = Model::load(runtime, bundle.part("model")?, opts.device, opts.threads)?;
        model.set_max_input_bytes(opts.max_input_bytes);
        let verify = &bundle.manifest.verify;
        let rule = match verify.get("rule").and_then(|v| v.as_u64()) {
            None => CompareRule::ExactBytes,
            Some(r) => {
                let tol = verify
                    .get("tolerance")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0);
                let (r, tol) = (u8::try_from(r), u32::try_from(tol));
                let (Ok(r), Ok(tol)) = (r, tol) else {
                    return Err(InferenceError::BundleInvalid {
                        reason: format!(
                            "bundle {}: verify.rule or verify.tolerance out of range",
                            bundle.manifest.name
                        ),
                    });
                };
                CompareRule::from_onchain(r, tol).map_err(|e| InferenceError::BundleInvalid {
                    reason: format!("bundle {}: verify: {e}", bundle.manifest.name),
                })?
            }
        };
        Ok(TensorRunner { model, rule })
    }

    /// The loaded graph.
    pub fn model(&mut self) -> &mut Model {
        &mut self.model
    }
}

impl Runner for TensorRunner {
    fn kind(&self) -> Kind {
        Kind::Tensor
    }

    fn provider(&self) -> Provider {
        self.model.provider()
    }

    fn run(&mut self, input: &[u8]) -> Result<Vec<u8>, InferenceError> {
        self.model.run(input)
    }

    fn run_batch(&mut self, inputs: &[&[u8]]) -> Vec<Result<Vec<u8>, InferenceError>> {
        self.model.run_batch(inputs)
    }

    fn compare(&self, claimed: &[u8], own: &[u8]) -> Result<Verdict, InferenceError> {
        compare::compare(&self.rule, claimed, own)
            .map_err(|e| InferenceError::Runtime(format!("compare: {e}")))
    }

    fn counterfeit(&mut self, _input: &[u8], _seed: u64) -> Result<Vec<u8>, InferenceError> {
        Err(InferenceError::Runtime(
            "tensor bundles are counterfeited by the executor from the graph's declared outputs"
                .into(),
        ))
    }
}
