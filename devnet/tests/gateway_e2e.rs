//! The gateway end to end with OpenAI's official Python client: a real anvil, the language model
//! (SmolLM2), the embedding model (MiniLM) and Whisper registered by bundle, an executor serving
//! them, a blob store for the audio, and the `gateway` binary paying for every call from its
//! wallet. The client lists the models, asks a chat question (whole and streamed), embeds two
//! sentences (base64 and float), transcribes a spoken sentence, and gets
//! OpenAI-shaped errors for an unknown model, a wrong kind, an unknown field, max_tokens 0 and an
//! empty input. Every answer names its task, which the chain confirms. Needs `make models` and
//! `make deps-openai`.

use alloy::primitives::{keccak256, U256};
use alloy::providers::Provider;
use anyhow::{Context, Result};
use devnet::catalogue;
use devnet::{Devnet, DevnetConfig};
use protocol::bindings::{IAuditManager, ITaskManager};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod common;
use common::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `GET /healthz` until the gateway answers.
async fn wait_healthy(url: &str, net: &Devnet) -> Result<()> {
    let start = Instant::now();
    loop {
        if let Ok(r) = reqwest_get(&format!("{url}/healthz")).await {
            if r == "ok" {
                return Ok(());
            }
        }
        if start.elapsed() > Duration::from_secs(60) {
            panic!("gateway not up:\n{}", logs_of(net, "gateway"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn reqwest_get(url: &str) -> Result<String> {
    let r = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await?
        .error_for_status()?;
    Ok(r.text().await?)
}

/// Starts a gateway paying from `key`'s wallet, named `name` (its log and cache under the
/// devnet's `gateway/` directory), with `extra` flags; returns it and its URL once healthy.
async fn start_gateway(
    net: &Devnet,
    name: &str,
    key: &alloy::signers::local::PrivateKeySigner,
    extra: &[&str],
) -> Result<(std::process::Child, String)> {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = net.work_dir.join("gateway");
    std::fs::create_dir_all(&dir)?;
    let mut args = chain_args(net);
    args.extend([
        "--listen".to_string(),
        format!("127.0.0.1:{port}"),
        "--cache-dir".to_string(),
        dir.join(format!("cache-{name}")).display().to_string(),
    ]);
    args.extend(extra.iter().map(|a| a.to_string()));
    let mut child = spawn("gateway", &args, key, &[], &dir.join(format!("{name}.log")));
    if let Err(e) = wait_healthy(&url, net).await {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    Ok((child, url))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_client_chats_streams_embeds_and_gets_clear_errors() -> Result<()> {
    let _turn = SERIAL.lock().await;
    let net = Devnet::start(DevnetConfig {
        workers: 1,
        validators: 1,
        response_window: 300,
        challenge_window: 60,
        ..Default::default()
    })
    .await?;
    let chat = net
        .register_bundle(
            &catalogue::bundle_dir("smollm2"),
            net.config.model_price_wei,
        )
        .await
        .context("registering smollm2")?;
    let embed = net
        .register_bundle(&catalogue::bundle_dir("minilm"), net.config.model_price_wei)
        .await
        .context("registering minilm")?;
    let speech = net
        .register_bundle(
            &catalogue::bundle_dir("whisper-tiny-en"),
            net.config.model_price_wei,
        )
        .await
        .context("registering whisper-tiny-en")?;
    let (store, store_url) = devnet::spawn_blobstore(
        &bin("blobstore"),
        &net.work_dir.join("blobs"),
        &net.work_dir.join("blobstore.log"),
    )?;
    let mut procs = Procs(vec![
        store,
        executor(
            &net,
            0,
            &[
                "--blob-store".into(),
                store_url.clone(),
                "--max-loaded-models".into(),
                "3".into(),
                "--threads".into(),
                "2".into(),
            ],
        ),
    ]);
    let (gateway, url) = start_gateway(
        &net,
        "gateway",
        &net.user,
        &["--task-timeout-secs", "280", "--blob-store", &store_url],
    )
    .await?;
    procs.0.push(gateway);
    let dir = net.work_dir.join("gateway");

    // a spoken sentence (about 97 KB: the gateway puts it in the blob store)
    let wav = repo().join("models/whisper-tiny-en/samples/weather.wav");
    let python = repo().join(".deps/openai-venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run make deps-openai",
        python.display()
    );
    let out = tokio::process::Command::new(&python)
        .arg(repo().join("gateway/tests/openai_client.py"))
        .args([
            url.clone(),
            format!("deepnode/{chat}"),
            format!("deepnode/{embed}"),
            format!("deepnode/{speech}"),
            wav.display().to_string(),
        ])
        .output()
        .await?;
    assert!(
        out.status.success(),
        "openai client failed: {}\n{}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        logs_of(&net, "gateway"),
        logs_of(&net, "executor")
    );
    let r: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| String::from_utf8_lossy(&out.stdout).into_owned())?;

    // the catalogue, with DeepNode's fields
    let models = r["models"].as_object().expect("models");
    assert_eq!(
        models[&format!("deepnode/{chat}")]["kind"],
        "text-generation"
    );
    assert_eq!(models[&format!("deepnode/{embed}")]["kind"], "embeddings");
    assert_eq!(r["retrieved"], format!("deepnode/{chat}"));
    assert_eq!(models["deepnode/auto-chat"]["alias"], true);

    // chat: SmolLM2's greedy answer, its usage, and the task behind it
    let text = r["chat"]["text"].as_str().unwrap();
    assert!(text.contains("Paris"), "{r}");
    assert!(r["chat"]["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert!(r["chat"]["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(r["chat"]["verified"], "true");
    let task_id: U256 = r["chat"]["task_id"].as_str().unwrap().parse()?;
    let p = net.provider(&net.user);
    let tm = ITaskManager::new(net.deployment.task_manager, &p);
    let t = tm.getTask(task_id).call().await?;
    assert_eq!(
        t.submitter,
        net.user.address(),
        "paid by the gateway's wallet"
    );
    assert_eq!(t.modelId, chat);
    assert!(
        [2u8, 4].contains(&t.status),
        "committed or finalized: {}",
        t.status
    );
    assert_eq!(
        r["chat"]["worker"].as_str().unwrap(),
        t.worker.to_checksum(None)
    );
    // the answer is the committed output: its text is in the bytes whose hash is on-chain
    let committed = events::<ITaskManager::ResultsCommitted>(&net, net.deployment.task_manager)
        .await?
        .into_iter()
        .find_map(|e| {
            let i = e.taskIds.iter().position(|x| *x == task_id)?;
            Some((e.outputs[i].clone(), e.outputHashes[i]))
        })
        .expect("the chat task was committed");
    assert_eq!(keccak256(&committed.0), committed.1);
    let output: Value = serde_json::from_slice(&committed.0)?;
    assert_eq!(output["text"], text);

    // streaming: the same deterministic answer, in chunks, with usage; a task of its own
    assert_eq!(r["stream"]["text"], r["chat"]["text"], "{r}");
    assert_eq!(r["stream"]["finish_reason"], r["chat"]["finish_reason"]);
    assert_eq!(r["stream"]["usage"], r["chat"]["usage"]);
    assert_ne!(r["stream"]["task_id"], r["chat"]["task_id"]);
    // ...streamed by the worker while it generated: the first token came before the commit, in
    // several chunks, and the committed answer is what was streamed
    assert_eq!(r["stream"]["status_at_first_token"], "assigned", "{r}");
    assert!(r["stream"]["chunks"].as_u64().unwrap() > 1, "{r}");
    let info = &r["stream"]["deepnode"];
    assert_eq!(info["verified"], true, "{r}");
    assert_eq!(
        info["streamed_tokens"], r["stream"]["usage"]["completion_tokens"],
        "every token streamed: {r}"
    );
    assert_eq!(info["task_id"], r["stream"]["task_id"]);
    eprintln!(
        "gateway streaming on the devnet: first token {:.0} ms, total {:.0} ms",
        r["stream"]["first_token_ms"].as_f64().unwrap_or(f64::NAN),
        r["stream"]["total_ms"].as_f64().unwrap_or(f64::NAN)
    );
    // a caller that left after the first token leaves no open stream behind
    let start = Instant::now();
    loop {
        let open: Value = serde_json::from_str(&reqwest_get(&format!("{url}/streams")).await?)?;
        if open["open"] == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "streams still open: {open}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let abandoned: U256 = r["abandoned_task_id"].as_str().unwrap().parse()?;

    // embeddings: two related sentences, base64 (the client's default) and float agree
    assert_eq!(r["embeddings"]["n"], 2);
    assert_eq!(r["embeddings"]["dims"], 384);
    let cos = r["embeddings"]["cosine"].as_f64().unwrap();
    assert!(cos > 0.5 && cos < 0.999, "related sentences: cosine {cos}");
    assert!(r["embeddings"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(r["float_vs_base64"].as_f64().unwrap() < 1e-6, "{r}");

    // speech: the WAV through the blob store to Whisper, as json and as text
    let heard = r["transcription"]["text"].as_str().unwrap().to_lowercase();
    assert!(heard.contains("sunny") && heard.contains("breeze"), "{r}");
    assert_eq!(
        r["transcription"]["text_format"].as_str().unwrap().trim(),
        r["transcription"]["text"].as_str().unwrap().trim()
    );

    // errors a client library understands, each naming what is wrong
    let e = &r["errors"];
    assert_eq!(e["unknown_model"]["status"], 404, "{e}");
    assert_eq!(e["unknown_model"]["body"]["code"], "model_not_found");
    assert_eq!(e["wrong_kind"]["status"], 422, "{e}");
    assert_eq!(e["wrong_kind"]["body"]["param"], "model");
    assert_eq!(e["unknown_field"]["status"], 422, "{e}");
    assert_eq!(e["unknown_field"]["body"]["param"], "tmperature");
    assert_eq!(e["zero_max_tokens"]["status"], 422, "{e}");
    assert_eq!(e["zero_max_tokens"]["body"]["param"], "max_tokens");
    assert_eq!(e["empty_input"]["status"], 422, "{e}");
    assert_eq!(e["empty_input"]["body"]["param"], "input[1]");

    // none of the refused calls cost anything: 3 chats (one abandoned) + 3 embeddings + 2
    // transcriptions paid
    let head = p.get_block_number().await?;
    let submitted = events::<ITaskManager::TaskSubmitted>(&net, net.deployment.task_manager)
        .await?
        .into_iter()
        .filter(|s| s.submitter == net.user.address())
        .count();
    assert_eq!(submitted, 8, "tasks paid by the gateway (head {head})");

    // concurrent calls to one model are paid together: fewer submitTasks than calls
    let http = reqwest::Client::new();
    let calls: Vec<_> = (0..4)
        .map(|i| {
            let http = http.clone();
            let url = url.clone();
            tokio::spawn(async move {
                http.post(format!("{url}/v1/embeddings"))
                    .json(&serde_json::json!({"model": format!("deepnode/{embed}"), "input": format!("sentence number {i}")}))
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for call in calls {
        let r = call.await?;
        assert!(r.status().is_success(), "{}", r.status());
        ids.push(
            r.headers()["x-deepnode-task-id"]
                .to_str()?
                .parse::<U256>()?,
        );
    }
    let logs = p
        .get_logs(
            &alloy::rpc::types::Filter::new()
                .address(net.deployment.task_manager)
                .event_signature(
                    <ITaskManager::TaskSubmitted as alloy::sol_types::SolEvent>::SIGNATURE_HASH,
                )
                .from_block(head + 1),
        )
        .await?;
    let txs: std::collections::HashSet<_> = logs
        .iter()
        .filter(|l| {
            l.log_decode::<ITaskManager::TaskSubmitted>()
                .is_ok_and(|d| ids.contains(&d.inner.data.taskId))
        })
        .map(|l| l.transaction_hash)
        .collect();
    assert_eq!(
        logs.len(),
        4,
        "one task per call, no other submission meanwhile"
    );
    assert!(
        txs.len() < 4,
        "4 concurrent calls in {} transactions",
        txs.len()
    );

    // an alias: the gateway routes deepnode/auto-embed to the one embeddings model and says why
    let routed = http
        .post(format!("{url}/v1/embeddings"))
        .json(&serde_json::json!({"model": "deepnode/auto-embed", "input": "routed"}))
        .send()
        .await?;
    assert_eq!(routed.status(), 200);
    let why = routed.headers()["x-deepnode-route"].to_str()?.to_string();
    assert!(
        why.starts_with(&format!("deepnode/auto-embed -> deepnode/{embed}: ")),
        "{why}"
    );
    assert_eq!(
        routed.headers()["x-deepnode-model-id"].to_str()?,
        embed.to_string()
    );

    // routing measured over 100 real calls: a second embeddings model at 10x the price; a gateway
    // with seeded exploration draws (reproducible) sends every best-score call to the cheaper
    // model and about 10% of calls to a uniformly drawn one, so the dearer model gets traffic too
    let dear = net
        .register_bundle(
            &catalogue::bundle_dir("minilm"),
            net.config.model_price_wei * U256::from(10),
        )
        .await
        .context("registering minilm again")?;
    let (router_gw, url3) = start_gateway(
        &net,
        "gateway3",
        &net.user,
        &["--route-seed", "7", "--task-timeout-secs", "280"],
    )
    .await?;
    procs.0.push(router_gw);
    let mut picks: Vec<(u32, String)> = Vec::new();
    for wave in 0..5 {
        let calls: Vec<_> = (0..20)
            .map(|i| {
                let http = http.clone();
                let url = url3.clone();
                tokio::spawn(async move {
                    let r = http
                        .post(format!("{url}/v1/embeddings"))
                        .json(&serde_json::json!({"model": "deepnode/auto-embed", "input": format!("call {wave}-{i}")}))
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success(), "{}", r.status());
                    let id: u32 = r.headers()["x-deepnode-model-id"].to_str().unwrap().parse().unwrap();
                    (id, r.headers()["x-deepnode-route"].to_str().unwrap().to_string())
                })
            })
            .collect();
        for c in calls {
            picks.push(c.await?);
        }
    }
    let explored: Vec<_> = picks
        .iter()
        .filter(|(_, why)| why.contains("exploration"))
        .collect();
    let best: Vec<_> = picks
        .iter()
        .filter(|(_, why)| why.contains("best score"))
        .collect();
    assert_eq!(explored.len() + best.len(), 100);
    assert!(
        best.iter().all(|(id, _)| *id == embed),
        "every best-score call goes to the cheaper model: {best:?}"
    );
    assert!(
        (3..=20).contains(&explored.len()),
        "about 10% explore: {}",
        explored.len()
    );
    let to_dear = picks.iter().filter(|(id, _)| *id == dear).count();
    assert!(to_dear >= 1, "exploration reaches the dearer model");
    eprintln!(
        "routing over 100 calls: {} to the cheaper model, {to_dear} to the 10x dearer one ({} explored)",
        100 - to_dear,
        explored.len()
    );

    // a pipeline: speech -> text -> the language model, each step a paid task
    let before = events::<ITaskManager::TaskSubmitted>(&net, net.deployment.task_manager)
        .await?
        .len();
    let audio = base64_of(&std::fs::read(&wav)?);
    let piped: Value = http
        .post(format!("{url}/v1/pipelines"))
        .json(&serde_json::json!({"steps": [
            {"model": "deepnode/auto-transcribe", "input_base64": audio},
            {"model": format!("deepnode/{chat}"), "input": {"messages": [{"role": "user", "content": "Repeat this sentence: {{previous}}"}], "max_tokens": 8}},
        ]}))
        .send()
        .await?
        .json()
        .await?;
    let steps = piped["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("{piped}"));
    assert_eq!(steps.len(), 2, "{piped}");
    assert!(steps[0]["output"]["text"]
        .as_str()
        .unwrap()
        .contains("sunny"));
    assert_eq!(steps[1]["model"], format!("deepnode/{chat}"));
    assert!(!steps[1]["output"]["text"].as_str().unwrap().is_empty());
    assert_eq!(piped["output"], steps[1]["output"]);
    // a failed step stops it: the step after it is never submitted
    let stopped = http
        .post(format!("{url}/v1/pipelines"))
        .json(&serde_json::json!({"steps": [
            {"model": format!("deepnode/{embed}"), "input": "first"},
            {"model": "deepnode/999", "input": "second"},
            {"model": format!("deepnode/{embed}"), "input": "third"},
        ]}))
        .send()
        .await?;
    assert_eq!(stopped.status(), 404);
    let msg = stopped.json::<Value>().await?["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.starts_with("step 1 (deepnode/999) failed")
            && msg.contains("1 later step(s) not run and not paid")
            && msg.contains("steps 0 to 0 ran and were paid"),
        "{msg}"
    );
    let after = events::<ITaskManager::TaskSubmitted>(&net, net.deployment.task_manager)
        .await?
        .len();
    assert_eq!(
        after - before,
        3,
        "2 steps + the stopped pipeline's first step"
    );

    // API keys: a second gateway that requires them; a key with a budget of 1.5 calls
    let keys_db = dir.join("keys.sqlite");
    let created = std::process::Command::new(bin("gateway"))
        .args(["keys", "create", "--db"])
        .arg(&keys_db)
        .args(["--name", "app", "--budget", "2.5", "--json"])
        .output()?;
    assert!(created.status.success(), "{created:?}");
    let key = serde_json::from_slice::<Value>(&created.stdout)?["key"]
        .as_str()
        .unwrap()
        .to_string();
    let keys_path = keys_db.display().to_string();
    let (gateway2, url2) = start_gateway(
        &net,
        "gateway2",
        &net.developer,
        &["--keys-db", &keys_path, "--refund-poll-secs", "1"],
    )
    .await?;
    procs.0.push(gateway2);
    let embed_call = |auth: Option<String>| {
        let mut r = http.post(format!("{url2}/v1/embeddings")).json(
            &serde_json::json!({"model": format!("deepnode/{embed}"), "input": "a keyed call"}),
        );
        if let Some(a) = auth {
            r = r.bearer_auth(a);
        }
        r.send()
    };
    let no_key = embed_call(None).await?;
    assert_eq!(no_key.status(), 401);
    assert_eq!(
        no_key.json::<Value>().await?["error"]["code"],
        "invalid_api_key"
    );
    let bad_key = embed_call(Some("dn-not-a-key".into())).await?;
    assert_eq!(bad_key.status(), 401);
    let paid = embed_call(Some(key.clone())).await?;
    assert_eq!(paid.status(), 200, "{:?}", paid.text().await);
    // bytes that are no WAV: the worker commits an input fault (422), and the chain will refund
    // 90% of the fee (the worker keeps its processing share)
    let garbage = http
        .post(format!("{url2}/v1/tasks"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"model": format!("deepnode/{speech}"), "input_base64": base64_of(b"not a wav file at all")}))
        .send()
        .await?;
    assert_eq!(garbage.status(), 422, "{:?}", garbage.text().await);
    let refunded: U256 = garbage.headers()["x-deepnode-task-id"].to_str()?.parse()?;
    let over = embed_call(Some(key.clone())).await?;
    assert_eq!(over.status(), 402);
    assert_eq!(
        over.json::<Value>().await?["error"]["code"],
        "insufficient_funds"
    );
    let spent = || -> Result<U256> {
        let listed = std::process::Command::new(bin("gateway"))
            .args(["keys", "list", "--json", "--db"])
            .arg(&keys_db)
            .output()?;
        let listed: Value = serde_json::from_slice(&listed.stdout)?;
        Ok(listed[0]["spent_wei"].as_str().unwrap().parse()?)
    };
    let price = net.config.model_price_wei;
    assert_eq!(spent()?, price * U256::from(2));
    // the abandoned stream's task was still answered and paid
    let settled = wait_settled(&net, &[abandoned, refunded], Duration::from_secs(180)).await?;
    assert_eq!(
        settled,
        vec![4, 4],
        "abandoned stream's task finalized and paid; the input fault finalized"
    );
    // the input fault's on-chain refund (the fee less the worker's processing share) is credited
    // back to the key, which can call again
    let share = tm.failureProcessingBps().call().await?;
    let expected = price * U256::from(2) - price * U256::from(10_000 - share) / U256::from(10_000);
    let start = Instant::now();
    while spent()? != expected {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "spent {} != {expected}:\n{}",
            spent()?,
            logs_of(&net, "gateway")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let again = embed_call(Some(key.clone())).await?;
    assert_eq!(
        again.status(),
        200,
        "the refund made room: {:?}",
        again.text().await
    );
    drop(procs);
    Ok(())
}

/// A worker that streams one answer and commits another: the caller is told that what it read is
/// not the committed answer (with the committed text), and the gateway challenges the task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_streaming_what_it_does_not_commit_is_flagged_and_challenged() -> Result<()> {
    let _turn = SERIAL.lock().await;
    // no sampled audits: the gateway's challenge is what brings the task before validators
    let net = Devnet::start(DevnetConfig {
        workers: 1,
        validators: 1,
        response_window: 300,
        challenge_window: 120,
        audit_p0_wad: Some(0),
        audit_p_min_wad: Some(0),
        ..Default::default()
    })
    .await?;
    let chat = net
        .register_bundle(
            &catalogue::bundle_dir("smollm2"),
            net.config.model_price_wei,
        )
        .await
        .context("registering smollm2")?;
    let mut procs = Procs(vec![executor(
        &net,
        0,
        &["--threads".into(), "2".into(), "--test-cheat-stream".into()],
    )]);
    let (gateway, url) =
        start_gateway(&net, "gateway", &net.user, &["--task-timeout-secs", "280"]).await?;
    procs.0.push(gateway);

    let r = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .json(&serde_json::json!({
            "model": format!("deepnode/{chat}"),
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "max_tokens": 12,
            "stream": true,
        }))
        .timeout(Duration::from_secs(300))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let task_id: U256 = r.headers()["x-deepnode-task-id"].to_str()?.parse()?;
    let body = r.text().await?;
    let chunks: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let read: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    let last = chunks
        .iter()
        .find(|c| c.get("deepnode").is_some())
        .unwrap_or_else(|| panic!("no deepnode object in the stream:\n{body}"));
    let info = &last["deepnode"];
    assert_eq!(info["verified"], false, "{body}");
    assert!(
        info["mismatch"].as_str().unwrap().contains("not the start"),
        "{info}"
    );
    // the committed answer is the honest one, and not what the caller read
    let committed = events::<ITaskManager::ResultsCommitted>(&net, net.deployment.task_manager)
        .await?
        .into_iter()
        .find_map(|e| {
            let i = e.taskIds.iter().position(|x| *x == task_id)?;
            Some(e.outputs[i].clone())
        })
        .expect("the task was committed");
    let output: Value = serde_json::from_slice(&committed)?;
    assert_eq!(info["committed_text"], output["text"]);
    assert!(output["text"].as_str().unwrap().contains("Paris"));
    assert_eq!(read, output["text"].as_str().unwrap().to_uppercase());
    // the gateway's wallet challenged the task
    let start = Instant::now();
    let dispute = loop {
        let opened =
            events::<IAuditManager::DisputeOpened>(&net, net.deployment.audit_manager).await?;
        if let Some(d) = opened.into_iter().find(|d| d.taskId == task_id) {
            break d;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no challenge of task {task_id}:\n{}",
            logs_of(&net, "gateway")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(dispute.accuser, net.user.address(), "the gateway's wallet");
    drop(procs);
    Ok(())
}
