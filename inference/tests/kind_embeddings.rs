//! The `embeddings` kind on the real all-MiniLM-L6-v2 bundle (`make models` builds it in
//! `.deps/models/minilm`): related sentences are close and unrelated ones are not, outputs are
//! unit vectors, 1 and 2 threads agree, the cosine rule accepts honest outputs and rejects
//! counterfeit, foreign and malformed ones, and bad inputs fail with errors naming the problem.

use std::path::PathBuf;
use std::time::Instant;

use inference::{kinds, Bundle, InferenceError, Kind, LoadOptions, Runner, Runtime};

fn bundle_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.deps/models/minilm")
}

fn bundle() -> Bundle {
    let dir = bundle_dir();
    assert!(
        dir.join("manifest.json").is_file(),
        "the all-minilm-l6-v2 bundle is missing at {}: run `make models` (or \
         `.deps/bundles-venv/bin/python models/minilm/recipe.py --out .deps/models/minilm`)",
        dir.display()
    );
    Bundle::open_dir(&dir).expect("the minilm bundle opens")
}

fn runner(threads: usize) -> Box<dyn Runner> {
    let runtime = Runtime::init(None).expect("ONNX Runtime must be installed: run `make deps-ort`");
    let opts = LoadOptions {
        threads: Some(threads),
        ..LoadOptions::default()
    };
    let r = kinds::load(&runtime, &bundle(), opts).expect("the minilm bundle loads");
    assert_eq!(r.kind(), Kind::Embeddings);
    r
}

fn embedding(out: &[u8]) -> Vec<f64> {
    let v: serde_json::Value = serde_json::from_slice(out).unwrap();
    assert_eq!(v["dims"], 384);
    v["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb)
}

struct Pair {
    a: String,
    b: String,
    related: bool,
}

fn pairs() -> Vec<Pair> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/minilm/samples/pairs.json");
    let items: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    items
        .iter()
        .map(|p| Pair {
            a: p["a"].as_str().unwrap().into(),
            b: p["b"].as_str().unwrap().into(),
            related: p["related"].as_bool().unwrap(),
        })
        .collect()
}

