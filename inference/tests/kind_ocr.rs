//! The `ocr` kind on the real PP-OCRv4 bundle (`make models` builds .deps/models/ppocr) and the
//! rendered samples in models/ppocr/samples/.

use std::path::PathBuf;
use std::time::Instant;

use inference::kinds::{edit_distance, load, Runner};
use inference::{Bundle, InferenceError, Kind, LoadOptions, Runtime};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bundle() -> Bundle {
    let dir = root().join(".deps/models/ppocr");
    assert!(
        dir.join("manifest.json").exists(),
        "the OCR bundle is missing at {}: run `make models` first",
        dir.display()
    );
    Bundle::open_dir(&dir).expect("the OCR bundle opens")
}

fn runner(threads: usize) -> Box<dyn Runner> {
    let runtime = Runtime::init(None).expect("ONNX Runtime: run `make deps-ort`");
    let opts = LoadOptions {
        threads: Some(threads),
        ..LoadOptions::default()
    };
    let r = load(&runtime, &bundle(), opts).expect("the OCR bundle loads");
    assert_eq!(r.kind(), Kind::Ocr);
    r
}

struct Sample {
    file: String,
    text: String,
    bytes: Vec<u8>,
}

fn samples() -> Vec<Sample> {
    let dir = root().join("models/ppocr/samples");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("samples.json")).unwrap()).unwrap();
    index
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let file = s["file"].as_str().unwrap().to_string();
            Sample {
                bytes: std::fs::read(dir.join(&file)).unwrap(),
                text: s["text"].as_str().unwrap().to_string(),
                file,
            }
        })
        .collect()
}

fn text_of(output: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(output).unwrap();
    v["text"].as_str().unwrap().to_string()
}

fn png(img: image::DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn samples_read_back_and_verify_across_threads() {
    let (mut one, mut two) = (runner(1), runner(2));
    let samples = samples();
    let mut outputs = Vec::new();
    for s in &samples {
        let a = one.run(&s.bytes).unwrap();
        let b = two.run(&s.bytes).unwrap();
        assert_eq!(a, b, "{}: 1 and 2 threads differ", s.file);
        let got = text_of(&a);
        let dist = edit_distance(&got, &s.text);
        assert!(dist <= 1, "{}: read {got:?}, expected {:?}", s.file, s.text);
        if s.file == "invoice.png" {
            assert_eq!(got, "Invoice 2024: total $1,234.56");
            let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
            let line = &v["lines"][0];
            let bbox: Vec<u64> = line["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect();
            assert!(
                bbox[0] < 40 && bbox[2] > 460 && bbox[1] < 100 && bbox[3] > 110,
                "{bbox:?}"
            );
            assert!(line["confidence"].as_f64().unwrap() > 0.9, "{line}");
        }
        // Canonical: the bytes are serde_json's compact form, keys sorted.
        let reparsed: serde_json::Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(serde_json::to_vec(&reparsed).unwrap(), a);
        outputs.push(a);
    }

    for (i, s) in samples.iter().enumerate() {
        let honest = &outputs[i];
        let v = two.verify(&s.bytes, honest).unwrap();
        assert!(
            v.matches,
            "{}: honest output rejected: {}",
            s.file, v.reason
        );
        assert_eq!(v.quality_ppm, 1_000_000);

        let fake = one.counterfeit(&s.bytes, 7 + i as u64).unwrap();
        let lines = |o: &[u8]| {
            serde_json::from_slice::<serde_json::Value>(o).unwrap()["lines"]
                .as_array()
                .unwrap()
                .len()
        };
        assert_eq!(
            lines(&fake),
            lines(honest),
            "{}: counterfeit line count",
            s.file
        );
        let v = one.verify(&s.bytes, &fake).unwrap();
        assert!(!v.matches, "{}: counterfeit accepted: {}", s.file, v.reason);

        let other = &outputs[(i + 1) % outputs.len()];
        let v = one.compare(other, honest).unwrap();
        assert!(!v.matches, "{}: another sample's text accepted", s.file);

        for bad in [&b"not json"[..], b"{}", b"{\"lines\":[],\"text\":7}", b""] {
            let v = one.compare(bad, honest).unwrap();
            assert!(
                !v.matches && v.quality_ppm == 0,
                "{}: malformed {bad:?} accepted",
                s.file
            );
        }
        // Lines that say something else than the text do not match either.
        let mut forged: serde_json::Value = serde_json::from_slice(honest).unwrap();
        forged["lines"] = serde_json::json!([]);
        let v = one
            .compare(&serde_json::to_vec(&forged).unwrap(), honest)
            .unwrap();
        assert!(!v.matches, "{}: inconsistent lines accepted", s.file);
    }

    // One character off in a 30-character line exceeds the 2% tolerance; a long text tolerates it.
    let honest = serde_json::json!({"lines":[{"box":[0,0,9,9],"confidence":0.9,"text":"Invoice 2024: total $1,234.56"}],"text":"Invoice 2024: total $1,234.56"});
    let mut typo = honest.clone();
    typo["lines"][0]["text"] = "Invoice 2024: total $1,234.58".into();
    typo["text"] = "Invoice 2024: total $1,234.58".into();
    let v = one
        .compare(
            &serde_json::to_vec(&typo).unwrap(),
            &serde_json::to_vec(&honest).unwrap(),
        )
        .unwrap();
    assert!(!v.matches && v.quality_ppm > 960_000, "{v:?}");
    let long = "x".repeat(100);
    let mk = |t: &str| {
        serde_json::to_vec(
            &serde_json::json!({"lines":[{"box":[0,0,9,9],"confidence":0.9,"text":t}],"text":t}),
        )
        .unwrap()
    };
    let v = one
        .compare(&mk(&format!("{long}y")), &mk(&format!("{long}z")))
        .unwrap();
    assert!(v.matches && v.quality_ppm == 990_099, "{v:?}");
}

#[test]
fn bad_inputs_give_clean_errors() {
    let mut r = runner(1);
    let invalid = |e: InferenceError| match e {
        InferenceError::InputInvalid(m) => m,
        other => panic!("expected InputInvalid, got {other:?}"),
    };

    let e = invalid(r.run(b"definitely not an image").unwrap_err());
    assert!(e.contains("not an image"), "{e}");
    assert!(r.run(b"").is_err());

    let invoice = std::fs::read(root().join("models/ppocr/samples/invoice.png")).unwrap();
    let e = invalid(r.run(&invoice[..invoice.len() / 2]).unwrap_err());
    assert!(e.contains("does not decode"), "{e}");

    // A blank page is not an error: no lines.
    let blank = png(image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
        600,
        200,
        image::Rgb([255, 255, 255]),
    )));
    let out = r.run(&blank).unwrap();
    assert_eq!(out, br#"{"lines":[],"text":""}"#);
    let v = r.verify(&blank, &out).unwrap();
    assert!(v.matches, "{}", v.reason);

    // Tiny and very wide images still run.
    let tiny = png(image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
        3,
        2,
        image::Rgb([0, 0, 0]),
    )));
    r.run(&tiny).unwrap();

    // Too many pixels: refused from the header, before decoding, naming the size.
    let huge = png(image::DynamicImage::ImageLuma8(image::GrayImage::new(
        4200, 4000,
    )));
    assert!(huge.len() < 1 << 20);
    let e = invalid(r.run(&huge).unwrap_err());
    assert!(e.contains("4200x4000") && e.contains("16777216"), "{e}");
}

