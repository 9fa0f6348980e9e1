//! The model catalogue end to end on anvil: every kind's real bundle (language model, embeddings,
//! speech recognition, OCR, image classification), registered by manifest hash, run by executor
//! processes from real user inputs (large ones through the blob store), audited by a verifier
//! with the kind's own rule, and finalized; and cheats on text generation and OCR caught by
//! audits and a dispute quorum. Needs `make models`.

use alloy::primitives::U256;
use anyhow::{Context, Result};
use devnet::catalogue::{self, CATALOGUE};
use devnet::{Devnet, DevnetConfig};
use protocol::bindings::{IAuditManager, ITaskManager};
use std::collections::HashMap;
use std::time::Duration;

mod common;
use common::*;

/// Inputs above this go through the blob store (the TaskManager caps inline inputs at 64 KiB).
const INLINE_MAX: usize = 32 * 1024;

struct Registered {
    dir: &'static str,
    kind: String,
    model_id: u32,
}

async fn register_catalogue(net: &Devnet, dirs: &[&'static str]) -> Result<Vec<Registered>> {
    let mut out = Vec::new();
    for dir in dirs {
        let manifest = catalogue::manifest(dir)?;
        let kind = catalogue::kind_of(&manifest)?;
        let model_id = net
            .register_bundle(&catalogue::bundle_dir(dir), net.config.model_price_wei)
            .await
            .with_context(|| format!("registering {dir}"))?;
        out.push(Registered {
            dir,
            kind,
            model_id,
        });
    }
    Ok(out)
}

fn blobstore(net: &Devnet) -> (std::process::Child, String) {
    devnet::spawn_blobstore(
        &bin("blobstore"),
        &net.work_dir.join("blobs"),
        &net.work_dir.join("blobstore.log"),
    )
    .expect("blobstore starts")
}

/// The input as submitted: inline when small, else a blob reference to its copy in the store.
async fn submittable(client: &blobstore::Client, url: &str, input: Vec<u8>) -> Result<Vec<u8>> {
    if input.len() <= INLINE_MAX {
        return Ok(input);
    }
    Ok(client.put(url, input).await?.encode())
}

/// Every task's output bytes by task id (blob references fetched and verified).
async fn outputs(
    net: &Devnet,
    client: &blobstore::Client,
) -> Result<HashMap<U256, (u16, Vec<u8>)>> {
    let mut out = HashMap::new();
    for ev in events::<ITaskManager::ResultsCommitted>(net, net.deployment.task_manager).await? {
        for (i, id) in ev.taskIds.iter().enumerate() {
            let published = ev.outputs[i].to_vec();
            let bytes = match blobstore::BlobRef::decode(&published) {
                None => published,
                Some(r) => client.fetch(&r?).await?,
            };
            assert_eq!(
                alloy::primitives::keccak256(&bytes),
                ev.outputHashes[i],
                "task {id}: published output matches the committed hash"
            );
            out.insert(*id, (ev.codes[i], bytes));
        }
    }
    Ok(out)
}

fn every_task_audited(workers: usize, validators: usize) -> DevnetConfig {
    DevnetConfig {
        workers,
        validators,
        challenge_window: 60,
        response_window: 300,
        audit_p0_wad: Some(WAD),
        audit_p_min_wad: Some(WAD),
        dispute_window: Some(90),
        quorum: Some(3),
        ..Default::default()
    }
}

fn executor_flags(url: &str) -> Vec<String> {
    vec![
        "--blob-store".into(),
        url.into(),
        "--max-loaded-models".into(),
        "5".into(),
        "--threads".into(),
        "1".into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_runs_end_to_end_and_passes_its_audits() -> Result<()> {
    let _turn = SERIAL.lock().await;
    let net = Devnet::start(every_task_audited(2, 1)).await?;
    let mut procs = Procs(Vec::new());
    let (store, url) = blobstore(&net);
    procs.0.push(store);
    let models = register_catalogue(&net, &CATALOGUE).await?;
    procs.0.push(verifier_with(
        &net,
        0,
        "honest",
        &["--threads".into(), "1".into()],
        &[],
    ));
    for i in 0..net.workers.len() {
        procs.0.push(executor(&net, i, &executor_flags(&url)));
    }
    // every draw uses the weights of its commit block: the verifier joins before anything is committed
    net.wait_validators_joined(&[0], Duration::from_secs(120))
        .await?;

    let client = blobstore::Client::new(Duration::from_secs(30), 64 << 20)?;
    let mut submitted: Vec<(usize, U256)> = Vec::new();
    for (m, r) in models.iter().enumerate() {
        let mut inputs = Vec::new();
        for input in catalogue::inputs(r.dir, &r.kind, 2)? {
            inputs.push(submittable(&client, &url, input).await?);
        }
        let ids = net.submit_inputs(r.model_id, &inputs, 8).await?;
        submitted.extend(ids.into_iter().map(|id| (m, id)));
    }
    // Bad input, each a task that must end with a failure code naming the problem (and a
    // refund): a blob reference whose URL serves other bytes, one whose server is unreachable,
    // and an "image" that does not decode.
    let ocr = models
        .iter()
        .find(|r| r.dir == "ppocr")
        .context("ppocr registered")?;
    let real = client.put(&url, b"some other payload".to_vec()).await?;
    let lying = blobstore::BlobRef {
        sha256: [0x5a; 32],
        url: real.url.clone(),
    };
    let unreachable = blobstore::BlobRef {
        sha256: [0x5a; 32],
        url: format!(
            "http://127.0.0.1:{}/blobs/{}",
            devnet::free_port()?,
            "5a".repeat(32)
        ),
    };
    let bad_inputs = vec![
        lying.encode(),
        unreachable.encode(),
        b"\x89PNG\r\n\x1a\n truncated".to_vec(),
    ];
    let bad_ids = net.submit_inputs(ocr.model_id, &bad_inputs, 8).await?;
    let ids: Vec<U256> = submitted
        .iter()
        .map(|(_, id)| *id)
        .chain(bad_ids.iter().copied())
        .collect();
    let statuses = match wait_settled(&net, &ids, Duration::from_secs(900)).await {
        Ok(s) => s,
        Err(e) => panic!(
            "{e}\n{}\n{}",
            logs_of(&net, "verifier"),
            logs_of(&net, "executor")
        ),
    };
    let outs = outputs(&net, &client).await?;
    let verdicts: HashMap<U256, bool> =
        events::<IAuditManager::VerdictAccepted>(&net, net.deployment.audit_manager)
            .await?
            .into_iter()
            .map(|v| (v.taskId, v.matches))
            .collect();
    let expect_failures = [
        (8u16, "sha256 mismatch"),
        (8, "127.0.0.1"),
        (1, "image does not decode"),
    ];
    for (id, (code, words)) in bad_ids.iter().zip(expect_failures) {
        let (got, bytes) = outs.get(id).context("bad input committed")?;
        let message = String::from_utf8_lossy(bytes);
        assert_eq!(*got, code, "task {id}: {message}");
        assert!(message.contains(words), "task {id}: {message}");
    }
    for ((m, id), status) in submitted.iter().zip(&statuses) {
        let r = &models[*m];
        let (code, bytes) = outs.get(id).context("committed output")?;
        let summary = catalogue::summarize(&r.kind, bytes);
        eprintln!("task {id} {} {}: {summary}", r.dir, r.kind);
        assert_eq!(
            *code,
            0,
            "task {id} ({}) failed: {}",
            r.dir,
            String::from_utf8_lossy(bytes)
        );
        assert_eq!(*status, 4, "task {id} ({}) finalized", r.dir);
        assert_eq!(
            verdicts.get(id),
            Some(&true),
            "task {id} ({}) audited and passed",
            r.dir
        );
    }
    // The real answers, per kind (first input of each).
    let first = |dir: &str| {
        let m = models.iter().position(|r| r.dir == dir).unwrap();
        let id = submitted.iter().find(|(i, _)| *i == m).unwrap().1;
        serde_json::from_slice::<serde_json::Value>(&outs[&id].1).unwrap()
    };
    let answer = first("smollm2")["text"].as_str().unwrap().to_string();
    assert!(answer.contains("Paris"), "{answer}");
    assert_eq!(first("minilm")["embedding"].as_array().unwrap().len(), 384);
    let transcript = first("whisper-tiny-en")["text"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(
        transcript.contains("fox") || transcript.contains("quick"),
        "{transcript}"
    );
    let ocr = first("ppocr")["text"].as_str().unwrap().to_string();
    assert!(!ocr.is_empty(), "ocr read some text");
    let label = first("efficientnet-lite0")["top5"][0]["label"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!label.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cheats_on_text_generation_and_ocr_are_caught_and_slashed() -> Result<()> {
    let _turn = SERIAL.lock().await;
    let net = Devnet::start(every_task_audited(1, 4)).await?;
    let mut procs = Procs(Vec::new());
    let (store, url) = blobstore(&net);
    procs.0.push(store);
    let models = register_catalogue(&net, &["smollm2", "ppocr"]).await?;
    for i in 0..net.validators.len() {
        procs.0.push(verifier_with(
            &net,
            i,
            "honest",
            &["--threads".into(), "1".into()],
            &[],
        ));
    }
    let cheat_log = net.work_dir.join("cheated.txt");
    let mut flags = executor_flags(&url);
    flags.extend([
        "--test-cheat-rate".into(),
        "1".into(),
        "--test-cheat-log".into(),
        cheat_log.display().to_string(),
    ]);
    procs.0.push(executor(&net, 0, &flags));
    let all: Vec<usize> = (0..net.validators.len()).collect();
    net.wait_validators_joined(&all, Duration::from_secs(120))
        .await?;

    let mut ids = Vec::new();
    for r in &models {
        let input = catalogue::inputs(r.dir, &r.kind, 1)?;
        ids.extend(net.submit_inputs(r.model_id, &input, 1).await?);
    }
    let statuses = match wait_settled(&net, &ids, Duration::from_secs(900)).await {
        Ok(s) => s,
        Err(e) => panic!(
            "{e}\n{}\n{}",
            logs_of(&net, "verifier"),
            logs_of(&net, "executor")
        ),
    };
    let cheated: Vec<U256> = std::fs::read_to_string(&cheat_log)?
        .lines()
        .map(|l| l.trim().parse())
        .collect::<Result<_, _>>()?;
    assert_eq!(cheated.len(), ids.len(), "the cheater faked every result");
    assert_eq!(statuses, vec![5; ids.len()], "every cheated task refunded");
    let cheater = net.workers[0].address();
    let fraud = slashes(&net)
        .await?
        .into_iter()
        .filter(|s| s.0 == cheater && s.2 == 1)
        .count();
    assert_eq!(fraud, ids.len(), "one fraud slash per cheated task");
    Ok(())
}
