//! The `ocr` kind: PP-OCRv4 text detection (DB probability map -> boxes) and recognition (CTC)
//! on a PNG/JPEG image; outputs the text lines in reading order, judged by edit distance.
//!
//! Pipeline (models/ppocr/recipe.py holds the same steps in numpy, and MODEL_CARD.md the why):
//! decode -> resize so the longer side is at most `det_limit_side_len` (sides rounded to
//! multiples of 32) -> normalize -> detector -> binarize at `det_thresh`, 2x2 dilation ->
//! 8-connected components -> axis-aligned box per component, kept when the mean probability
//! inside is at least `det_box_thresh`, grown by DB's unclip offset -> image coordinates ->
//! reading order -> each crop resized to height 48 -> recognizer (one line per call) -> greedy
//! CTC decode. Networks see BGR images, as PaddleOCR trained them.

use std::io::Cursor;

use ort::session::Session;
use ort::value::{DynValue, ValueType};
use serde::{Deserialize, Serialize};

use super::{check_input_size, decode_image, edit_distance, to_canonical, LoadOptions, Runner};
use crate::bundle::{Bundle, Kind, Manifest};
use crate::compare::{Verdict, QUALITY_MAX};
use crate::{session_from_file, InferenceError, Provider, Runtime};

/// One recognized line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    /// `[x0, y0, x1, y1]` in input pixels, `x1`/`y1` exclusive.
    #[serde(rename = "box")]
    bbox: [u32; 4],
    /// Mean of the per-character maximum probabilities, rounded to 4 decimals.
    confidence: f64,
    text: String,
}

/// The kind's output (fields in sorted order, so the canonical JSON has sorted keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Output {
    lines: Vec<Line>,
    /// The lines' texts joined by `\n`: what verification compares.
    text: String,
}

/// Pre/post-processing parameters from the manifest's `params`.
#[derive(Debug, Clone)]
struct Params {
    bgr: bool,
    det_limit: usize,
    det_thresh: f32,
    det_box_thresh: f64,
    det_unclip_ratio: f64,
    det_min_size: usize,
    det_max_candidates: usize,
    det_mean: [f32; 3],
    det_std: [f32; 3],
    rec_height: usize,
    rec_min_width: usize,
    rec_max_width: usize,
    rec_mean: f32,
    rec_std: f32,
    text_score: f64,
    line_tolerance: i64,
    max_pixels: u64,
    max_lines: usize,
}

impl Params {
    fn from_manifest(m: &Manifest) -> Result<Params, InferenceError> {
        let bad = |reason: String| InferenceError::BundleInvalid {
            reason: format!("bundle {}: {reason}", m.name),
        };
        let int = |key: &str, min: u64| -> Result<usize, InferenceError> {
            let v = m.param_u64(key)?;
            if v < min || v > 1 << 26 {
                return Err(bad(format!("params.{key} = {v} is out of range")));
            }
            Ok(v as usize)
        };
        let triple = |key: &str| -> Result<[f32; 3], InferenceError> {
            let v: Vec<f64> = m
                .params
                .get(key)
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
                .unwrap_or_default();
            match v.as_slice() {
                [a, b, c] => Ok([*a as f32, *b as f32, *c as f32]),
                _ => Err(bad(format!("params.{key} must be 3 numbers"))),
            }
        };
        let det_std = triple("det_std")?;
        let rec_std = m.param_f64("rec_std")? as f32;
        if det_std.iter().chain([&rec_std]).any(|s| *s <= 0.0) {
            return Err(bad(
                "params.det_std and params.rec_std must be positive".into()
            ));
        }
        let bgr = match m.param_str("channel_order")? {
            "bgr" => true,
            "rgb" => false,
            other => return Err(bad(format!("params.channel_order {other:?} (rgb or bgr)"))),
        };
        Ok(Params {
            bgr,
            det_limit: int("det_limit_side_len", 32)?,
            det_thresh: m.param_f64("det_thresh")? as f32,
            det_box_thresh: m.param_f64("det_box_thresh")?,
            det_unclip_ratio: m.param_f64("det_unclip_ratio")?,
            det_min_size: int("det_min_size", 0)?,
            det_max_candidates: int("det_max_candidates", 1)?,
            det_mean: triple("det_mean")?,
            det_std,
            rec_height: int("rec_height", 8)?,
            rec_min_width: int("rec_min_width", 8)?,
            rec_max_width: int("rec_max_width", 8)?,
            rec_mean: m.param_f64("rec_mean")? as f32,
            rec_std,
            text_score: m.param_f64("text_score")?,
            line_tolerance: int("line_tolerance", 0)? as i64,
            max_pixels: int("max_pixels", 1)? as u64,
            max_lines: int("max_lines", 1)?,
        })
    }
}

