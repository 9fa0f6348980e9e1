//! The devnet issue's "done" check as a test: the real demo (anvil, forge deploy, three executor
//! processes running ONNX Runtime, the indexer) finalizes every task, and its accuracy line
//! matches ONNX Runtime run directly on the same images. Afterwards nothing it started runs.

use std::process::Command;

fn direct_onnx_runtime_correct(n: usize) -> usize {
    let rt = inference::Runtime::init(None).expect("ONNX Runtime library (make deps-ort)");
    let mut model = inference::Model::load(
        &rt,
        devnet::digits::model_path(),
        inference::Device::Cpu,
        Some(1),
    )
    .expect("load digits");
    let samples = devnet::digits::heldout().expect("heldout.json");
    samples[..n]
        .iter()
        .filter(|s| {
            let input = devnet::digits::encode_input(&s.pixels).unwrap();
            let out = model.run(&input).expect("direct run");
            devnet::digits::decode_label(&out) == Some(s.label)
        })
        .count()
}

fn parse_summary(stdout: &str) -> (usize, usize) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("demo: ") && l.contains("tasks finalized"))
        .unwrap_or_else(|| panic!("no summary line in demo output:\n{stdout}"));
    // demo: N tasks finalized, M correct (X%)
    let words: Vec<&str> = line.split_whitespace().collect();
    let n: usize = words[1].parse().expect("N");
    let m: usize = words[4].parse().expect("M");
    assert!(line.ends_with("%)"), "summary line form: {line}");
    (n, m)
}

#[test]
fn demo_finalizes_all_tasks_and_matches_direct_onnx_runtime() {
    let tasks = 50;
    let dir = tempfile_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_deepnode-demo"))
        .args(["--tasks", &tasks.to_string(), "--work-dir"])
        .arg(&dir)
        .env("DN_DEMO_ONCE", "1")
        .output()
        .expect("run deepnode-demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    let (finalized, correct) = parse_summary(&stdout);
    assert_eq!(finalized, tasks, "every task finalizes:\n{stdout}");
    assert_eq!(
        correct,
        direct_onnx_runtime_correct(tasks),
        "demo accuracy == ONNX Runtime run directly"
    );
    // The table has one row per task and the fee split adds up to the price (1 DN).
    // The task table runs from its header to the first blank line.
    let rows: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !(l.trim_start().starts_with("task") && l.contains("predicted")))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(rows.len(), tasks, "one table row per task:\n{stdout}");
    for r in &rows {
        let cols: Vec<&str> = r.split_whitespace().collect();
        let split: f64 = cols[4..8]
            .iter()
            .map(|c| c.parse::<f64>().expect("fee column"))
            .sum();
        assert!(
            (split - 1.0).abs() < 1e-9,
            "fee split of `{r}` sums to {split}, not the 1 DN price"
        );
    }
    // One line per catalogue model: every task finalized, audited (the demo audits every
    // catalogue task) and passed, with a real example.
    for dir in devnet::catalogue::CATALOGUE {
        let manifest = devnet::catalogue::manifest(dir).unwrap();
        let prefix = format!(
            "demo: model {} {}: ",
            manifest["name"].as_str().unwrap(),
            manifest["kind"].as_str().unwrap()
        );
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no `{prefix}...` line:\n{stdout}"));
        let nums: Vec<usize> = line[prefix.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .filter(|t| !t.is_empty())
            .take(3)
            .map(|t| t.parse().unwrap())
            .collect();
        assert_eq!(nums[0], 3, "every task of {dir} finalized: {line}");
        assert_eq!(nums[1], 3, "every task of {dir} audited: {line}");
        assert_eq!(nums[2], 3, "every audit of {dir} passed: {line}");
        assert!(line.contains(" passed, e.g. "), "{line}");
        assert!(!line.ends_with("(no output)"), "{line}");
    }
    assert!(
        stdout.contains("indexer: http://127.0.0.1:"),
        "indexer URLs printed"
    );
    // issue 14: probe emission (the deploy default) with the prober in the first verifier: its
    // probe wallets revealed after their epochs, and workers paid for the probes they served
    let probes = stdout
        .lines()
        .find_map(|l| l.strip_prefix("demo: prober "))
        .unwrap_or_else(|| panic!("no `demo: prober` line:\n{stdout}"));
    let words: Vec<&str> = probes.split_whitespace().collect();
    let (probe_tasks, wallets): (usize, usize) =
        (words[0].parse().unwrap(), words[4].parse().unwrap());
    assert!(wallets >= 1 && probe_tasks >= wallets, "{probes}");
    let settled = stdout
        .lines()
        .find(|l| l.starts_with("demo: ") && l.contains(" epochs settled, "))
        .unwrap_or_else(|| panic!("no epochs line:\n{stdout}"));
    let claimers: usize = settled
        .split(" DN claimed by ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("epochs line form: {settled}"));
    assert!(
        claimers >= 1,
        "a worker that served probes claims a reward: {settled}"
    );
    // issue 14: the attack simulation over the same epoch rules, at its default parameters
    let sim = stdout
        .lines()
        .find_map(|l| l.strip_prefix("demo: sim "))
        .unwrap_or_else(|| panic!("no `demo: sim` line:\n{stdout}"));
    let (k, verdict) = sim
        .split_once(" strategies, ")
        .expect("demo: sim K strategies, ...");
    assert!(k.parse::<usize>().expect("K") >= 14, "{sim}");
    assert_eq!(verdict, "all unprofitable at these parameters", "{sim}");
    // the gateway: its URL, and six calls through OpenAI's API, each checked on-chain
    let gateway = stdout
        .lines()
        .find_map(|l| l.strip_prefix("gateway: http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("gateway URL printed:\n{stdout}"));
    let line = stdout
        .lines()
        .find(|l| l.starts_with("demo: gateway "))
        .unwrap_or_else(|| panic!("gateway line:\n{stdout}"));
    assert!(
        line.starts_with("demo: gateway 6 calls (text-generation, embeddings), first token p50 ")
            && line.ends_with(" ms, all verified on-chain"),
        "{line}"
    );
    // the worker streamed the tokens: first token and whole answer both measured
    let latency = stdout
        .lines()
        .find_map(|l| l.strip_prefix("demo: streamed chat latency: first token p50 "))
        .unwrap_or_else(|| panic!("streamed latency line:\n{stdout}"));
    let ms: Vec<u64> = latency
        .split(" ms")
        .filter_map(|p| p.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(ms.len() == 2 && ms[0] <= ms[1], "{latency}");
    assert!(
        std::net::TcpStream::connect(format!("127.0.0.1:{gateway}")).is_err(),
        "gateway still listening after DN_DEMO_ONCE"
    );
    // Nothing left running: the indexer URL no longer answers.
    let url = stdout
        .lines()
        .find_map(|l| l.strip_prefix("indexer: "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let port = url
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap();
    assert!(
        std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err(),
        "indexer still listening after DN_DEMO_ONCE"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("deepnode-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}
