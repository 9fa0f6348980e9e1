//! The `image-classification` kind on the real EfficientNet-Lite0 bundle (`make models` builds it
//! in `.deps/models/efficientnet-lite0`): the committed sample photos get a sensible top-1, 1 and
//! 2 threads agree, the top-1 rule accepts honest outputs and rejects counterfeit, foreign and
//! malformed ones, and bad inputs fail with errors naming the problem.

use std::io::Cursor;
use std::path::PathBuf;
use std::time::Instant;

use inference::{kinds, Bundle, InferenceError, Kind, LoadOptions, Runner, Runtime};

fn bundle() -> Bundle {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.deps/models/efficientnet-lite0");
    assert!(
        dir.join("manifest.json").is_file(),
        "the efficientnet-lite0 bundle is missing at {}: run `make models` (or \
         `.deps/bundles-venv/bin/python models/efficientnet-lite0/recipe.py --out .deps/models/efficientnet-lite0`)",
        dir.display()
    );
    Bundle::open_dir(&dir).expect("the efficientnet-lite0 bundle opens")
}

fn runner_with(threads: usize, max_input_bytes: usize) -> Box<dyn Runner> {
    let runtime = Runtime::init(None).expect("ONNX Runtime must be installed: run `make deps-ort`");
    let opts = LoadOptions {
        threads: Some(threads),
        max_input_bytes,
        ..LoadOptions::default()
    };
    let r = kinds::load(&runtime, &bundle(), opts).expect("the efficientnet-lite0 bundle loads");
    assert_eq!(r.kind(), Kind::ImageClassification);
    r
}

fn runner(threads: usize) -> Box<dyn Runner> {
    runner_with(threads, inference::DEFAULT_MAX_INPUT_BYTES)
}

struct Sample {
    file: String,
    bytes: Vec<u8>,
    acceptable: Vec<String>,
}

fn samples() -> Vec<Sample> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/efficientnet-lite0/samples");
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("samples.json")).unwrap()).unwrap();
    list.iter()
        .map(|s| {
            let file = s["file"].as_str().unwrap().to_string();
            Sample {
                bytes: std::fs::read(dir.join(&file)).unwrap(),
                file,
                acceptable: s["acceptable"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l.as_str().unwrap().to_string())
                    .collect(),
            }
        })
        .collect()
}

