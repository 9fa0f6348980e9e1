//! The `image-classification` kind: a PNG or JPEG in, the top-5 ImageNet-style labels with their
//! softmax probabilities out (`{"top5":[{"index","label","probability"}]}`), judged by top-1.
//!
//! Pre-processing (from the manifest's params): decode to RGB, resize so the shorter side is
//! `resize_shorter` (bilinear: `image`'s Triangle filter, the longer side rounded half up),
//! center-crop `crop` x `crop`, then raw 0..255 values as f32 NCHW into the graph (`image` ->
//! `logits`; the graph normalizes). Softmax in f64; ties go to the lower index.

use std::io::Cursor;

use image::imageops::{self, FilterType};
use ort::session::Session;
use serde::{Deserialize, Serialize};

use super::{check_input_size, decode_image, to_canonical, LoadOptions, Runner};
use crate::bundle::{Bundle, Kind};
use crate::compare::{Verdict, QUALITY_MAX};
use crate::{session_from_file, InferenceError, Provider, Runtime};

/// Largest decoded image accepted, in pixels (checked from the header, before decoding).
const MAX_PIXELS: u64 = 40_000_000;
/// Largest resized side accepted, in multiples of `resize_shorter` (a 1 x 10000 strip would
/// otherwise become 256 x 2,560,000 pixels).
const MAX_ASPECT: u64 = 32;

/// One class of the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Class {
    index: usize,
    label: String,
    probability: f64,
}

/// The canonical output of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Output {
    top5: Vec<Class>,
}

/// A loaded image-classification bundle: the classifier session and its labels.
pub struct ImageClassification {
    session: Session,
    provider: Provider,
    labels: Vec<String>,
    resize_shorter: u32,
    crop: u32,
    top_k: usize,
    max_input_bytes: usize,
}

impl ImageClassification {
    /// Loads the bundle's `model` and `labels` parts; reads `params.resize_shorter`,
    /// `params.crop`, `params.interpolation` (`"bilinear"`), `params.top_k`, and `verify.rule`
    /// (`"top1"`).
    pub fn load(
        runtime: &Runtime,
        bundle: &Bundle,
        opts: LoadOptions,
    ) -> Result<Self, InferenceError> {
        let m = &bundle.manifest;
        let bad = |reason: String| InferenceError::BundleInvalid {
            reason: format!("bundle {}: {reason}", m.name),
        };
        let small = |key: &str| -> Result<u32, InferenceError> {
            u32::try_from(m.param_u64(key)?)
                .ok()
                .filter(|v| (1..=4096).contains(v))
                .ok_or_else(|| bad(format!("params.{key} must be in 1..=4096")))
        };
        let (resize_shorter, crop, top_k) =
            (small("resize_shorter")?, small("crop")?, small("top_k")?);
        if crop > resize_shorter {
            return Err(bad(format!(
                "params.crop {crop} exceeds params.resize_shorter {resize_shorter}"
            )));
        }
        if m.param_str("interpolation")? != "bilinear" {
            return Err(bad("params.interpolation must be \"bilinear\"".into()));
        }
        match m.verify.get("rule").and_then(|v| v.as_str()) {
            Some("top1") => {}
            other => {
                return Err(bad(format!(
                    "verify.rule is {other:?}; this kind takes \"top1\""
                )))
            }
        }
        let labels: Vec<String> = bundle
            .part_text("labels")?
            .lines()
            .map(str::to_string)
            .collect();
        if labels.len() < top_k as usize || labels.iter().any(|l| l.trim().is_empty()) {
            return Err(InferenceError::BundlePart {
                part: "labels".into(),
                reason: format!(
                    "{} labels (one per line, none empty) for top_k {top_k}",
                    labels.len()
                ),
            });
        }
        let (session, provider) =
            session_from_file(runtime, bundle.part("model")?, opts.device, opts.threads)?;
        Ok(ImageClassification {
            session,
            provider,
            labels,
            resize_shorter,
            crop,
            top_k: top_k as usize,
            max_input_bytes: opts.max_input_bytes,
        })
    }

    /// Decodes, resizes and crops the input into the graph's NCHW f32 layout.
    fn pixels(&self, input: &[u8]) -> Result<Vec<f32>, InferenceError> {
        check_input_size(input, self.max_input_bytes)?;
        // Check the header's size first, so a small file cannot make us allocate gigabytes.
        if let Ok(format @ (image::ImageFormat::Png | image::ImageFormat::Jpeg)) =
            image::guess_format(input)
        {
            if let Ok((w, h)) =
                image::ImageReader::with_format(Cursor::new(input), format).into_dimensions()
            {
                self.check_size(w, h)?;
            }
        }
        let img = decode_image(input)?;
        let (w, h) = img.dimensions();
        let (nw, nh) = self.check_size(w, h)?;
        let resized = imageops::resize(&img, nw, nh, FilterType::Triangle);
        let (left, top) = ((nw - self.crop) / 2, (nh - self.crop) / 2);
        let cropped = imageops::crop_imm(&resized, left, top, self.crop, self.crop).to_image();
        let plane = (self.crop * self.crop) as usize;
        let mut out = vec![0f32; 3 * plane];
        for (i, px) in cropped.pixels().enumerate() {
            out[i] = f32::from(px[0]);
            out[plane + i] = f32::from(px[1]);
            out[2 * plane + i] = f32::from(px[2]);
        }
        Ok(out)
    }

