//! The `text-generation` kind on the real SmolLM2-135M-Instruct bundle (`make models` builds it in
//! `.deps/models/smollm2`): it answers a factual question, is deterministic across runs and
//! thread counts, the teacher-forced rule accepts honest answers and rejects counterfeit, foreign,
//! truncated, extended and mismatched ones, and bad inputs fail with errors naming the problem.
//!
//! Figures for the model card (tokens/s, verify/generate cost, false positives over more
//! prompts) are a benchmark: `cargo bench -p inference --bench text_generation`.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};

use inference::{kinds, Bundle, InferenceError, Kind, LoadOptions, Runner, Runtime};
use serde_json::{json, Value};

const STOP_ID: u32 = 2; // <|im_end|>

fn bundle_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.deps/models/smollm2")
}

fn bundle() -> Bundle {
    let dir = bundle_dir();
    assert!(
        dir.join("manifest.json").is_file(),
        "the smollm2-135m-instruct bundle is missing at {}: run `make models` (or \
         `.deps/bundles-venv/bin/python models/smollm2/recipe.py --out .deps/models/smollm2`)",
        dir.display()
    );
    Bundle::open_dir(&dir).expect("the smollm2 bundle opens")
}

fn load(threads: usize) -> Box<dyn Runner> {
    let runtime = Runtime::init(None).expect("ONNX Runtime must be installed: run `make deps-ort`");
    let opts = LoadOptions {
        threads: Some(threads),
        ..LoadOptions::default()
    };
    let r = kinds::load(&runtime, &bundle(), opts).expect("the smollm2 bundle loads");
    assert_eq!(r.kind(), Kind::TextGeneration);
    r
}

/// Runners at 1 and 2 intra-op threads, shared by the tests (a session holds 540 MB of weights).
struct Runners {
    one: Box<dyn Runner>,
    two: Box<dyn Runner>,
}

fn runners() -> MutexGuard<'static, Runners> {
    static RUNNERS: OnceLock<Mutex<Runners>> = OnceLock::new();
    RUNNERS
        .get_or_init(|| {
            Mutex::new(Runners {
                one: load(1),
                two: load(2),
            })
        })
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

fn tokenizer() -> tokenizers::Tokenizer {
    tokenizers::Tokenizer::from_file(bundle_dir().join("tokenizer.json")).unwrap()
}

fn chat(question: &str, max_tokens: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "messages": [{"role": "user", "content": question}],
        "max_tokens": max_tokens
    }))
    .unwrap()
}

fn parse(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap()
}

fn ids_of(out: &Value) -> Vec<u32> {
    out["token_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect()
}

fn claim(text: &str, ids: &[u32], finish: &str, prompt_tokens: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "finish_reason": finish,
        "prompt_tokens": prompt_tokens,
        "text": text,
        "token_ids": ids,
    }))
    .unwrap()
}

/// The largest gap below the max logit that an accepting verdict reports.
fn largest_gap(reason: &str) -> f64 {
    reason
        .split("largest gap ")
        .nth(1)
        .and_then(|s| s.trim_end_matches(')').parse().ok())
        .unwrap_or(f64::NAN)
}

const HONEST: [&str; 5] = [
    "What is the capital of France?",
    "Name three primary colors.",
    "Write a haiku about the sea.",
    "What is 12 plus 7?",
    "Give me a synonym for happy.",
];

#[test]
fn answers_the_capital_of_france_deterministically() {
    let mut r = runners();
    let input = chat("What is the capital of France?", 24);
    let out = r.one.run(&input).unwrap();
    let v = parse(&out);
    let text = v["text"].as_str().unwrap();
    assert!(
        text.contains("Paris"),
        "answer {text:?} does not name Paris"
    );
    assert_eq!(v["finish_reason"], "stop");
    assert_eq!(*ids_of(&v).last().unwrap(), STOP_ID);
    // Same bytes run to run, at 2 threads, and from plain text (one user message).
    assert_eq!(r.one.run(&input).unwrap(), out);
    assert_eq!(r.two.run(&input).unwrap(), out);
    let plain = r.one.run(b"What is the capital of France?").unwrap();
    assert_eq!(parse(&plain)["token_ids"], v["token_ids"]);
    // Output is canonical: keys sorted, compact.
    assert_eq!(out, serde_json::to_vec(&v).unwrap());
}

