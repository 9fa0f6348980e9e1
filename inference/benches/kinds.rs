//! Tasks/s of the embeddings (all-MiniLM-L6-v2) and image-classification (EfficientNet-Lite0)
//! kinds through the executor's inference path: `Bundle::open_dir` + `kinds::load` (what
//! `executor/src/engine.rs` calls after fetching a bundle), then `Runner::run`, input bytes in,
//! canonical output bytes out (decode, validate, run, encode). 1 intra-op thread, one task per
//! call. `cargo bench -p inference --bench kinds` (needs `make deps-ort` and `make models`).
//!
//! Prints, per model, `bench-raw: <model> <tasks/s> tasks/s` (what `bench/run.sh` compares with
//! ONNX Runtime called directly), `bench-raw: <model>-session-only <tasks/s> tasks/s` (the same
//! graph run from Rust on the prepared tensors) and `bench-raw: <model>-preprocess-share <f>`
//! (the share of a task spent tokenizing or decoding/resizing/cropping, timed apart).
//! With `BENCH_KINDS_DUMP=DIR` it writes `DIR/<model>.json`, the graph's input tensors of the
//! benched task, for `bench/ort_kinds_baseline.py`. Then each model's batching curve
//! (`bench: <model>-batch-N`, `common::batching_curve`). `BENCH_DEVICE=cuda` runs the models on a
//! GPU and adds `bench: cross-device-false-positives-<model>`: each sample task answered on the
//! GPU, judged by a CPU validator under the kind's rule.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::imageops::{self, FilterType};
use inference::{kinds, session_from_file, Bundle, Device, LoadOptions, Runner, Runtime};
use ort::session::Session;

/// The task of the embeddings bench (the first sentence of models/minilm/samples/pairs.json).
const SENTENCE: &str = "A man is eating food.";
/// The task of the image bench: a real photo (385 x 256 JPEG) the kind's tests classify.
const IMAGE: &str = "models/efficientnet-lite0/samples/chelsea.jpg";
/// How long each figure is timed.
const SECONDS: f64 = 2.0;