/// PP-OCRv4 detector + recognizer sessions, the character list and the verification tolerance.
pub struct Ocr {
    det: Session,
    det_io: (String, String),
    rec: Session,
    rec_io: (String, String),
    /// Index -> character; 0 is the CTC blank.
    chars: Vec<String>,
    p: Params,
    max_ratio: f64,
    provider: Provider,
    max_input_bytes: usize,
}

fn io_names(s: &Session, part: &str) -> Result<(String, String), InferenceError> {
    match (s.inputs().first(), s.outputs().first()) {
        (Some(i), Some(o)) => Ok((i.name().to_string(), o.name().to_string())),
        _ => Err(InferenceError::BundlePart {
            part: part.into(),
            reason: "the graph has no input or no output".into(),
        }),
    }
}

impl Ocr {
    /// Loads the `detector` and `recognizer` graphs and the `characters` list of `bundle`.
    pub fn load(
        runtime: &Runtime,
        bundle: &Bundle,
        opts: LoadOptions,
    ) -> Result<Self, InferenceError> {
        let m = &bundle.manifest;
        let p = Params::from_manifest(m)?;
        if m.verify.get("rule").and_then(|r| r.as_str()) != Some("edit-distance") {
            return Err(InferenceError::BundleInvalid {
                reason: format!("bundle {}: verify.rule must be \"edit-distance\"", m.name),
            });
        }
        let max_ratio = m.verify_f64("max_ratio")?;
        let text = bundle.part_text("characters")?;
        let mut chars: Vec<String> = text.split('\n').map(str::to_string).collect();
        if chars.last().is_some_and(|c| c.is_empty()) {
            chars.pop();
        }
        let (det, provider) =
            session_from_file(runtime, bundle.part("detector")?, opts.device, opts.threads)?;
        let (rec, _) = session_from_file(
            runtime,
            bundle.part("recognizer")?,
            opts.device,
            opts.threads,
        )?;
        let (det_io, rec_io) = (io_names(&det, "detector")?, io_names(&rec, "recognizer")?);
        if let Some(ValueType::Tensor { shape, .. }) = rec.outputs().first().map(|o| o.dtype()) {
            let classes = shape.last().copied().unwrap_or(-1);
            if classes >= 0 && classes as usize != chars.len() {
                return Err(InferenceError::BundlePart {
                    part: "characters".into(),
                    reason: format!(
                        "{} entries, the recognizer has {classes} classes",
                        chars.len()
                    ),
                });
            }
        }
        Ok(Ocr {
            det,
            det_io,
            rec,
            rec_io,
            chars,
            p,
            max_ratio,
            provider,
            max_input_bytes: opts.max_input_bytes,
        })
    }