#[test]
fn streamed_tokens_are_the_committed_answer_and_stream_to_changes_nothing() {
    let mut r = runners();
    let plain = chat("What is the capital of France?", 24);
    let mut v: Value = serde_json::from_slice(&plain).unwrap();
    v["stream_to"] = "http://127.0.0.1:9/v1/streams/ab".into();
    let with_target = serde_json::to_vec(&v).unwrap();
    // stop strings: the streamed text must never run past the cut, even when the stop string
    // starts in one token ("is") and ends in the next (" Paris")
    v["stop"] = serde_json::json!(["is Par", "xyz"]);
    v["max_tokens"] = 40.into();
    let with_stop = serde_json::to_vec(&v).unwrap();
    let expected = r.one.run(&plain).unwrap();
    for (input, reference) in [(&with_target, Some(&expected)), (&with_stop, None)] {
        let mut ids = Vec::new();
        let mut text = String::new();
        let out = r
            .one
            .run_streaming(input, &mut |id, delta| {
                ids.push(id);
                text.push_str(delta);
            })
            .unwrap();
        if let Some(reference) = reference {
            assert_eq!(&out, reference, "stream_to does not change the output");
        }
        let o = parse(&out);
        assert_eq!(ids, ids_of(&o), "one callback per generated token");
        assert_eq!(
            text,
            o["text"].as_str().unwrap(),
            "deltas concatenate to the text"
        );
        assert!(ids.len() > 1);
    }
    // the stop string cut the answer before "is Paris"
    let stopped = parse(&r.one.run(&with_stop).unwrap());
    let cut = stopped["text"].as_str().unwrap();
    assert!(cut.ends_with("France "), "{stopped}");
}

