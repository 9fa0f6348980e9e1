//! `make demo`: a whole DeepNode network on this machine. Starts anvil, deploys, stakes three
//! workers and a validator, registers the digits model, runs three executors and the indexer,
//! submits held-out digit images as paid tasks, waits until they are final and prints who ran
//! what, what it predicted, how each fee was split and how long it took.

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use anyhow::{bail, Context, Result};
use clap::Parser;
use devnet::{digits, free_port, key_hex, Devnet, DevnetConfig};
use protocol::bindings::{ITaskManager, TaskStatus};
use protocol::format_dn;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs a local DeepNode devnet end to end and prints the results.
#[derive(Debug, Parser)]
#[command(name = "deepnode-demo", version, about)]
struct Args {
    /// Number of tasks to submit (held-out digit images).
    #[arg(long, default_value_t = 50)]
    tasks: usize,
    /// Tasks per submitTasks transaction.
    #[arg(long, default_value_t = 10)]
    submit_batch: usize,
    /// Exit after the summary instead of keeping the devnet up (also DN_DEMO_ONCE=1).
    #[arg(long, env = "DN_DEMO_ONCE", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    once: bool,
    /// Port of the indexer's REST API [default: a free port].
    #[arg(long)]
    indexer_port: Option<u16>,
    /// Directory for logs, journals, the indexer DB and model caches (wiped at start).
    #[arg(long, default_value = ".demo")]
    work_dir: PathBuf,
    /// Seconds to wait for all tasks to be final before giving up.
    #[arg(long, default_value_t = 240)]
    timeout: u64,
}