    /// Checks an image's size and returns its resized size (shorter side `resize_shorter`, the
    /// longer one scaled and rounded half up).
    fn check_size(&self, w: u32, h: u32) -> Result<(u32, u32), InferenceError> {
        let bad = InferenceError::InputInvalid;
        if w == 0 || h == 0 {
            return Err(bad(format!("image is {w} x {h} pixels")));
        }
        if u64::from(w) * u64::from(h) > MAX_PIXELS {
            return Err(bad(format!(
                "image is {w} x {h} pixels; at most {MAX_PIXELS} pixels are accepted"
            )));
        }
        let (short, long) = (u64::from(w.min(h)), u64::from(w.max(h)));
        let target = u64::from(self.resize_shorter);
        let scaled = (long * target + short / 2) / short;
        if scaled > target * MAX_ASPECT {
            return Err(bad(format!(
                "image is {w} x {h} pixels; an aspect ratio over {MAX_ASPECT}:1 is not accepted"
            )));
        }
        let scaled = scaled as u32; // <= 4096 * 32
        let r = self.resize_shorter;
        Ok(if w <= h { (r, scaled) } else { (scaled, r) })
    }
}

impl Runner for ImageClassification {
    fn kind(&self) -> Kind {
        Kind::ImageClassification
    }

    fn provider(&self) -> Provider {
        self.provider
    }

    fn run(&mut self, input: &[u8]) -> Result<Vec<u8>, InferenceError> {
        let pixels = self.pixels(input)?;
        let rt = |what: &str, e: ort::Error| InferenceError::Runtime(format!("{what}: {e}"));
        let c = i64::from(self.crop);
        let tensor = ort::value::Tensor::from_array((vec![1i64, 3, c, c], pixels))
            .map_err(|e| rt("image", e))?;
        let outputs = self
            .session
            .run(ort::inputs!["image" => tensor])
            .map_err(|e| rt("run", e))?;
        let value = outputs
            .get("logits")
            .ok_or_else(|| InferenceError::Runtime("the graph has no output \"logits\"".into()))?;
        let (_, logits) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| rt("output logits", e))?;
        if logits.len() != self.labels.len() {
            return Err(InferenceError::Runtime(format!(
                "the graph gave {} logits for {} labels",
                logits.len(),
                self.labels.len()
            )));
        }
        if logits.iter().any(|l| !l.is_finite()) {
            return Err(InferenceError::Runtime(
                "the graph gave a non-finite logit".into(),
            ));
        }
        let max = logits
            .iter()
            .fold(f64::NEG_INFINITY, |m, &l| m.max(f64::from(l)));
        let exps: Vec<f64> = logits.iter().map(|&l| (f64::from(l) - max).exp()).collect();
        let sum: f64 = exps.iter().sum();
        let mut order: Vec<usize> = (0..exps.len()).collect();
        order.sort_by(|&a, &b| exps[b].total_cmp(&exps[a]).then(a.cmp(&b)));
        let top5 = order[..self.top_k]
            .iter()
            .map(|&i| Class {
                index: i,
                label: self.labels[i].clone(),
                probability: (exps[i] / sum * 1e6).round() / 1e6,
            })
            .collect();
        Ok(to_canonical(&Output { top5 }))
    }

    fn compare(&self, claimed: &[u8], own: &[u8]) -> Result<Verdict, InferenceError> {
        let own: Output = serde_json::from_slice(own).map_err(|e| {
            InferenceError::Runtime(format!("own classification output does not parse: {e}"))
        })?;
        let Some(own_top) = own.top5.first() else {
            return Err(InferenceError::Runtime(
                "own classification output is empty".into(),
            ));
        };
        let no = |reason: String| {
            Ok(Verdict {
                matches: false,
                quality_ppm: 0,
                reason,
            })
        };
        let claimed: Output = match serde_json::from_slice(claimed) {
            Ok(c) => c,
            Err(e) => {
                return no(format!(
                    "claimed output is not a classification output: {e}"
                ))
            }
        };
        if claimed.top5.len() != own.top5.len() {
            return no(format!(
                "claimed {} classes; expected {}",
                claimed.top5.len(),
                own.top5.len()
            ));
        }
        for c in &claimed.top5 {
            if self.labels.get(c.index) != Some(&c.label) || !(0.0..=1.0).contains(&c.probability) {
                return no(format!(
                    "claimed class {} {:?} (p {}) is not a label of this model with a probability",
                    c.index, c.label, c.probability
                ));
            }
        }
        let overlap = claimed
            .top5
            .iter()
            .filter(|c| own.top5.iter().any(|o| o.index == c.index))
            .count();
        let quality_ppm = (overlap as u64 * u64::from(QUALITY_MAX) / own.top5.len() as u64) as u32;
        let claimed_top = &claimed.top5[0];
        let matches = claimed_top.index == own_top.index;
        Ok(Verdict {
            matches,
            quality_ppm,
            reason: format!(
                "claimed top-1 {} ({}), own top-1 {} ({}); top-{} overlap {overlap}",
                claimed_top.index,
                claimed_top.label,
                own_top.index,
                own_top.label,
                own.top5.len()
            ),
        })
    }

    fn counterfeit(&mut self, _input: &[u8], seed: u64) -> Result<Vec<u8>, InferenceError> {
        let mut state = seed ^ 0xbb67_ae85_84ca_a73b;
        let mut unit = || (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
        let mut picked: Vec<usize> = Vec::with_capacity(self.top_k);
        while picked.len() < self.top_k {
            let i = (unit() * self.labels.len() as f64) as usize % self.labels.len();
            if !picked.contains(&i) {
                picked.push(i);
            }
        }
        // Plausible decreasing probabilities: each class takes a share of what is left.
        let mut left = 1.0;
        let top5 = picked
            .into_iter()
            .map(|i| {
                let p = left * (0.3 + 0.5 * unit());
                left -= p;
                Class {
                    index: i,
                    label: self.labels[i].clone(),
                    probability: (p * 1e6).round() / 1e6,
                }
            })
            .collect();
        Ok(to_canonical(&Output { top5 }))
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