#[test]
fn verify_accepts_honest_answers_at_one_and_two_threads() {
    let mut r = runners();
    let mut inputs: Vec<Vec<u8>> = HONEST.iter().map(|q| chat(q, 20)).collect();
    inputs.push(
        serde_json::to_vec(&json!({
            "messages": [
                {"role": "system", "content": "You answer in one short sentence."},
                {"role": "user", "content": "What is the capital of France?"}
            ],
            "max_tokens": 16, "stop": ["."]
        }))
        .unwrap(),
    );
    inputs.push(br#"{"prompt": "The three largest planets are", "max_tokens": 16}"#.to_vec());
    let (mut judged, mut rejected, mut worst) = (0, 0, 0.0f64);
    for input in &inputs {
        let a = r.one.run(input).unwrap();
        let b = r.two.run(input).unwrap();
        assert_eq!(a, b, "1 and 2 threads differ");
        eprintln!(
            "{} -> {}",
            String::from_utf8_lossy(input),
            String::from_utf8_lossy(&a)
        );
        for verdict in [
            r.one.verify(input, &a).unwrap(),
            r.two.verify(input, &a).unwrap(),
        ] {
            judged += 1;
            if verdict.matches {
                assert_eq!(verdict.quality_ppm, 1_000_000);
                worst = worst.max(largest_gap(&verdict.reason));
            } else {
                rejected += 1;
                eprintln!("honest answer rejected: {}", verdict.reason);
            }
        }
    }
    eprintln!("honest verdicts: {rejected} of {judged} rejected; largest gap {worst:.2e}");
    assert_eq!(rejected, 0, "the rule rejected honest answers");
    // A stop string ends the answer before it: the text is cut there.
    let stopped = parse(&r.one.run(&inputs[5]).unwrap());
    assert_eq!(stopped["finish_reason"], "stop");
    let text = stopped["text"].as_str().unwrap();
    assert!(text.contains("Paris") && !text.contains('.'), "{text:?}");
    // Claiming the text past the stop string is wrong.
    let ids = ids_of(&stopped);
    let full = tokenizer().decode(&ids, false).unwrap();
    assert!(full.ends_with('.'));
    let p = stopped["prompt_tokens"].as_u64().unwrap();
    let v = r
        .one
        .verify(&inputs[5], &claim(&full, &ids, "stop", p))
        .unwrap();
    assert!(!v.matches, "{}", v.reason);
}

#[test]
fn verify_rejects_wrong_answers() {
    let mut r = runners();
    let input = chat("What is the capital of France?", 24);
    let honest = parse(&r.one.run(&input).unwrap());
    let ids = ids_of(&honest);
    let p = honest["prompt_tokens"].as_u64().unwrap();
    let text = honest["text"].as_str().unwrap();
    let fakes: Vec<Vec<u8>> = (0..3)
        .map(|seed| r.one.counterfeit(&input, seed).unwrap())
        .collect();
    let mut reject = |claimed: &[u8], what: &str| {
        let v = r.one.verify(&input, claimed).unwrap();
        assert!(!v.matches, "{what} was accepted: {}", v.reason);
        eprintln!("{what}: {} (quality {})", v.reason, v.quality_ppm);
        v
    };

    for fake in &fakes {
        let v = reject(fake, "counterfeit");
        assert!(
            v.quality_ppm < 200_000,
            "counterfeit quality {}",
            v.quality_ppm
        );
    }
    // Fluent answers from "another model": right format, tokens the model would not pick.
    let tok = tokenizer();
    for other in [
        "Paris is the capital of France.",
        "The capital city of France is Paris, famous for the Eiffel Tower.",
        "The capital of France is Lyon.",
    ] {
        let mut other_ids = tok.encode(other, false).unwrap().get_ids().to_vec();
        other_ids.push(STOP_ID);
        let v = reject(&claim(other, &other_ids, "stop", p), "foreign answer");
        assert!(v.reason.contains("below the largest logit"), "{}", v.reason);
    }
    // The honest answer cut short, claimed as finished.
    let cut = &ids[..ids.len() / 2];
    let cut_text = tok.decode(cut, false).unwrap();
    reject(&claim(&cut_text, cut, "stop", p), "truncated answer");
    // One token appended after the stop token, and the stop token replaced by another token.
    let mut longer = ids.clone();
    longer.push(ids[0]);
    reject(&claim(text, &longer, "stop", p), "appended token");
    let mut replaced = ids.clone();
    *replaced.last_mut().unwrap() = ids[0];
    let replaced_text = tok.decode(&replaced, false).unwrap();
    reject(
        &claim(&replaced_text, &replaced, "stop", p),
        "stop token replaced",
    );
    // Text that is not the tokens, a wrong prompt length, a wrong finish reason.
    reject(
        &claim("The capital of France is Rome.", &ids, "stop", p),
        "text not matching",
    );
    reject(&claim(text, &ids, "stop", p + 1), "wrong prompt_tokens");
    reject(&claim(text, &ids, "length", p), "wrong finish_reason");
    // Malformed claims are a verdict, not an error.
    for bad in [
        &b"{not json"[..],
        b"",
        b"{}",
        br#"{"text":"Paris"}"#,
        b"[1,2,3]",
    ] {
        let v = reject(bad, "malformed claim");
        assert_eq!(v.quality_ppm, 0);
    }
    // compare (used when re-running): exact token ids.
    let own = serde_json::to_vec(&honest).unwrap();
    assert!(r.one.compare(&own, &own).unwrap().matches);
    assert!(
        !r.one
            .compare(&claim(text, cut, "stop", p), &own)
            .unwrap()
            .matches
    );
    assert!(!r.one.compare(b"nope", &own).unwrap().matches);
}

#[test]
fn bad_inputs_fail_with_errors_naming_the_problem() {
    let mut r = runners();
    let long = "word ".repeat(3000);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "empty"),
        (b"   \n".to_vec(), "empty"),
        (br#"{"prompt": ""}"#.to_vec(), "prompt is empty"),
        (br#"{"messages": []}"#.to_vec(), "messages is empty"),
        (long.clone().into_bytes(), "2048"),
        (br#"{"messages": "hello"}"#.to_vec(), "messages"),
        (
            br#"{"messages": [{"role": "user"}]}"#.to_vec(),
            "messages[0].content",
        ),
        (
            br#"{"messages": [{"role": "robot", "content": "hi"}]}"#.to_vec(),
            "robot",
        ),
        (br#"{"question": "hi"}"#.to_vec(), "question"),
        (
            br#"{"prompt": "hi", "max_tokens": "many"}"#.to_vec(),
            "max_tokens",
        ),
        (br#"{"prompt": "hi", "stop": [""]}"#.to_vec(), "stop[0]"),
        (
            br#"{"prompt": "hi", "max_tokens": 0}"#.to_vec(),
            "max_tokens is 0",
        ),
        (
            br#"{"prompt": "hi", "max_tokens": 10000}"#.to_vec(),
            "max_tokens is 10000",
        ),
        (
            br#"{"messages": [{"role": "user", "content": "hi"}"#.to_vec(),
            "not valid JSON",
        ),
        (vec![0xff, 0xfe, 0x41], "UTF-8"),
        (
            br#"{"prompt": "hi", "stream_to": "ftp://gw/x"}"#.to_vec(),
            "stream_to",
        ),
        (br#"{"prompt": "hi", "stream_to": 7}"#.to_vec(), "stream_to"),
    ];
    for (input, needle) in cases {
        match r.one.run(&input) {
            Err(e @ InferenceError::InputInvalid(_)) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(needle),
                    "error {msg:?} should mention {needle:?}"
                );
            }
            other => panic!(
                "{:?}: expected InputInvalid, got {other:?}",
                String::from_utf8_lossy(&input)
            ),
        }
    }
    // A long prompt's error says both numbers.
    let err = r.one.run(long.as_bytes()).unwrap_err().to_string();
    assert!(
        err.contains("2048") && err.contains("tokens plus max_tokens 64"),
        "{err}"
    );
}
