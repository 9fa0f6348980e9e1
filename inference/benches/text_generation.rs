//! Figures of the text-generation kind on the real SmolLM2 bundle (`make models`): prefill and
//! decode tokens/s, the teacher-forced check's cost against generating (the ratio the README
//! quotes), and false positives over honest answers judged at 1 and 2 threads (and, with
//! `BENCH_DEVICE=cuda`, answered on the GPU and judged on the CPU too).
//! `cargo bench -p inference --bench text_generation` (the machine should be quiet).

mod common;

use std::time::Instant;

use inference::{kinds, Bundle, Device, LoadOptions, Runner, Runtime};
use serde_json::{json, Value};

fn load(device: Device, threads: usize) -> Result<Box<dyn Runner>, Box<dyn std::error::Error>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.deps/models/smollm2");
    let bundle = Bundle::open_dir(&dir).map_err(|e| format!("{e} (run `make models`)"))?;
    let opts = LoadOptions {
        threads: Some(threads),
        device,
        ..LoadOptions::default()
    };
    Ok(kinds::load(&Runtime::init(None)?, &bundle, opts)?)
}

/// Turns of generating and checking per answer length.
const RUNS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn chat(q: &str, max_tokens: u64) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"messages": [{"role": "user", "content": q}], "max_tokens": max_tokens}),
    )
    .expect("JSON literal")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = common::device()?;
    let mut one = load(device, 1)?;
    let mut two = load(device, 2)?;
    // On a GPU, a CPU validator judges the GPU's answers too (the false-positive rate across
    // devices); on the CPU the 1- and 2-thread judges are the whole line.
    let mut cpu = if device == Device::Cpu {
        None
    } else {
        Some(load(Device::Cpu, 1)?)
    };
    let story = "The history of the city is long and full of change. ".repeat(20);
    let prefill = serde_json::to_vec(&json!({"prompt": story, "max_tokens": 1}))?;
    one.run(&prefill)?;
    let t = Instant::now();
    let out: Value = serde_json::from_slice(&one.run(&prefill)?)?;
    let p = out["prompt_tokens"].as_f64().unwrap_or(0.0);
    println!(
        "bench: llm-prefill {:.0} tokens/s (target report; {p} tokens, 1 thread)",
        p / t.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    for n in [64u64, 128] {
        let input = chat("Write a long story about a dragon who learns to cook.", n);
        // Generating and checking take turns, RUNS times each, and the medians are compared: the
        // first check of a new length allocates its buffers, which a validator's later checks
        // reuse, and a noisy neighbour slows both alike.
        let (mut gens, mut vers, mut k) = (Vec::new(), Vec::new(), 0);
        for _ in 0..RUNS {
            let t = Instant::now();
            let out = one.run(&input)?;
            gens.push(t.elapsed().as_secs_f64());
            k = serde_json::from_slice::<Value>(&out)?["token_ids"]
                .as_array()
                .map_or(0, Vec::len);
            let t = Instant::now();
            let v = one.verify(&input, &out)?;
            vers.push(t.elapsed().as_secs_f64());
            if !v.matches {
                return Err(format!("honest {k}-token answer rejected: {}", v.reason).into());
            }
        }
        let (gen_s, ver_s) = (median(gens), median(vers));
        // the figure is the 128-token answer; the 64-token one shows the trend
        let (name, target) = if n == 128 {
            ("verify-vs-generate".to_string(), "<= 0.10")
        } else {
            (format!("verify-vs-generate-{k}"), "report")
        };
        println!(
            "bench: {name} {:.3} ratio (target {target}; {k} tokens, generate {gen_s:.2} s, verify {ver_s:.2} s, medians of {RUNS})",
            ver_s / gen_s
        );
        times.push((k, gen_s));
    }
    if let [(k1, t1), (k2, t2)] = times[..] {
        println!(
            "bench: llm-decode {:.1} tokens/s (target report; 1 thread)",
            (k2 - k1) as f64 / (t2 - t1)
        );
    }
    let prompts = [
        "What is the capital of France?",
        "How many legs does a spider have?",
        "Who wrote Romeo and Juliet?",
        "What is the largest ocean on Earth?",
        "Name three primary colors.",
        "Write a haiku about the sea.",
        "Give me a synonym for happy.",
        "Describe a rainbow.",
    ];
    let (mut judged, mut rejected) = (0, 0);
    for q in prompts {
        let input = chat(q, 32);
        let a = one.run(&input)?;
        for r in [Some(&mut one), Some(&mut two), cpu.as_mut()]
            .into_iter()
            .flatten()
        {
            judged += 1;
            rejected += usize::from(!r.verify(&input, &a)?.matches);
        }
    }
    let judges = if cpu.is_some() {
        format!("answered on {device}, judged there at 1 and 2 threads and on cpu")
    } else {
        "judged at 1 and 2 threads".to_string()
    };
    println!("bench: teacher-forced-false-positives {rejected} answers (target = 0; of {judged} honest answers {judges})");
    Ok(())
}