/// One input tensor of the graph, as prepared by the kind.
enum Input {
    I64(&'static str, Vec<i64>, Vec<i64>),
    F32(&'static str, Vec<i64>, Vec<f32>),
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The kind's pre-processing: task input bytes to the graph's input tensors.
type Prepare = Box<dyn Fn(&[u8]) -> Result<Vec<Input>, BoxError>>;

fn main() -> Result<(), BoxError> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let runtime = Runtime::init(None)?;
    let dump = std::env::var_os("BENCH_KINDS_DUMP").map(PathBuf::from);
    let device = common::device()?;
    let mut failed = false;
    for (model, input) in [
        ("minilm", SENTENCE.as_bytes().to_vec()),
        ("efficientnet-lite0", std::fs::read(repo.join(IMAGE))?),
    ] {
        // One model failing (bundle not built...) must not hide the other's figures.
        if let Err(e) = bench(&runtime, &repo, model, &input, device, dump.as_deref()) {
            eprintln!("bench kinds: {model}: {e}");
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

fn bench(
    runtime: &Runtime,
    repo: &Path,
    model: &str,
    input: &[u8],
    device: Device,
    dump: Option<&Path>,
) -> Result<(), BoxError> {
    let dir = repo.join(".deps/models").join(model);
    let bundle = Bundle::open_dir(&dir)?;
    let opts = LoadOptions {
        threads: Some(1),
        device,
        ..LoadOptions::default()
    };
    let mut runner = kinds::load(runtime, &bundle, opts)?;
    // The kind's pre-processing, redone here (its functions are private) to time it apart and
    // to hand the same tensors to the ONNX Runtime baseline.
    let prepare: Prepare = match model {
        "minilm" => {
            let mut tok = tokenizers::Tokenizer::from_file(bundle.part("tokenizer")?)?;
            tok.with_truncation(None)?;
            tok.with_padding(None);
            Box::new(move |input| {
                let text = std::str::from_utf8(input)?;
                let enc = tok.encode(text, true)?;
                let ids: Vec<i64> = enc.get_ids().iter().map(|&i| i64::from(i)).collect();
                let shape = vec![1, ids.len() as i64];
                let mask = vec![1i64; ids.len()];
                Ok(vec![
                    Input::I64("input_ids", shape.clone(), ids),
                    Input::I64("attention_mask", shape, mask),
                ])
            })
        }
        _ => {
            let p = &bundle.manifest;
            let (short, crop) = (
                p.param_u64("resize_shorter")? as u32,
                p.param_u64("crop")? as u32,
            );
            Box::new(move |input| Ok(vec![image_tensor(input, short, crop)?]))
        }
    };
    let tensors = prepare(input)?;
    if let Some(dir) = dump {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(format!("{model}.json")), dump_json(&tensors))?;
    }

    // Warm-up, so that first-run allocations are not timed.
    let out = runner.run(input)?;
    for _ in 0..20 {
        runner.run(input)?;
    }
    let (mut session, _) = session_from_file(runtime, bundle.part("model")?, device, Some(1))?;
    for _ in 0..20 {
        run_session(&mut session, &tensors)?;
    }
    // Interleaved, so that a noisy neighbour slows the three figures alike.
    let rates = measure(&mut [
        &mut || runner.run(input).map(drop).map_err(|e| e.to_string()),
        &mut || run_session(&mut session, &tensors).map_err(|e| e.to_string()),
        &mut || prepare(input).map(drop).map_err(|e| e.to_string()),
    ])?;
    let (full, graph, pre) = (rates[0], rates[1], rates[2]);
    eprintln!(
        "{model}: {full:.1} tasks/s through the runner, {graph:.1} graph-only from Rust, \
         pre-processing alone {pre:.1}/s; output {}",
        String::from_utf8_lossy(&out[..out.len().min(120)])
    );
    println!("bench-raw: {model} {full:.1} tasks/s");
    println!("bench-raw: {model}-session-only {graph:.1} tasks/s");
    println!("bench-raw: {model}-preprocess-share {:.4}", full / pre);

    // The batching curve: b copies of the task per batch (the kinds run a batch's tasks one by
    // one: padding a batch would change the bits of some outputs).
    let batch: Vec<&[u8]> = vec![input; 128];
    common::batching_curve(model, device, |b| {
        for r in runner.run_batch(&batch[..b]) {
            r.map_err(|e| e.to_string())?;
        }
        Ok(())
    })?;

    if device != Device::Cpu {
        cross_device(runtime, repo, model, &bundle, runner.as_mut(), device)?;
    }
    Ok(())
}

/// Each of the model's sample tasks answered on `device` and judged by a CPU validator (one
/// thread, as `dn verify` runs) under the kind's rule: how many honest answers it rejects.
fn cross_device(
    runtime: &Runtime,
    repo: &Path,
    model: &str,
    bundle: &Bundle,
    worker: &mut dyn Runner,
    device: Device,
) -> Result<(), BoxError> {
    let samples = repo.join("models").join(model).join("samples");
    let inputs: Vec<Vec<u8>> = if model == "minilm" {
        let pairs: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(samples.join("pairs.json"))?)?;
        pairs
            .iter()
            .flat_map(|p| [&p["a"], &p["b"]])
            .filter_map(|v| v.as_str().map(|s| s.as_bytes().to_vec()))
            .collect()
    } else {
        let list: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(samples.join("samples.json"))?)?;
        list.iter()
            .filter_map(|v| v["file"].as_str())
            .map(|f| std::fs::read(samples.join(f)))
            .collect::<Result<_, _>>()?
    };
    let opts = LoadOptions {
        threads: Some(1),
        device: Device::Cpu,
        ..LoadOptions::default()
    };
    let mut validator = kinds::load(runtime, bundle, opts)?;
    let mut rejected = 0;
    for input in &inputs {
        let answer = worker.run(input)?;
        let verdict = validator.verify(input, &answer)?;
        if !verdict.matches {
            eprintln!(
                "{model}: a {device} answer rejected on cpu: {}",
                verdict.reason
            );
            rejected += 1;
        }
    }
    println!(
        "bench: cross-device-false-positives-{model} {rejected} answers (target = 0; of {} \
         {device} answers judged on cpu)",
        inputs.len()
    );
    Ok(())
}

/// Decode, resize (shorter side `short`, bilinear, longer side rounded half up), center-crop,
/// raw 0..255 NCHW f32: the image-classification kind's pre-processing.
fn image_tensor(input: &[u8], short: u32, crop: u32) -> Result<Input, BoxError> {
    let img = kinds::decode_image(input)?;
    let (w, h) = img.dimensions();
    let (s, l) = (u64::from(w.min(h)), u64::from(w.max(h)));
    let scaled = ((l * u64::from(short) + s / 2) / s) as u32;
    let (nw, nh) = if w <= h {
        (short, scaled)
    } else {
        (scaled, short)
    };
    let resized = imageops::resize(&img, nw, nh, FilterType::Triangle);
    let (left, top) = ((nw - crop) / 2, (nh - crop) / 2);
    let cropped = imageops::crop_imm(&resized, left, top, crop, crop).to_image();
    let plane = (crop * crop) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, px) in cropped.pixels().enumerate() {
        out[i] = f32::from(px[0]);
        out[plane + i] = f32::from(px[1]);
        out[2 * plane + i] = f32::from(px[2]);
    }
    let c = i64::from(crop);
    Ok(Input::F32("image", vec![1, 3, c, c], out))
}

/// Runs the graph on prepared tensors (copied into fresh ONNX Runtime values, as the kinds do).
fn run_session(session: &mut Session, tensors: &[Input]) -> Result<(), ort::Error> {
    let mut inputs: Vec<(String, ort::value::DynValue)> = Vec::with_capacity(tensors.len());
    for t in tensors {
        let (name, value) = match t {
            Input::I64(n, s, d) => (
                n,
                ort::value::Tensor::from_array((s.clone(), d.clone()))?.into_dyn(),
            ),
            Input::F32(n, s, d) => (
                n,
                ort::value::Tensor::from_array((s.clone(), d.clone()))?.into_dyn(),
            ),
        };
        inputs.push((name.to_string(), value));
    }
    session.run(inputs).map(drop)
}

/// `{"name": {"dtype", "shape", "data"}, ...}` for the Python baseline.
fn dump_json(tensors: &[Input]) -> String {
    let mut obj = serde_json::Map::new();
    for t in tensors {
        let (name, v) = match t {
            Input::I64(n, s, d) => (
                n,
                serde_json::json!({"dtype": "int64", "shape": s, "data": d}),
            ),
            Input::F32(n, s, d) => (
                n,
                serde_json::json!({"dtype": "float32", "shape": s, "data": d}),
            ),
        };
        obj.insert(name.to_string(), v);
    }
    serde_json::Value::Object(obj).to_string()
}

/// Tasks per second of each task, run in turns of a tenth of [`SECONDS`] each until every one
/// has run for about [`SECONDS`].
fn measure(tasks: &mut [&mut dyn FnMut() -> Result<(), String>]) -> Result<Vec<f64>, String> {
    let turn = Duration::from_secs_f64(SECONDS / 10.0);
    let mut done = vec![(0usize, Duration::ZERO); tasks.len()];
    for _ in 0..10 {
        for (task, (n, spent)) in tasks.iter_mut().zip(done.iter_mut()) {
            let started = Instant::now();
            while started.elapsed() < turn {
                task()?;
                *n += 1;
            }
            *spent += started.elapsed();
        }
    }
    Ok(done
        .iter()
        .map(|&(n, spent)| n as f64 / spent.as_secs_f64())
        .collect())
}