/// Child processes that are stopped when the demo ends, however it ends.
struct Children(Vec<(String, Child)>);
impl Drop for Children {
    fn drop(&mut self) {
        for (name, c) in &mut self.0 {
            // SIGTERM first so services shut down cleanly, then make sure.
            let _ = Command::new("kill").args(["-s", "TERM", "--", &c.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Ok(None) = c.try_wait() {
                eprintln!("demo: {name} did not stop on SIGTERM, killing it");
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn step(msg: &str) {
    eprintln!("==> {msg}");
}

fn sibling_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("binary has no directory")?;
    let p = dir.join(name);
    if !p.exists() {
        bail!("{} not found: build the workspace first (`cargo build --workspace --bins`)", p.display());
    }
    Ok(p)
}

fn spawn_logged(name: &str, bin: &Path, args: &[String], envs: &[(&str, String)], log: &Path) -> Result<Child> {
    let f = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut cmd = Command::new(bin);
    cmd.args(args).stdout(Stdio::from(f.try_clone()?)).stderr(Stdio::from(f)).stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().with_context(|| format!("starting {name} ({})", bin.display()))
}

#[tokio::main]
async fn main() {
    protocol::telemetry::init(0, false);
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("demo: error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let samples = digits::heldout()?;
    if args.tasks == 0 || args.tasks > samples.len() {
        bail!("--tasks must be between 1 and {} (the held-out sample size)", samples.len());
    }
    let executor_bin = sibling_binary("executor")?;
    let indexer_bin = sibling_binary("indexer")?;
    let _ = std::fs::remove_dir_all(&args.work_dir);
    std::fs::create_dir_all(&args.work_dir)?;
    let work_dir = args.work_dir.canonicalize()?;

    step("starting anvil, deploying contracts, staking 3 workers + 1 validator, registering the digits model");
    let net = Devnet::start(DevnetConfig { work_dir: Some(work_dir.join("chain")), ..Default::default() }).await?;
    let d = net.deployment.clone();
    let mut children = Children(Vec::new());

    let port = match args.indexer_port {
        Some(p) => p,
        None => free_port()?,
    };
    let base_url = format!("http://127.0.0.1:{port}");
    step(&format!("starting the indexer on {base_url}"));
    let common = |extra: &[&str]| -> Vec<String> {
        let mut v = vec![
            "--rpc-url".to_string(),
            net.rpc_url.clone(),
            "--deployment".to_string(),
            net.deployment_path.display().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let db = work_dir.join("indexer.sqlite");
    let web = devnet::workspace_root().join("web/dist");
    let mut idx_args = common(&["--db", &db.display().to_string(), "--listen", &format!("127.0.0.1:{port}"), "--confirmations", "1"]);
    if web.exists() {
        idx_args.extend(["--web-dir".to_string(), web.display().to_string()]);
    }
    children.0.push(("indexer".into(), spawn_logged("indexer", &indexer_bin, &idx_args, &[], &work_dir.join("indexer.log"))?));

    step(&format!("starting {} executors", net.workers.len()));
    for (i, w) in net.workers.iter().enumerate() {
        let models = work_dir.join(format!("worker{i}/models"));
        let journal = work_dir.join(format!("worker{i}/journal.jsonl"));
        std::fs::create_dir_all(work_dir.join(format!("worker{i}")))?;
        let a = common(&[
            "--models-dir",
            &models.display().to_string(),
            "--journal",
            &journal.display().to_string(),
            "--device",
            "auto",
            "--poll-interval-ms",
            "500",
        ]);
        let log = work_dir.join(format!("worker{i}/executor.log"));
        let child = spawn_logged("executor", &executor_bin, &a, &[("DN_PRIVATE_KEY", key_hex(w))], &log)?;
        children.0.push((format!("executor {}", w.address()), child));
    }

    let chosen = &samples[..args.tasks];
    step(&format!("submitting {} tasks from user {} ({} per transaction)", chosen.len(), net.user.address(), args.submit_batch));
    let inputs = chosen.iter().map(|s| digits::encode_input(&s.pixels)).collect::<Result<Vec<_>>>()?;
    let ids = net.submit_inputs(net.model_id, &inputs, args.submit_batch).await?;
    if ids.len() != chosen.len() {
        bail!("submitted {} tasks but saw {} TaskSubmitted events", chosen.len(), ids.len());
    }

    step("waiting for results, challenge windows and finalization");
    let reader = net.provider(&net.deployer);
    let tm = ITaskManager::new(d.task_manager, &reader);
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut last_line = String::new();
    loop {
        let mut counts: HashMap<&'static str, usize> = HashMap::new();
        for id in &ids {
            let t = tm.getTask(*id).call().await?;
            let s = TaskStatus::from_u8(t.status).map(|s| s.as_str()).unwrap_or("unknown");
            *counts.entry(s).or_default() += 1;
        }
        let done = counts.get("finalized").copied().unwrap_or(0) + counts.get("refunded").copied().unwrap_or(0);
        let line = format!(
            "    assigned {}, committed {}, failed {}, finalized {} of {}",
            counts.get("assigned").unwrap_or(&0),
            counts.get("committed").unwrap_or(&0),
            counts.get("failed").unwrap_or(&0),
            counts.get("finalized").unwrap_or(&0),
            ids.len()
        );
        if line != last_line {
            eprintln!("{line}");
            last_line = line;
        }
        if done == ids.len() {
            break;
        }
        for (name, c) in &mut children.0 {
            if let Some(status) = c.try_wait()? {
                bail!("{name} exited early with {status}; see the logs in {}", work_dir.display());
            }
        }
        if Instant::now() > deadline {
            bail!("tasks not final after {}s; see the logs in {}", args.timeout, work_dir.display());
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }

    // Read what happened from the chain's events.
    let from = d.start_block;
    let commits = reader
        .get_logs(&Filter::new().address(d.task_manager).event_signature(ITaskManager::ResultsCommitted::SIGNATURE_HASH).from_block(from))
        .await?;
    let mut outputs: HashMap<U256, (Vec<u8>, u16)> = HashMap::new();
    for log in commits {
        let ev = log.log_decode::<ITaskManager::ResultsCommitted>()?.inner.data;
        for (i, id) in ev.taskIds.iter().enumerate() {
            outputs.insert(*id, (ev.outputs[i].to_vec(), ev.codes[i]));
        }
    }
    let finals = reader
        .get_logs(&Filter::new().address(d.task_manager).event_signature(ITaskManager::TaskFinalized::SIGNATURE_HASH).from_block(from))
        .await?;
    let mut finalized: HashMap<U256, ITaskManager::TaskFinalized> = HashMap::new();
    for log in finals {
        let ev = log.log_decode::<ITaskManager::TaskFinalized>()?.inner.data;
        finalized.insert(ev.taskId, ev);
    }

    println!();
    println!(
        "{:>5}  {:<12} {:>9} {:>5}  {:>10} {:>10} {:>10} {:>10}  {:>7}",
        "task", "worker", "predicted", "true", "developer", "worker", "validator", "protocol", "latency"
    );
    let mut correct = 0usize;
    let mut final_count = 0usize;
    let mut per_worker: HashMap<Address, usize> = HashMap::new();
    for (id, sample) in ids.iter().zip(chosen) {
        let predicted = outputs.get(id).and_then(|(o, code)| if *code == 0 { digits::decode_label(o) } else { None });
        if predicted == Some(sample.label) {
            correct += 1;
        }
        let Some(f) = finalized.get(id) else {
            println!("{id:>5}  (refunded: no worker took it)");
            continue;
        };
        final_count += 1;
        *per_worker.entry(f.worker).or_default() += 1;
        let w = f.worker.to_string();
        println!(
            "{:>5}  {:<12} {:>9} {:>5}  {:>10} {:>10} {:>10} {:>10}  {:>6}s",
            id,
            format!("{}..{}", &w[..6], &w[w.len() - 4..]),
            predicted.map(|p| p.to_string()).unwrap_or_else(|| "failed".into()),
            sample.label,
            format_dn(f.developerFee),
            format_dn(f.workerFee),
            format_dn(f.validatorFee),
            format_dn(f.protocolFee),
            f.latency
        );
    }
    println!();
    let mut shares: Vec<_> = per_worker.into_iter().collect();
    shares.sort();
    for (w, n) in shares {
        println!("worker {w}: {n} tasks");
    }
    println!("fees in DN; latency = seconds from assignment to commit (block time 1s)");
    println!("elapsed: {:.0}s from start", started.elapsed().as_secs_f64());
    let pct = if ids.is_empty() { 0.0 } else { 100.0 * correct as f64 / ids.len() as f64 };
    println!("demo: {final_count} tasks finalized, {correct} correct ({pct:.1}%)");
    println!("indexer: {base_url}/health  {base_url}/tasks?limit=5  {base_url}/tasks/{}  {base_url}/nodes  {base_url}/models  {base_url}/openapi.json  {base_url}/metrics", ids[0]);

    if args.once {
        step("DN_DEMO_ONCE set: stopping every process");
        drop(children);
        drop(net);
        return Ok(());
    }
    step("devnet is up (anvil at the RPC above); press Ctrl-C to stop everything");
    println!("rpc: {}  deployment: {}", net.rpc_url, net.deployment_path.display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    step("stopping");
    drop(children);
    drop(net);
    Ok(())
}