#[test]
fn transparent_png_reads_as_paper() {
    // Black ink on a transparent background (RGB 0 everywhere, the ink in the alpha channel).
    let path = root().join("models/ppocr/samples/invoice.png");
    let rgb = image::load_from_memory(&std::fs::read(path).unwrap())
        .unwrap()
        .into_rgb8();
    let rgba = image::RgbaImage::from_fn(rgb.width(), rgb.height(), |x, y| {
        image::Rgba([0, 0, 0, 255 - rgb.get_pixel(x, y)[0]])
    });
    let out = runner(1)
        .run(&png(image::DynamicImage::ImageRgba8(rgba)))
        .unwrap();
    assert_eq!(text_of(&out), "Invoice 2024: total $1,234.56");
}

/// Figures for MODEL_CARD.md: `cargo test -p inference --test kind_ocr -- --nocapture figures`.
#[test]
fn figures() {
    let samples = samples();
    let (mut one, mut two) = (runner(1), runner(2));
    let (mut errors, mut chars, mut rejected_honest, mut judged) = (0, 0, 0, 0);
    for s in &samples {
        let t = Instant::now();
        let a = one.run(&s.bytes).unwrap();
        let ms1 = t.elapsed().as_secs_f64() * 1000.0;
        let t = Instant::now();
        let b = two.run(&s.bytes).unwrap();
        let ms2 = t.elapsed().as_secs_f64() * 1000.0;
        println!("figures: {} -> {}", s.file, String::from_utf8_lossy(&a));
        let d = edit_distance(&text_of(&a), &s.text);
        errors += d;
        chars += s.text.chars().count();
        for (r, claimed) in [(&mut one, &b), (&mut two, &a)] {
            judged += 1;
            if !r.verify(&s.bytes, claimed).unwrap().matches {
                rejected_honest += 1;
            }
        }
        println!(
            "figures: {} {} lines, edit distance {d}, {ms1:.0} ms at 1 thread, {ms2:.0} ms at 2",
            s.file,
            s.text.lines().count()
        );
    }
    println!(
        "figures: character error rate {errors}/{chars}; honest outputs rejected across threads {rejected_honest}/{judged}"
    );
    assert_eq!(rejected_honest, 0);
}
