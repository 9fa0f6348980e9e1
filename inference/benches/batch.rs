//! Single vs batched throughput of the digits model through `Model::run` / `Model::run_batch`
//! (validation and canonical encoding included), and its batching curve (`bench: digits-batch-N`
//! lines, see `common::batching_curve`). `cargo bench -p inference --bench batch`
//! (needs `make deps-ort`; ORT_DYLIB_PATH or .deps/ is used; `BENCH_DEVICE=cuda` runs it on a GPU).

mod common;

use std::time::{Duration, Instant};

use inference::{tensor, Model, Runtime, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/digits");
    let runtime = Runtime::init(None)?;
    let device = common::device()?;
    let mut model = Model::load(&runtime, root.join("digits.onnx"), device, Some(1))?;
    let heldout: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(root.join("heldout.json"))?)?;
    let inputs: Vec<Vec<u8>> = heldout
        .iter()
        .map(|item| {
            let px: Vec<f32> = item["pixels"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_f64())
                        .map(|v| v as f32)
                        .collect()
                })
                .unwrap_or_default();
            tensor::encode(&[("input", Tensor::from_f32(vec![1, px.len()], &px)?)])
        })
        .collect::<Result<_, _>>()?;
    let refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();

    // Warm-up, so that first-run allocations are not timed.
    for r in model.run_batch(&refs) {
        r?;
    }
    let single = measure(|| {
        for i in &refs {
            model.run(i).map(drop).map_err(|e| e.to_string())?;
        }
        Ok(refs.len())
    })?;
    println!("single   : {:>10.0} tasks/s", single);
    // the machine-readable figure bench/run.sh compares with ONNX Runtime called directly
    println!("bench-raw: digits-single {single:.1} tasks/s");
    // The curve: each batch of b distinct held-out digits (cycled when b exceeds them).
    let cycled: Vec<&[u8]> = refs.iter().copied().cycle().take(128).collect();
    common::batching_curve("digits", device, |b| {
        for r in model.run_batch(&cycled[..b]) {
            r.map_err(|e| e.to_string())?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Tasks per second over repeated passes for about one second.
fn measure(mut pass: impl FnMut() -> Result<usize, String>) -> Result<f64, String> {
    let started = Instant::now();
    let mut tasks = 0usize;
    while started.elapsed() < Duration::from_secs(1) {
        tasks += pass()?;
    }
    Ok(tasks as f64 / started.elapsed().as_secs_f64())
}
