//! Generated tokens/s of the text-generation kind on the real SmolLM2 bundle (`make models`),
//! through the executor's inference path: `Bundle::open_dir` + `kinds::load`, then
//! `Runner::run` (chat JSON in, canonical JSON out; greedy decoding with the KV cache), 1
//! intra-op thread, one chat prompt answered with `MAX_TOKENS` new tokens, against
//! onnxruntime-genai's generator on the same graph (`bench/genai_baseline.py`).
//! `cargo bench -p inference --bench llm_vs_genai` (the machine should be quiet).
//!
//! Prints `bench-raw: llm-executor <tokens/s> tokens/s <n> tokens <first-token s> s`: the median
//! of `RUNS` calls, tokens over the whole call (prompt and decode), and the median time to the
//! first token (a `max_tokens: 1` call). `BENCH_LLM_DUMP=FILE` writes the task for the baseline,
//! `{"prompt_ids": [...], "max_tokens": n, "token_ids": [...]}` (the prompt as the kind's ChatML
//! template tokenizes it, and the tokens the executor generated). With `BENCH_LLM_BASELINE=CMD`
//! too (a command, split on spaces, to which `FILE --serve` is added: `bench/run.sh` gives
//! `.deps/bench-venv/bin/python bench/genai_baseline.py .deps/models/smollm2 --threads 1`), the
//! baseline's calls are interleaved with the executor's (a noisy neighbour slows both alike) and
//! it also prints `bench-raw: llm-baseline <tokens/s> tokens/s <n> tokens <first-token s> s
//! <name> <version> same-tokens|different-tokens`.
//! `BENCH_DEVICE=cuda` loads the model on a GPU (`common::device`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use inference::{kinds, Bundle, LoadOptions, Runtime};
use serde_json::{json, Value};

/// The task: the same question as the text_generation bench's decode figure.
const QUESTION: &str = "Write a long story about a dragon who learns to cook.";
/// New tokens per call (the answer is longer: every call ends on `length`).
const MAX_TOKENS: u64 = 64;
/// Timed calls of each side; the medians are reported.
const RUNS: usize = 7;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The baseline process in `--serve` mode: one timed call per line asked.
struct Baseline {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
    summary: Value,
}

impl Baseline {
    fn spawn(cmd: &str, task: &Path) -> Result<Baseline, BoxError> {
        let mut argv = cmd.split_whitespace();
        let program = argv.next().ok_or("BENCH_LLM_BASELINE is empty")?;
        let mut child = Command::new(program)
            .args(argv)
            .arg(task)
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting the baseline {program}: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut b = Baseline {
            child,
            stdin,
            stdout,
            summary: Value::Null,
        };
        b.summary = b.read()?;
        Ok(b)
    }

    fn read(&mut self) -> Result<Value, BoxError> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err(format!("the baseline exited ({})", self.child.wait()?).into());
        }
        Ok(serde_json::from_str(&line)?)
    }

    /// Seconds of one call: `answer` (the whole task) or `first` (one token).
    fn timed(&mut self, what: &str) -> Result<f64, BoxError> {
        writeln!(self.stdin, "{what}")?;
        self.stdin.flush()?;
        self.read()?["secs"]
            .as_f64()
            .ok_or_else(|| "the baseline answered no secs".into())
    }
}

