//! Classifies the held-out digits with the `inference` crate and prints the accuracy: the
//! "ONNX Runtime run directly" reference for the network's results.
//!
//! cargo run -p inference --example classify -- models/digits/digits.onnx models/digits/heldout.json [--limit N] [--device auto|cpu|cuda] [--batch N]

use std::time::Instant;

use inference::{tensor, Device, Model, Runtime, Tensor};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    let mut limit = usize::MAX;
    let mut device = Device::Cpu;
    let mut batch = 1usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--limit" => limit = args.next().ok_or("--limit needs a number")?.parse()?,
            "--device" => device = args.next().ok_or("--device needs auto|cpu|cuda")?.parse()?,
            "--batch" => {
                batch = args
                    .next()
                    .ok_or("--batch needs a number")?
                    .parse::<usize>()?
                    .max(1)
            }
            _ => positional.push(a),
        }
    }
    let [model_path, heldout_path] = positional.as_slice() else {
        return Err(
            "usage: classify <model.onnx> <heldout.json> [--limit N] [--device D] [--batch N]"
                .into(),
        );
    };

    let runtime = Runtime::init(None)?;
    let mut model = Model::load(&runtime, model_path, device, None)?;
    let heldout: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(heldout_path)?)?;

    let mut inputs = Vec::new();
    let mut labels = Vec::new();
    for item in heldout.iter().take(limit) {
        let pixels: Vec<f32> = item["pixels"]
            .as_array()
            .ok_or("heldout item without pixels")?
            .iter()
            .map(|v| v.as_f64().map(|x| x as f32).ok_or("pixel is not a number"))
            .collect::<Result<_, _>>()?;
        inputs.push(tensor::encode(&[(
            "input",
            Tensor::from_f32(vec![1, pixels.len()], &pixels)?,
        )])?);
        labels.push(item["label"].as_i64().ok_or("heldout item without label")?);
    }

    let started = Instant::now();
    let mut correct = 0usize;
    for (chunk, chunk_labels) in inputs.chunks(batch).zip(labels.chunks(batch)) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        for (result, &label) in model.run_batch(&refs).into_iter().zip(chunk_labels) {
            let out = tensor::decode(&result?)?;
            let predicted = out
                .iter()
                .find(|(n, _)| n == "label")
                .and_then(|(_, t)| t.to_i64())
                .and_then(|v| v.first().copied())
                .ok_or("model output has no int64 `label`")?;
            correct += usize::from(predicted == label);
        }
    }
    let elapsed = started.elapsed();
    let total = labels.len();
    println!(
        "model {} on {} ({}): accuracy {:.2}% ({correct}/{total}), {:.1} µs/image (batch {batch})",
        model_path,
        model.provider(),
        runtime.library().display(),
        100.0 * correct as f64 / total.max(1) as f64,
        elapsed.as_secs_f64() * 1e6 / total.max(1) as f64,
    );
    Ok(())
}
