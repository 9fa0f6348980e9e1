//! Peak resident memory of one process holding the whole catalogue: every bundle under
//! `.deps/models` (`make models`) opened with `Bundle::open_dir` and loaded with `kinds::load`
//! (what `executor/src/engine.rs` does after fetching a bundle), 1 intra-op thread, all kept
//! loaded at once, then one task run on each (a sample input of its kind), so that the figure
//! holds each kind's working memory too. `cargo bench -p inference --bench catalogue_rss`.
//!
//! Prints `bench-raw: executor-rss <VmHWM MiB> MiB <n> bundles <model MiB> MiB` (the model MiB
//! is the sum of the loaded bundles' part files) and, on stderr, the resident memory after each
//! load. A bundle that fails to load or to run its task is named on stderr and makes the bench
//! exit 1, after the figure of the others. `BENCH_MODELS_DIR=DIR` loads the bundles of another
//! folder.
//! `BENCH_DEVICE=cuda` loads the model on a GPU (`common::device`).

mod common;

use std::path::Path;

use inference::{kinds, Bundle, Kind, LoadOptions, Runner, Runtime};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const MIB: f64 = 1024.0 * 1024.0;

fn main() -> Result<(), BoxError> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let models = std::env::var_os("BENCH_MODELS_DIR")
        .map_or_else(|| repo.join(".deps/models"), std::path::PathBuf::from);
    let mut dirs: Vec<_> = std::fs::read_dir(&models)
        .map_err(|e| format!("{}: {e} (run `make models`)", models.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        // a bundle being built (tools/setup-models.sh) is in <dir>.partial
        .filter(|p| {
            p.join("manifest.json").is_file() && p.extension().is_none_or(|e| e != "partial")
        })
        .collect();
    dirs.sort();
    let runtime = Runtime::init(None)?;
    let opts = LoadOptions {
        threads: Some(1),
        device: common::device()?,
        ..LoadOptions::default()
    };
    eprintln!(
        "bench catalogue_rss: {:.0} MiB before loading",
        status_mib("VmRSS")?
    );
    let mut failed = Vec::new();
    let mut loaded: Vec<(String, Kind, Box<dyn Runner>)> = Vec::new();
    let mut model_bytes = 0u64;
    for dir in &dirs {
        let name = dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let load = || -> Result<(Bundle, Box<dyn Runner>), BoxError> {
            let bundle = Bundle::open_dir(dir)?;
            let runner = kinds::load(&runtime, &bundle, opts)?;
            Ok((bundle, runner))
        };
        match load() {
            Ok((bundle, runner)) => {
                for path in bundle.files.values() {
                    model_bytes += std::fs::metadata(path)?.len();
                }
                eprintln!(
                    "bench catalogue_rss: loaded {name} ({}): {:.0} MiB resident, peak {:.0} MiB",
                    bundle.manifest.kind,
                    status_mib("VmRSS")?,
                    status_mib("VmHWM")?
                );
                loaded.push((name, bundle.manifest.kind, runner));
            }
            Err(e) => {
                eprintln!("bench catalogue_rss: {name}: not loaded: {e}");
                failed.push(name);
            }
        }
    }
    for (name, kind, runner) in &mut loaded {
        let Some(input) = sample(&repo, *kind)? else {
            continue;
        };
        if let Err(e) = runner.run(&input) {
            eprintln!("bench catalogue_rss: {name}: its sample task failed: {e}");
            failed.push(name.clone());
        }
    }
    eprintln!(
        "bench catalogue_rss: {:.0} MiB resident after one task each",
        status_mib("VmRSS")?
    );
    println!(
        "bench-raw: executor-rss {:.0} MiB {} bundles {:.0} MiB",
        status_mib("VmHWM")?,
        loaded.len(),
        model_bytes as f64 / MIB
    );
    if !failed.is_empty() {
        eprintln!("bench catalogue_rss: failed: {}", failed.join(" "));
        std::process::exit(1);
    }
    Ok(())
}

/// One task input of `kind`, from the samples the kinds' tests use (`None`: no task run).
fn sample(repo: &Path, kind: Kind) -> Result<Option<Vec<u8>>, BoxError> {
    let file = |p: &str| std::fs::read(repo.join(p));
    Ok(Some(match kind {
        Kind::TextGeneration => {
            br#"{"messages":[{"role":"user","content":"What is the capital of France?"}],"max_tokens":16}"#.to_vec()
        }
        Kind::Embeddings => b"A man is eating food.".to_vec(),
        Kind::ImageClassification => file("models/efficientnet-lite0/samples/chelsea.jpg")?,
        Kind::Ocr => file("models/ppocr/samples/receipt.png")?,
        Kind::SpeechRecognition => file("models/whisper-tiny-en/samples/fox.wav")?,
        Kind::Tensor => return Ok(None),
    }))
}

/// A `kB` line of /proc/self/status (VmRSS, VmHWM), in MiB.
fn status_mib(key: &str) -> Result<f64, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("/proc/self/status has no {key} line"))?;
    Ok(kb / 1024.0)
}
