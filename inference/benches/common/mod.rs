//! Shared by the inference benches: the device they run on (`BENCH_DEVICE`) and the batching
//! curve each kind prints.
#![allow(dead_code)] // each bench uses its own part of this module

use std::time::{Duration, Instant};

use inference::Device;

/// The device the benches run their models on: `BENCH_DEVICE` (`cpu`, the default, `cuda` or
/// `auto`). With `cuda` the library must be a CUDA build of ONNX Runtime (`bench/run.sh` points
/// `ORT_DYLIB_PATH` at the `onnxruntime-gpu` wheel's).
pub fn device() -> Result<Device, String> {
    match std::env::var("BENCH_DEVICE") {
        Ok(v) if !v.is_empty() => v
            .parse::<Device>()
            .map_err(|e| format!("BENCH_DEVICE: {e}")),
        _ => Ok(Device::Cpu),
    }
}

/// The batch sizes of the batching curve.
pub const BATCHES: [usize; 4] = [1, 8, 32, 128];

/// How long each point of the curve is timed at least (and at least [`MIN_BATCHES`] batches).
const CURVE_SECS: f64 = 1.5;
const MIN_BATCHES: usize = 3;

/// The batching curve of one model, one `bench:` line per batch size: tasks/s with a backlog
/// (the next batch starts as soon as the last one ends, as an executor with a full queue runs
/// them) against batch 1, and the p50 / p99 latency of a task under that load, which is its
/// whole batch's time (a batch's answers come back, and are committed, together). `run(b)` runs
/// one batch of `b` tasks.
pub fn batching_curve(
    model: &str,
    device: Device,
    mut run: impl FnMut(usize) -> Result<(), String>,
) -> Result<(), String> {
    let mut base = None;
    for b in BATCHES {
        run(b)?; // warm-up: the first run at a size allocates
        let mut times = Vec::new();
        let started = Instant::now();
        while times.len() < MIN_BATCHES || started.elapsed() < Duration::from_secs_f64(CURVE_SECS) {
            let t = Instant::now();
            run(b)?;
            times.push(t.elapsed().as_secs_f64());
        }
        let rate = (b * times.len()) as f64 / times.iter().sum::<f64>();
        let base = *base.get_or_insert(rate);
        times.sort_by(f64::total_cmp);
        println!(
            "bench: {model}-batch-{b} {:.2} ratio (target report; {rate:.0} tasks/s, task latency \
             p50 {:.2} ms, p99 {:.2} ms, vs batch 1, {})",
            rate / base,
            percentile(&times, 0.50) * 1e3,
            percentile(&times, 0.99) * 1e3,
            device.as_str(),
        );
    }
    Ok(())
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