#[test]
fn related_sentences_are_close_and_outputs_are_unit_vectors() {
    let mut r = runner(1);
    let food = r.run(b"A man is eating food.").unwrap();
    let bread = r
        .run(br#"{"input": "A man is eating a piece of bread."}"#)
        .unwrap();
    let market = r.run(b"The stock market fell sharply on Monday.").unwrap();
    let (food, bread, market) = (embedding(&food), embedding(&bread), embedding(&market));
    let related = cosine(&food, &bread);
    let unrelated = cosine(&food, &market);
    assert!(related > 0.5, "related cosine {related}");
    assert!(unrelated < 0.3, "unrelated cosine {unrelated}");
    let norm = food.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    let v: serde_json::Value =
        serde_json::from_slice(&r.run(b"A man is eating food.").unwrap()).unwrap();
    assert_eq!(v["tokens"], 8, "[CLS] a man is eating food . [SEP]");
    // JSON and plain text give the same bytes.
    assert_eq!(
        r.run(b"A man is eating food.").unwrap(),
        r.run(br#"{"input":"A man is eating food."}"#).unwrap()
    );
}

#[test]
fn verify_accepts_honest_outputs_at_1_and_2_threads_and_rejects_wrong_ones() {
    let mut one = runner(1);
    let mut two = runner(2);
    let input: &[u8] = b"How do I reset my password?";
    let out1 = one.run(input).unwrap();
    let out2 = two.run(input).unwrap();
    assert!(cosine(&embedding(&out1), &embedding(&out2)) > 0.99999);
    for claimed in [&out1, &out2] {
        for r in [&mut one, &mut two] {
            let v = r.verify(input, claimed).unwrap();
            assert!(v.matches, "{}", v.reason);
            assert!(v.quality_ppm >= 999_900, "{}", v.quality_ppm);
        }
    }
    // counterfeit: a random unit vector of the right shape
    let fake = one.counterfeit(input, 7).unwrap();
    assert_ne!(fake, one.counterfeit(input, 8).unwrap());
    assert_eq!(embedding(&fake).len(), 384);
    let v = two.verify(input, &fake).unwrap();
    assert!(!v.matches, "{}", v.reason);
    // the honest embedding of another sentence, even a related one
    let other = one
        .run(b"I forgot my password and need to change it.")
        .unwrap();
    let v = one.verify(input, &other).unwrap();
    assert!(!v.matches, "{}", v.reason);
    assert!(
        v.quality_ppm > 500_000 && v.quality_ppm < 999_000,
        "{}",
        v.quality_ppm
    );
    // the right vector with a wrong token count
    let mut retokened: serde_json::Value = serde_json::from_slice(&out1).unwrap();
    retokened["tokens"] = 5.into();
    let v = one
        .verify(input, &serde_json::to_vec(&retokened).unwrap())
        .unwrap();
    assert!(!v.matches && v.reason.contains("tokens"), "{}", v.reason);
    // malformed and wrongly shaped claims are verdicts, not errors
    let mut short: serde_json::Value = serde_json::from_slice(&out1).unwrap();
    short["embedding"].as_array_mut().unwrap().truncate(100);
    short["dims"] = 100.into();
    let scaled: serde_json::Value = {
        let mut v: serde_json::Value = serde_json::from_slice(&out1).unwrap();
        for x in v["embedding"].as_array_mut().unwrap() {
            *x = (x.as_f64().unwrap() * 3.0).into();
        }
        v
    };
    for bad in [
        b"not json".to_vec(),
        b"{}".to_vec(),
        br#"{"dims":384,"embedding":"x","tokens":8}"#.to_vec(),
        serde_json::to_vec(&short).unwrap(),
        serde_json::to_vec(&scaled).unwrap(),
    ] {
        let v = one.verify(input, &bad).unwrap();
        assert!(!v.matches, "{} accepted", String::from_utf8_lossy(&bad));
        assert_eq!(v.quality_ppm, 0);
    }
}

#[test]
fn bad_inputs_fail_with_errors_naming_the_problem() {
    let mut r = runner(1);
    let err = |r: &mut Box<dyn Runner>, input: &[u8]| r.run(input).unwrap_err().to_string();
    assert!(err(&mut r, b"").contains("empty"));
    assert!(err(&mut r, b"   \n ").contains("empty"));
    assert!(err(&mut r, &[b'h', b'i', 0xff, 0xfe]).contains("UTF-8"));
    assert!(err(&mut r, br#"{"text": "hello"}"#).contains("\"input\""));
    assert!(err(&mut r, br#"{"input": 42}"#).contains("string"));
    let long = "word ".repeat(300);
    let e = r.run(long.as_bytes()).unwrap_err();
    assert!(matches!(e, InferenceError::InputInvalid(_)), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("302 tokens") && msg.contains("256"), "{msg}");
    // exactly at the limit works: 254 words + [CLS] + [SEP]
    let at_limit = "word ".repeat(254);
    let v: serde_json::Value =
        serde_json::from_slice(&r.run(at_limit.as_bytes()).unwrap()).unwrap();
    assert_eq!(v["tokens"], 256);
    let runtime = Runtime::init(None).unwrap();
    let small = LoadOptions {
        threads: Some(1),
        max_input_bytes: 64,
        ..LoadOptions::default()
    };
    let mut r = kinds::load(&runtime, &bundle(), small).unwrap();
    let e = r.run(&[b'a'; 65]).unwrap_err();
    assert!(
        matches!(e, InferenceError::InputTooLarge { size: 65, max: 64 }),
        "{e:?}"
    );
}

/// Figures for the model card: quality on the sample pairs, latency per task at 1 thread, and
/// the cosine rule's false-positive rate across 1 and 2 threads. Run with `--nocapture`.
#[test]
fn measure_quality_latency_and_false_positives() {
    let mut one = runner(1);
    let mut two = runner(2);
    let pairs = pairs();
    let mut correct = 0;
    let mut texts: Vec<String> = Vec::new();
    for p in &pairs {
        let a = embedding(&one.run(p.a.as_bytes()).unwrap());
        let b = embedding(&one.run(p.b.as_bytes()).unwrap());
        let c = cosine(&a, &b);
        let ok = if p.related { c > 0.5 } else { c < 0.3 };
        correct += usize::from(ok);
        println!("pair cosine {c:.3} related={} ok={ok}", p.related);
        for t in [&p.a, &p.b] {
            if !texts.contains(t) {
                texts.push(t.clone());
            }
        }
    }
    texts.push("The quick brown fox jumps over the lazy dog near the river bank. ".repeat(18));
    println!(
        "pairs on the right side (related > 0.5, unrelated < 0.3): {correct}/{}",
        pairs.len()
    );
    assert!(correct + 1 >= pairs.len());

    let (mut rejected, mut judged, mut worst, mut identical) = (0, 0, 1.0f64, 0);
    for t in &texts {
        let o1 = one.run(t.as_bytes()).unwrap();
        let o2 = two.run(t.as_bytes()).unwrap();
        identical += usize::from(o1 == o2);
        worst = worst.min(cosine(&embedding(&o1), &embedding(&o2)));
        for claimed in [&o1, &o2] {
            for r in [&mut one, &mut two] {
                judged += 1;
                rejected += usize::from(!r.verify(t.as_bytes(), claimed).unwrap().matches);
            }
        }
    }
    println!(
        "false positives across 1/2 threads: {rejected}/{judged} honest outputs rejected \
         ({} texts, {identical} byte-identical across threads, lowest cosine {worst:.9})",
        texts.len()
    );
    assert_eq!(rejected, 0);

    let short = b"A man is eating food.";
    let long = "The quick brown fox jumps over the lazy dog near the river bank. ".repeat(18);
    for (name, input) in [("8 tokens", &short[..]), ("254 tokens", long.as_bytes())] {
        one.run(input).unwrap();
        let n = 10;
        let t0 = Instant::now();
        for _ in 0..n {
            one.run(input).unwrap();
        }
        let ms = t0.elapsed().as_secs_f64() * 1000.0 / n as f64;
        println!("latency at 1 thread, {name}: {ms:.1} ms per task (mean of {n})");
    }
}