    /// Checks the size, reads the image's dimensions from its header (before decoding a single
    /// pixel) and decodes it; a PNG with alpha is composited on white.
    fn image(&self, input: &[u8]) -> Result<image::RgbImage, InferenceError> {
        check_input_size(input, self.max_input_bytes)?;
        let dims = image::ImageReader::new(Cursor::new(input))
            .with_guessed_format()
            .ok()
            .and_then(|r| r.into_dimensions().ok());
        if let Some((w, h)) = dims {
            if w as u64 * h as u64 > self.p.max_pixels {
                return Err(InferenceError::InputInvalid(format!(
                    "image is {w}x{h} = {} pixels; this model takes at most {} pixels",
                    w as u64 * h as u64,
                    self.p.max_pixels
                )));
            }
        }
        let ours = matches!(
            image::guess_format(input),
            Ok(image::ImageFormat::Png | image::ImageFormat::Jpeg)
        );
        match image::load_from_memory(input) {
            // Transparent pixels are paper: composite on white (dropping alpha would turn a
            // transparent background black, under black text).
            Ok(img) if ours && img.color().has_alpha() => {
                let mut rgba = img.into_rgba8();
                for px in rgba.pixels_mut() {
                    let a = px[3] as u32;
                    for c in 0..3 {
                        px[c] = ((px[c] as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
                    }
                }
                Ok(image::DynamicImage::ImageRgba8(rgba).into_rgb8())
            }
            Ok(img) if ours => Ok(img.into_rgb8()),
            // Every error message as the other image kinds give it.
            _ => decode_image(input),
        }
    }

    /// Text boxes `[x0, y0, x1, y1)` in image pixels, in reading order.
    fn detect(&mut self, img: &image::RgbImage) -> Result<Vec<[u32; 4]>, InferenceError> {
        let p = &self.p;
        let (w, h) = (img.width() as usize, img.height() as usize);
        let ratio = if w.max(h) > p.det_limit {
            p.det_limit as f64 / w.max(h) as f64
        } else {
            1.0
        };
        let round32 = |v: usize| ((v + 16) / 32 * 32).max(32);
        let dh = round32((h as f64 * ratio) as usize);
        let dw = round32((w as f64 * ratio) as usize);
        let mut x = vec![0f32; 3 * dh * dw];
        resize_into(
            img,
            [0, 0, w, h],
            (dw, dh),
            dw,
            &mut x,
            (p.det_mean, p.det_std),
            p.bgr,
        );
        let prob = run_f32(
            &mut self.det,
            &self.det_io,
            vec![1, 3, dh as i64, dw as i64],
            x,
        )?;
        if prob.len() != dh * dw {
            return Err(InferenceError::Runtime(format!(
                "detector returned {} values for a {dw}x{dh} map",
                prob.len()
            )));
        }
        // Binarize, then OpenCV's 2x2 dilation: on if the pixel or its up/left neighbours are.
        let on: Vec<bool> = prob.iter().map(|&v| v > p.det_thresh).collect();
        let mut mask = on.clone();
        for y in 0..dh {
            for x in 0..dw {
                let i = y * dw + x;
                mask[i] |= (x > 0 && on[i - 1])
                    || (y > 0 && on[i - dw])
                    || (x > 0 && y > 0 && on[i - dw - 1]);
            }
        }
        // Summed-area table of the map (sums down the columns, then along the rows), so each
        // box's mean costs O(1) however many boxes overlap.
        let mut integral = vec![0f64; (dw + 1) * (dh + 1)];
        let mut column = vec![0f64; dw];
        for y in 0..dh {
            let mut run = 0f64;
            for x in 0..dw {
                column[x] += prob[y * dw + x] as f64;
                run += column[x];
                integral[(y + 1) * (dw + 1) + x + 1] = run;
            }
        }
        let (sx, sy) = (w as f64 / dw as f64, h as f64 / dh as f64);
        let mut boxes = Vec::new();
        for [x0, y0, x1, y1] in components(&mut mask, dw, dh) {
            let (bw, bh) = (x1 - x0, y1 - y0);
            if bw.min(bh) < p.det_min_size {
                continue;
            }
            let at = |x: usize, y: usize| integral[y * (dw + 1) + x];
            let sum = at(x1 + 1, y1 + 1) - at(x0, y1 + 1) - at(x1 + 1, y0) + at(x0, y0);
            if sum / (((bw + 1) * (bh + 1)) as f64) < p.det_box_thresh {
                continue;
            }
            // DB's unclip on a rectangle: offset = area * ratio / perimeter on every side.
            let (fw, fh) = (bw as f64, bh as f64);
            let d = fw * fh * p.det_unclip_ratio / (2.0 * (fw + fh));
            if fw.min(fh) + 2.0 * d < (p.det_min_size + 2) as f64 {
                continue;
            }
            let map = |v: f64, s: f64, n: usize| {
                ((v * s + 0.5).floor().max(0.0) as u32).min(n as u32 - 1)
            };
            let b = [
                map(x0 as f64 - d, sx, w),
                map(y0 as f64 - d, sy, h),
                map(x1 as f64 + d, sx, w),
                map(y1 as f64 + d, sy, h),
            ];
            if b[2] - b[0] > 3 && b[3] - b[1] > 3 {
                boxes.push(b);
                if boxes.len() == p.det_max_candidates {
                    break;
                }
            }
        }
        // rapidocr's order: by top then left, then boxes on one line (|dy| < tol) left to right.
        boxes.sort_by_key(|b| (b[1], b[0]));
        for i in 0..boxes.len().saturating_sub(1) {
            for j in (0..=i).rev() {
                let (a, b) = (boxes[j], boxes[j + 1]);
                if (b[1] as i64 - a[1] as i64).abs() < p.line_tolerance && b[0] < a[0] {
                    boxes.swap(j, j + 1);
                } else {
                    break;
                }
            }
        }
        boxes.truncate(p.max_lines);
        Ok(boxes)
    }

    /// Reads one box: its text (trimmed of spaces) and confidence.
    fn recognize(
        &mut self,
        img: &image::RgbImage,
        b: [u32; 4],
    ) -> Result<(String, f64), InferenceError> {
        let p = &self.p;
        let [x0, y0, x1, y1] = b.map(|v| v as usize);
        let (cw, ch) = (x1 - x0, y1 - y0);
        let hh = p.rec_height;
        let rw = (hh * cw).div_ceil(ch).clamp(1, p.rec_max_width);
        let width = rw.max(p.rec_min_width);
        let mut x = vec![0f32; 3 * hh * width];
        let norm = ([p.rec_mean; 3], [p.rec_std; 3]);
        resize_into(img, [x0, y0, cw, ch], (rw, hh), width, &mut x, norm, p.bgr);
        let shape = vec![1, 3, hh as i64, width as i64];
        let probs = run_f32(&mut self.rec, &self.rec_io, shape, x)?;
        let classes = self.chars.len();
        if probs.is_empty() || probs.len() % classes != 0 {
            return Err(InferenceError::Runtime(format!(
                "recognizer returned {} values, not a multiple of {classes} classes",
                probs.len()
            )));
        }
        let (mut text, mut sum, mut n, mut prev) = (String::new(), 0f64, 0usize, usize::MAX);
        for step in probs.chunks(classes) {
            let (mut k, mut best) = (0, step[0]);
            for (i, &v) in step.iter().enumerate().skip(1) {
                if v > best {
                    (k, best) = (i, v);
                }
            }
            if k != prev && k != 0 {
                text.push_str(&self.chars[k]);
                sum += best as f64;
                n += 1;
            }
            prev = k;
        }
        let conf = if n == 0 { 0.0 } else { sum / n as f64 };
        Ok((text.trim_matches(' ').to_string(), conf))
    }

    fn ocr(&mut self, input: &[u8]) -> Result<Output, InferenceError> {
        let img = self.image(input)?;
        let mut lines = Vec::new();
        for b in self.detect(&img)? {
            let (text, conf) = self.recognize(&img, b)?;
            if !text.is_empty() && conf >= self.p.text_score {
                let confidence = (conf * 10_000.0).round() / 10_000.0;
                lines.push(Line {
                    bbox: b,
                    confidence,
                    text,
                });
            }
        }
        let text = lines
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        Ok(Output { lines, text })
    }
}

/// Bilinear resize (OpenCV INTER_LINEAR geometry: half-pixel centres, clamped edges) of the
/// `[x, y, w, h]` region of `img` to `out_w` x `out_h`, normalized as `(v / 255 - mean) / std`,
/// written planar (C, H, row stride `stride`) into `out`; channels reversed when `bgr`.
fn resize_into(
    img: &image::RgbImage,
    [rx, ry, rw, rh]: [usize; 4],
    (out_w, out_h): (usize, usize),
    stride: usize,
    out: &mut [f32],
    (mean, std): ([f32; 3], [f32; 3]),
    bgr: bool,
) {
    let axis = |n_out: usize, n_in: usize| -> Vec<(usize, usize, f32)> {
        let scale = n_in as f64 / n_out as f64;
        (0..n_out)
            .map(|i| {
                let f = (i as f64 + 0.5) * scale - 0.5;
                let i0 = f.floor();
                let mut a = (f - i0) as f32;
                if i0 < 0.0 {
                    a = 0.0;
                }
                let i0 = (i0.max(0.0) as usize).min(n_in - 1);
                if i0 >= n_in - 1 {
                    a = 0.0;
                }
                (i0, (i0 + 1).min(n_in - 1), a)
            })
            .collect()
    };
    let (xs, ys) = (axis(out_w, rw), axis(out_h, rh));
    let (src, iw) = (img.as_raw().as_slice(), img.width() as usize);
    let plane = out_h * stride;
    for (oy, &(y0, y1, ay)) in ys.iter().enumerate() {
        let r0 = &src[(ry + y0) * iw * 3..];
        let r1 = &src[(ry + y1) * iw * 3..];
        for (ox, &(x0, x1, ax)) in xs.iter().enumerate() {
            let (i0, i1) = ((rx + x0) * 3, (rx + x1) * 3);
            for c in 0..3 {
                let top = r0[i0 + c] as f32 * (1.0 - ax) + r0[i1 + c] as f32 * ax;
                let bot = r1[i0 + c] as f32 * (1.0 - ax) + r1[i1 + c] as f32 * ax;
                let v = top * (1.0 - ay) + bot * ay;
                let oc = if bgr { 2 - c } else { c };
                out[oc * plane + oy * stride + ox] = (v / 255.0 - mean[oc]) / std[oc];
            }
        }
    }
}

/// Bounding boxes `[x0, y0, x1, y1]` (inclusive) of the 8-connected components of `mask`
/// (cleared as it goes), in row-major order of each component's first pixel. Iterative.
fn components(mask: &mut [bool], w: usize, h: usize) -> Vec<[usize; 4]> {
    let mut boxes = Vec::new();
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] {
            continue;
        }
        mask[start] = false;
        stack.push(start);
        let mut b = [start % w, start / w, start % w, start / w];
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let j = ny * w + nx;
                    if mask[j] {
                        mask[j] = false;
                        stack.push(j);
                    }
                }
            }
        }
        boxes.push(b);
    }
    boxes
}