fn top5(out: &[u8]) -> Vec<(u64, String, f64)> {
    let v: serde_json::Value = serde_json::from_slice(out).unwrap();
    v["top5"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["index"].as_u64().unwrap(),
                c["label"].as_str().unwrap().to_string(),
                c["probability"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn png(img: &image::RgbImage) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png).unwrap();
    buf.into_inner()
}

#[test]
fn samples_get_a_sensible_top1() {
    let mut r = runner(1);
    for s in samples() {
        let out = r.run(&s.bytes).unwrap();
        let t = top5(&out);
        assert_eq!(t.len(), 5);
        assert!(s.acceptable.contains(&t[0].1), "{}: top-5 {t:?}", s.file);
        assert!(t.windows(2).all(|w| w[0].2 >= w[1].2), "{t:?} not sorted");
        let sum: f64 = t.iter().map(|c| c.2).sum();
        assert!(sum > 0.0 && sum <= 1.000_01, "{sum}");
    }
}

#[test]
fn verify_accepts_honest_outputs_at_1_and_2_threads_and_rejects_wrong_ones() {
    let mut one = runner(1);
    let mut two = runner(2);
    let samples = samples();
    let cat = &samples[0].bytes;
    let coffee = &samples[1].bytes;
    let out1 = one.run(cat).unwrap();
    let out2 = two.run(cat).unwrap();
    let idx = |o: &[u8]| top5(o).iter().map(|c| c.0).collect::<Vec<_>>();
    assert_eq!(idx(&out1), idx(&out2));
    for claimed in [&out1, &out2] {
        for r in [&mut one, &mut two] {
            let v = r.verify(cat, claimed).unwrap();
            assert!(v.matches, "{}", v.reason);
            assert_eq!(v.quality_ppm, 1_000_000);
        }
    }
    // counterfeit: 5 random distinct labels
    let fake = one.counterfeit(cat, 3).unwrap();
    let f = top5(&fake);
    assert_eq!(f.len(), 5);
    assert_ne!(fake, one.counterfeit(cat, 4).unwrap());
    let v = two.verify(cat, &fake).unwrap();
    assert!(!v.matches, "{}", v.reason);
    // another image's honest output
    let other = one.run(coffee).unwrap();
    let v = one.verify(cat, &other).unwrap();
    assert!(!v.matches, "{}", v.reason);
    // malformed claims are verdicts, not errors
    let mut relabelled: serde_json::Value = serde_json::from_slice(&out1).unwrap();
    relabelled["top5"][0]["label"] = "not a label".into();
    for bad in [
        b"not json".to_vec(),
        b"{}".to_vec(),
        br#"{"top5":[]}"#.to_vec(),
        br#"{"top5":[{"index":99999,"label":"x","probability":0.5}]}"#.to_vec(),
        serde_json::to_vec(&relabelled).unwrap(),
    ] {
        let v = one.verify(cat, &bad).unwrap();
        assert!(!v.matches, "{} accepted", String::from_utf8_lossy(&bad));
        assert_eq!(v.quality_ppm, 0);
    }
}

#[test]
fn bad_inputs_fail_with_errors_naming_the_problem() {
    let mut r = runner(1);
    let invalid = |r: &mut Box<dyn Runner>, input: &[u8]| -> String {
        match r.run(input) {
            Err(InferenceError::InputInvalid(m)) => m,
            other => panic!("expected InputInvalid, got {other:?}"),
        }
    };
    assert!(invalid(&mut r, b"hello, not an image").contains("not an image"));
    assert!(invalid(&mut r, b"GIF89a\x01\x00\x01\x00\x00\x00\x00").contains("Gif"));
    assert!(invalid(
        &mut r,
        b"BM\x1e\x00\x00\x00\x00\x00\x00\x00\x1a\x00\x00\x00"
    )
    .contains("Bmp"));
    let good = png(&image::RgbImage::from_pixel(
        64,
        48,
        image::Rgb([200, 30, 30]),
    ));
    let truncated = invalid(&mut r, &good[..good.len() / 2]);
    assert!(truncated.contains("does not decode"), "{truncated}");
    // An extreme strip would resize to 256 x 2,560,000 pixels: refused from the header.
    let strip = png(&image::RgbImage::new(1, 10_000));
    assert!(invalid(&mut r, &strip).contains("aspect ratio"));
    // A 1x1 image works: it is scaled up to 256 x 256 like any other.
    let dot = png(&image::RgbImage::from_pixel(
        1,
        1,
        image::Rgb([10, 200, 10]),
    ));
    assert_eq!(top5(&r.run(&dot).unwrap()).len(), 5);
    // Over the byte limit.
    let mut small = runner_with(1, 1000);
    let big = &samples()[0].bytes;
    let e = small.run(big).unwrap_err();
    assert!(
        matches!(e, InferenceError::InputTooLarge { max: 1000, .. }),
        "{e:?}"
    );
    assert!(matches!(
        small.run(b""),
        Err(InferenceError::InputInvalid(_))
    ));
}

/// Figures for the model card: top-1 on the samples, latency per task at 1 thread, and the top-1
/// rule's false-positive rate across 1 and 2 threads (samples, mirrored, rotated and greyscale variants).
/// Run with `--nocapture`.
#[test]
fn measure_accuracy_latency_and_false_positives() {
    let mut one = runner(1);
    let mut two = runner(2);
    let samples = samples();
    let mut correct = 0;
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for s in &samples {
        let t = top5(&one.run(&s.bytes).unwrap());
        let ok = s.acceptable.contains(&t[0].1);
        correct += usize::from(ok);
        println!(
            "{}: top-1 {:?} p={} ok={ok}; top-5 {:?}",
            s.file, t[0].1, t[0].2, t
        );
        let img = image::load_from_memory(&s.bytes).unwrap().to_rgb8();
        inputs.push(s.bytes.clone());
        inputs.push(png(&image::imageops::flip_horizontal(&img)));
        inputs.push(png(&image::imageops::rotate90(&img)));
        inputs.push(png(&image::DynamicImage::ImageLuma8(
            image::DynamicImage::ImageRgb8(img).to_luma8(),
        )
        .to_rgb8()));
    }
    println!(
        "top-1 in the acceptable labels: {correct}/{}",
        samples.len()
    );

    let (mut rejected, mut judged, mut identical) = (0, 0, 0);
    for input in &inputs {
        let o1 = one.run(input).unwrap();
        let o2 = two.run(input).unwrap();
        identical += usize::from(o1 == o2);
        for claimed in [&o1, &o2] {
            for r in [&mut one, &mut two] {
                judged += 1;
                rejected += usize::from(!r.verify(input, claimed).unwrap().matches);
            }
        }
    }
    println!(
        "false positives across 1/2 threads: {rejected}/{judged} honest outputs rejected \
         ({} inputs, {identical} byte-identical across threads)",
        inputs.len()
    );
    assert_eq!(rejected, 0);

    let input = &samples[0].bytes;
    one.run(input).unwrap();
    let n = 10;
    let t0 = Instant::now();
    for _ in 0..n {
        one.run(input).unwrap();
    }
    let ms = t0.elapsed().as_secs_f64() * 1000.0 / n as f64;
    println!("latency at 1 thread: {ms:.1} ms per task (JPEG 385x256 decode + resize + crop + model, mean of {n})");
}