fn main() -> Result<(), BoxError> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.deps/models/smollm2");
    let bundle = Bundle::open_dir(&dir).map_err(|e| format!("{e} (run `make models`)"))?;
    let opts = LoadOptions {
        threads: Some(1),
        device: common::device()?,
        ..LoadOptions::default()
    };
    let mut runner = kinds::load(&Runtime::init(None)?, &bundle, opts)?;
    let chat = |max_tokens: u64| {
        serde_json::to_vec(&json!({
            "messages": [{"role": "user", "content": QUESTION}],
            "max_tokens": max_tokens,
        }))
    };
    let (input, first) = (chat(MAX_TOKENS)?, chat(1)?);

    // Warm-up, so that first-run allocations are not timed.
    let out: Value = serde_json::from_slice(&runner.run(&input)?)?;
    let ids: Vec<u64> = out["token_ids"]
        .as_array()
        .ok_or("the output has no token_ids")?
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    let prompt = prompt_ids(&bundle)?;
    if out["prompt_tokens"].as_u64() != Some(prompt.len() as u64) {
        return Err(format!(
            "the executor read {} prompt tokens, the bench's ChatML template {}",
            out["prompt_tokens"],
            prompt.len()
        )
        .into());
    }
    let dump = std::env::var_os("BENCH_LLM_DUMP");
    if let Some(path) = &dump {
        let task = json!({"prompt_ids": prompt, "max_tokens": MAX_TOKENS, "token_ids": ids});
        std::fs::write(path, serde_json::to_vec(&task)?)?;
    }
    // A baseline that fails leaves the executor's figure printed, and the bench exits 1.
    let mut failed = false;
    let mut baseline = match (std::env::var("BENCH_LLM_BASELINE"), &dump) {
        (Ok(cmd), Some(path)) => Baseline::spawn(&cmd, Path::new(path))
            .map_err(|e| {
                eprintln!("bench llm_vs_genai: the baseline did not start: {e}");
                failed = true;
            })
            .ok(),
        (Ok(_), None) => return Err("BENCH_LLM_BASELINE needs BENCH_LLM_DUMP=FILE".into()),
        (Err(_), _) => None,
    };
    let base_tokens = baseline
        .as_ref()
        .and_then(|b| b.summary["tokens"].as_u64())
        .unwrap_or(0) as f64;

    let (mut rates, mut firsts) = (Vec::new(), Vec::new());
    let (mut base_rates, mut base_firsts) = (Vec::new(), Vec::new());
    for round in 0..RUNS {
        // Alternate who goes first, so that neither always follows the other's cache traffic.
        for side in [round % 2, 1 - round % 2] {
            if side == 0 {
                let t = Instant::now();
                runner.run(&first)?;
                firsts.push(t.elapsed().as_secs_f64());
                let t = Instant::now();
                let again: Value = serde_json::from_slice(&runner.run(&input)?)?;
                let secs = t.elapsed().as_secs_f64();
                if again != out {
                    return Err("greedy decoding gave two different answers to one task".into());
                }
                rates.push(ids.len() as f64 / secs);
            } else if let Some(b) = baseline.as_mut() {
                match b.timed("first").and_then(|f| Ok((f, b.timed("answer")?))) {
                    Ok((f, secs)) => {
                        base_firsts.push(f);
                        base_rates.push(base_tokens / secs);
                    }
                    Err(e) => {
                        eprintln!("bench llm_vs_genai: the baseline failed: {e}");
                        failed = true;
                        baseline = None;
                    }
                }
            }
        }
    }
    println!(
        "bench-raw: llm-executor {:.2} tokens/s {} tokens {:.4} s",
        median(&mut rates),
        ids.len(),
        median(&mut firsts)
    );
    if let Some(mut b) = baseline {
        let s = &b.summary;
        let same = s["same_tokens"].as_bool() == Some(true)
            && s["tokens"].as_u64() == Some(ids.len() as u64);
        println!(
            "bench-raw: llm-baseline {:.2} tokens/s {} tokens {:.4} s onnxruntime-genai {} {}",
            median(&mut base_rates),
            s["tokens"],
            median(&mut base_firsts),
            s["version"].as_str().unwrap_or("?"),
            if same {
                "same-tokens"
            } else {
                "different-tokens"
            }
        );
        drop(b.stdin);
        b.child.wait()?;
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

/// The prompt ids of the task as the kind builds them (`TextGeneration::chatml`, private):
/// the bundle's system prompt, then the user message, then the assistant's header, each message
/// text tokenized literally (special tokens are not parsed in it).
fn prompt_ids(bundle: &Bundle) -> Result<Vec<u32>, BoxError> {
    let mut tok = tokenizers::Tokenizer::from_file(bundle.part("tokenizer")?)?;
    tok.set_encode_special_tokens(true);
    let special = |s: &str| tok.token_to_id(s).ok_or(format!("no {s} token"));
    let (start, end) = (special("<|im_start|>")?, special("<|im_end|>")?);
    let mut messages = Vec::new();
    if let Some(system) = bundle.manifest.params["system_prompt"].as_str() {
        messages.push(format!("system\n{system}"));
    }
    messages.push(format!("user\n{QUESTION}"));
    let enc =
        |s: &str| -> Result<Vec<u32>, BoxError> { Ok(tok.encode(s, false)?.get_ids().to_vec()) };
    let mut ids = Vec::new();
    for m in &messages {
        ids.push(start);
        ids.extend(enc(m)?);
        ids.push(end);
        ids.extend(enc("\n")?);
    }
    ids.push(start);
    ids.extend(enc("assistant\n")?);
    Ok(ids)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