/// Runs a one-input, one-output f32 graph and copies the output out.
fn run_f32(
    session: &mut Session,
    (input, output): &(String, String),
    shape: Vec<i64>,
    data: Vec<f32>,
) -> Result<Vec<f32>, InferenceError> {
    let value: DynValue = ort::value::Tensor::from_array((shape, data))
        .map_err(|e| InferenceError::Runtime(format!("building input tensor: {e}")))?
        .into_dyn();
    let outputs = session
        .run(vec![(input.clone(), value)])
        .map_err(|e| InferenceError::Runtime(e.to_string()))?;
    let value = outputs.get(output.as_str()).ok_or_else(|| {
        InferenceError::Runtime(format!("output {output:?} missing from the run"))
    })?;
    let (_, data) = value
        .try_extract_tensor::<f32>()
        .map_err(|e| InferenceError::Runtime(format!("output {output:?}: {e}")))?;
    Ok(data.to_vec())
}

impl Runner for Ocr {
    fn kind(&self) -> Kind {
        Kind::Ocr
    }

    fn provider(&self) -> Provider {
        self.provider
    }

    fn run(&mut self, input: &[u8]) -> Result<Vec<u8>, InferenceError> {
        Ok(to_canonical(&self.ocr(input)?))
    }

    /// Accepts when `edit_distance(claimed.text, own.text) <= max_ratio * max(chars)`;
    /// `quality_ppm` is `1 - distance / max(chars)`. Claimed outputs that are not this kind's
    /// JSON, or whose `text` is not their lines joined by `\n`, do not match.
    fn compare(&self, claimed: &[u8], own: &[u8]) -> Result<Verdict, InferenceError> {
        let own: Output = serde_json::from_slice(own)
            .map_err(|e| InferenceError::Runtime(format!("own OCR output does not parse: {e}")))?;
        let claimed: Output = match serde_json::from_slice(claimed) {
            Ok(c) => c,
            Err(e) => {
                return Ok(Verdict::mismatch(format!(
                    "claimed output is not OCR JSON: {e}"
                )))
            }
        };
        let joined = claimed
            .lines
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        if joined != claimed.text {
            return Ok(Verdict::mismatch(
                "claimed text is not its lines joined by \\n".into(),
            ));
        }
        let (a, b) = (claimed.text.chars().count(), own.text.chars().count());
        let longest = a.max(b);
        if longest == 0 {
            return Ok(Verdict {
                matches: true,
                quality_ppm: QUALITY_MAX,
                reason: "both outputs have no text".into(),
            });
        }
        let allowed = (self.max_ratio * longest as f64).floor() as usize;
        // The length difference bounds the distance from below: skip the quadratic work.
        let dist = if a.abs_diff(b) > allowed {
            a.abs_diff(b)
        } else {
            edit_distance(&claimed.text, &own.text)
        };
        let ratio = dist as f64 / longest as f64;
        let quality_ppm = ((1.0 - ratio).max(0.0) * QUALITY_MAX as f64).floor() as u32;
        Ok(Verdict {
            matches: dist <= allowed,
            quality_ppm,
            reason: format!(
                "edit distance {}{dist} over {longest} characters (at most {allowed} accepted)",
                if dist == a.abs_diff(b) && dist > allowed {
                    ">= "
                } else {
                    ""
                }
            ),
        })
    }

    /// Detects the real boxes, then fills each with random characters of the list.
    fn counterfeit(&mut self, input: &[u8], seed: u64) -> Result<Vec<u8>, InferenceError> {
        let img = self.image(input)?;
        let boxes = self.detect(&img)?;
        let mut state = seed;
        let mut next = move || {
            // splitmix64
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let usable = self.chars.len().saturating_sub(2).max(1) as u64;
        let lines: Vec<Line> = boxes
            .into_iter()
            .map(|b| {
                let len = ((b[2] - b[0]) * 2 / (b[3] - b[1]).max(1)).clamp(1, 64) as usize;
                // Indices 1..len-1: never the blank, nor the trailing space (no edge spaces).
                let text: String = (0..len)
                    .filter_map(|_| self.chars.get(1 + (next() % usable) as usize))
                    .map(String::as_str)
                    .collect();
                let confidence = 0.5 + (next() % 5000) as f64 / 10_000.0;
                Line {
                    bbox: b,
                    confidence,
                    text,
                }
            })
            .collect();
        let text = lines
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        Ok(to_canonical(&Output { lines, text }))
    }
}
