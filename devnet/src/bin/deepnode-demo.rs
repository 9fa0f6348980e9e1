//! `make demo`: a whole DeepNode network on this machine. Starts anvil, deploys, stakes three
//! workers and a validator, registers the digits model, runs three executors and the indexer,
//! submits held-out digit images as paid tasks, waits until they are final and prints who ran
//! what, what it predicted, how each fee was split and how long it took.

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, U256};
use alloy::providers::DynProvider;
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use anyhow::{bail, Context, Result};
use clap::Parser;
use devnet::{digits, free_port, key_hex, Devnet, DevnetConfig};
use protocol::bindings::{ISettlement, ITaskManager, TaskStatus};
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
    /// Settlement epochs to run; the tasks are submitted in one wave per epoch.
    #[arg(long, default_value_t = 3)]
    epochs: u64,
    /// Epoch length in seconds.
    #[arg(long, default_value_t = 14)]
    epoch_length: u64,
    /// Freeze the last worker's executor (SIGSTOP) during epoch 0, as a hung node would be: its
    /// tasks miss their deadline, are reassigned, and its trust and task share fall.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    flaky_worker: bool,
}

/// Child processes that are stopped when the demo ends, however it ends.
struct Children(Vec<(String, Child)>);
impl Drop for Children {
    fn drop(&mut self) {
        for (name, c) in &mut self.0 {
            // SIGTERM first so services shut down cleanly, then make sure.
            let _ = Command::new("kill")
                .args(["-s", "TERM", "--", &c.id().to_string()])
                .status();
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
        bail!(
            "{} not found: build the workspace first (`cargo build --workspace --bins`)",
            p.display()
        );
    }
    Ok(p)
}

fn spawn_logged(
    name: &str,
    bin: &Path,
    args: &[String],
    envs: &[(&str, String)],
    log: &Path,
) -> Result<Child> {
    let f = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .stdout(Stdio::from(f.try_clone()?))
        .stderr(Stdio::from(f))
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn()
        .with_context(|| format!("starting {name} ({})", bin.display()))
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args(["-s", sig, "--", &pid.to_string()])
        .status();
}

async fn chain_time(p: &DynProvider) -> Result<u64> {
    let block = p
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await?
        .context("no latest block")?;
    Ok(block.header.timestamp)
}

/// Waits until the chain's clock reaches `at`, printing task progress meanwhile.
async fn wait_for_chain_time(
    p: &DynProvider,
    at: u64,
    tm: &ITaskManager::ITaskManagerInstance<&DynProvider>,
    ids: &[U256],
    last_line: &mut String,
) -> Result<()> {
    while chain_time(p).await? < at {
        progress(tm, ids, last_line).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// Prints a status line when it changes; returns how many tasks are final.
async fn progress(
    tm: &ITaskManager::ITaskManagerInstance<&DynProvider>,
    ids: &[U256],
    last_line: &mut String,
) -> Result<usize> {
    let mut counts: HashMap<&'static str, usize> = HashMap::new();
    for id in ids {
        let t = tm.getTask(*id).call().await?;
        let s = TaskStatus::from_u8(t.status)
            .map(|s| s.as_str())
            .unwrap_or("unknown");
        *counts.entry(s).or_default() += 1;
    }
    let n = |k: &str| counts.get(k).copied().unwrap_or(0);
    let line = format!(
        "    assigned {}, committed {}, failed {}, finalized {}, refunded {} of {}",
        n("assigned"),
        n("committed"),
        n("failed"),
        n("finalized"),
        n("refunded"),
        ids.len()
    );
    if !ids.is_empty() && line != *last_line {
        eprintln!("{line}");
        *last_line = line;
    }
    Ok(n("finalized") + n("refunded"))
}

/// Anyone may reassign a task whose worker missed the response deadline; the demo does it for
/// its own tasks (the missed deadline is recorded and the worker jailed briefly).
async fn reassign_overdue(
    p: &DynProvider,
    tm: &ITaskManager::ITaskManagerInstance<&DynProvider>,
    tm_admin: &ITaskManager::ITaskManagerInstance<&DynProvider>,
    ids: &[U256],
) -> Result<()> {
    let now = chain_time(p).await?;
    for id in ids {
        let t = tm.getTask(*id).call().await?;
        if TaskStatus::from_u8(t.status) == Some(TaskStatus::Assigned) && t.deadline < now {
            let call = tm_admin.reassign(*id);
            let gas = call.estimate_gas().await?;
            let r = call.gas(gas * 3 / 2).send().await?.get_receipt().await?;
            eprintln!(
                "    task {id}: worker {} missed its deadline, reassigned (tx {})",
                t.worker, r.transaction_hash
            );
        }
    }
    Ok(())
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
        bail!(
            "--tasks must be between 1 and {} (the held-out sample size)",
            samples.len()
        );
    }
    let executor_bin = sibling_binary("executor")?;
    let indexer_bin = sibling_binary("indexer")?;
    let _ = std::fs::remove_dir_all(&args.work_dir);
    std::fs::create_dir_all(&args.work_dir)?;
    let work_dir = args.work_dir.canonicalize()?;

    step("starting anvil, deploying contracts, staking 3 workers + 1 validator, registering the digits model");
    if args.epochs == 0 || args.epoch_length < 8 {
        bail!("--epochs must be >= 1 and --epoch-length >= 8 seconds");
    }
    let verifier_bin = sibling_binary("verifier")?;
    let net = Devnet::start(DevnetConfig {
        work_dir: Some(work_dir.join("chain")),
        epoch_length: Some(args.epoch_length),
        response_window: (args.epoch_length / 2).max(4),
        jail_duration: Some(args.epoch_length / 2),
        ..Default::default()
    })
    .await?;
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
    let mut idx_args = common(&[
        "--db",
        &db.display().to_string(),
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--confirmations",
        "1",
    ]);
    if web.exists() {
        idx_args.extend(["--web-dir".to_string(), web.display().to_string()]);
    }
    children.0.push((
        "indexer".into(),
        spawn_logged(
            "indexer",
            &indexer_bin,
            &idx_args,
            &[],
            &work_dir.join("indexer.log"),
        )?,
    ));

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
        let child = spawn_logged(
            "executor",
            &executor_bin,
            &a,
            &[("DN_PRIVATE_KEY", key_hex(w))],
            &log,
        )?;
        children
            .0
            .push((format!("executor {}", w.address()), child));
    }

    step(&format!(
        "starting the verifier of validator {}",
        net.validators[0].address()
    ));
    let v_args = common(&[
        "--db",
        &work_dir.join("verifier.sqlite").display().to_string(),
        "--confirmations",
        "1",
        "--poll-interval-ms",
        "500",
    ]);
    let v_child = spawn_logged(
        "verifier",
        &verifier_bin,
        &v_args,
        &[("DN_PRIVATE_KEY", key_hex(&net.validators[0]))],
        &work_dir.join("verifier.log"),
    )?;
    children.0.push(("verifier".into(), v_child));

    let reader = net.provider(&net.deployer);
    let tm = ITaskManager::new(d.task_manager, &reader);
    let settlement = ISettlement::new(d.settlement, &reader);
    let flaky_pid = children
        .0
        .iter()
        .rev()
        .find(|(n, _)| n.starts_with("executor"))
        .map(|(_, c)| c.id());
    let flaky_addr = net.workers.last().map(|w| w.address());
    let chosen = &samples[..args.tasks];
    let inputs = chosen
        .iter()
        .map(|s| digits::encode_input(&s.pixels))
        .collect::<Result<Vec<_>>>()?;
    let per_wave = inputs.len().div_ceil(args.epochs as usize);
    let mut ids: Vec<U256> = Vec::with_capacity(inputs.len());
    let mut wave_of: HashMap<U256, u64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut last_line = String::new();
    for (e, wave) in inputs.chunks(per_wave).enumerate() {
        let e = e as u64;
        // Mid-epoch, so the trust refreshed from the previous epoch's report is in force.
        let start = settlement.epochEnd(e).call().await?.to::<u64>() - args.epoch_length;
        wait_for_chain_time(
            &reader,
            start + args.epoch_length / 2,
            &tm,
            &ids,
            &mut last_line,
        )
        .await?;
        if e == 0 && args.flaky_worker {
            if let (Some(pid), Some(addr)) = (flaky_pid, flaky_addr) {
                step(&format!(
                    "freezing worker {addr} (SIGSTOP) for epoch 0: a hung node"
                ));
                signal(pid, "STOP");
            }
        }
        if e == 1 && args.flaky_worker {
            if let (Some(pid), Some(addr)) = (flaky_pid, flaky_addr) {
                step(&format!("resuming worker {addr} (SIGCONT)"));
                signal(pid, "CONT");
            }
        }
        step(&format!(
            "epoch {e}: submitting {} tasks from user {} ({} per transaction)",
            wave.len(),
            net.user.address(),
            args.submit_batch
        ));
        let wave_ids = net
            .submit_inputs(net.model_id, wave, args.submit_batch)
            .await?;
        if wave_ids.len() != wave.len() {
            bail!(
                "submitted {} tasks but saw {} TaskSubmitted events",
                wave.len(),
                wave_ids.len()
            );
        }
        for id in &wave_ids {
            wave_of.insert(*id, e);
        }
        ids.extend(wave_ids);
    }
    if let (true, 1, Some(pid)) = (args.flaky_worker, args.epochs, flaky_pid) {
        signal(pid, "CONT");
    }

    step("waiting for results, reassigning missed deadlines, challenge windows and finalization");
    let deployer = net.provider(&net.deployer);
    let tm_admin = ITaskManager::new(d.task_manager, &deployer);
    loop {
        reassign_overdue(&reader, &tm, &tm_admin, &ids).await?;
        if progress(&tm, &ids, &mut last_line).await? == ids.len() {
            break;
        }
        for (name, c) in &mut children.0 {
            if let Some(status) = c.try_wait()? {
                bail!(
                    "{name} exited early with {status}; see the logs in {}",
                    work_dir.display()
                );
            }
        }
        if Instant::now() > deadline {
            bail!(
                "tasks not final after {}s; see the logs in {}",
                args.timeout,
                work_dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }

    // Read what happened from the chain's events.
    let from = d.start_block;
    let commits = reader
        .get_logs(
            &Filter::new()
                .address(d.task_manager)
                .event_signature(ITaskManager::ResultsCommitted::SIGNATURE_HASH)
                .from_block(from),
        )
        .await?;
    let mut outputs: HashMap<U256, (Vec<u8>, u16)> = HashMap::new();
    for log in commits {
        let ev = log
            .log_decode::<ITaskManager::ResultsCommitted>()?
            .inner
            .data;
        for (i, id) in ev.taskIds.iter().enumerate() {
            outputs.insert(*id, (ev.outputs[i].to_vec(), ev.codes[i]));
        }
    }
    let finals = reader
        .get_logs(
            &Filter::new()
                .address(d.task_manager)
                .event_signature(ITaskManager::TaskFinalized::SIGNATURE_HASH)
                .from_block(from),
        )
        .await?;
    let mut finalized: HashMap<U256, ITaskManager::TaskFinalized> = HashMap::new();
    for log in finals {
        let ev = log.log_decode::<ITaskManager::TaskFinalized>()?.inner.data;
        finalized.insert(ev.taskId, ev);
    }

    println!();
    println!(
        "{:>5}  {:<12} {:>9} {:>5}  {:>10} {:>10} {:>10} {:>10}  {:>7}",
        "task",
        "worker",
        "predicted",
        "true",
        "developer",
        "worker",
        "validator",
        "protocol",
        "latency"
    );
    let mut correct = 0usize;
    let mut final_count = 0usize;
    let mut per_worker: HashMap<Address, usize> = HashMap::new();
    for (id, sample) in ids.iter().zip(chosen) {
        let predicted = outputs.get(id).and_then(|(o, code)| {
            if *code == 0 {
                digits::decode_label(o)
            } else {
                None
            }
        });
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
            predicted
                .map(|p| p.to_string())
                .unwrap_or_else(|| "failed".into()),
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
    println!(
        "elapsed: {:.0}s from start",
        started.elapsed().as_secs_f64()
    );
    let pct = if ids.is_empty() {
        0.0
    } else {
        100.0 * correct as f64 / ids.len() as f64
    };
    println!("demo: {final_count} tasks finalized, {correct} correct ({pct:.1}%)");
    println!("indexer: {base_url}/health  {base_url}/tasks?limit=5  {base_url}/tasks/{}  {base_url}/nodes  {base_url}/models  {base_url}/openapi.json  {base_url}/metrics", ids[0]);

    if args.once {
        step("DN_DEMO_ONCE set: stopping every process");
        drop(children);
        drop(net);
        return Ok(());
    }
    step("devnet is up (anvil at the RPC above); press Ctrl-C to stop everything");
    println!(
        "rpc: {}  deployment: {}",
        net.rpc_url,
        net.deployment_path.display()
    );
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
