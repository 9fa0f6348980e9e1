//! `make demo`: a whole DeepNode network on this machine. Starts anvil, deploys, stakes three
//! workers and a validator, registers the digits model, runs three executors and the indexer,
//! submits held-out digit images as paid tasks, waits until they are final and prints who ran
//! what, what it predicted, how each fee was split and how long it took; then the settlement
//! epochs: trust per worker, task share, rewards claimed with the indexer's Merkle proofs.

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, U256};
use alloy::providers::DynProvider;
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use anyhow::{bail, Context, Result};
use clap::Parser;
use devnet::{digits, free_port, key_hex, Devnet, DevnetConfig};
use protocol::bindings::{IAuditManager, ISettlement, IStaking, ITaskManager, TaskStatus};
use protocol::format_dn;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Probe tasks the prober submits per epoch (`verifier --probe-tasks-per-epoch`).
const PROBES_PER_EPOCH: u32 = 3;
/// Held-out images the prober cycles through.
const PROBE_INPUTS: usize = 6;

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
    /// Write the trust-over-epochs chart (SVG) here too (always written to <work-dir>/trust.svg).
    #[arg(long)]
    chart: Option<PathBuf>,
    /// Freeze the last worker's executor (SIGSTOP) during epoch 0, as a hung node would be: its
    /// tasks miss their deadline, are reassigned, and its trust and task share fall.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    flaky_worker: bool,
    /// Skip the model catalogue (language model, embeddings, speech, OCR, image classes) and
    /// run only the digits model.
    #[arg(long)]
    no_catalogue: bool,
    /// Make the first worker cheat (TEST-ONLY executor flag) on --cheat-rate of its tasks, and run
    /// four validators so disputes have a quorum; the summary adds the `demo: cheater` line.
    #[arg(long, env = "DN_DEMO_CHEATER", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    cheater: bool,
    /// Share of its tasks the cheating worker fakes (with --cheater).
    #[arg(long, default_value_t = 0.5)]
    cheat_rate: f64,
    /// Audit rate p0 (p = max(pMin, p0 * (1 - trust))) [default: the protocol's 0.3, or 1.0 with
    /// --cheater, where pMin is set to p0 too so that every task is audited].
    #[arg(long)]
    audit_p0: Option<f64>,
    /// Skip the economics simulation (`make sim`'s strategies at their default parameters, run
    /// on a thread alongside the demo: about two minutes of CPU) and its `demo: sim` line.
    #[arg(long, env = "DN_DEMO_NO_SIM", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    no_sim: bool,
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

type Tm<'a> = ITaskManager::ITaskManagerInstance<&'a DynProvider>;

/// What the waiting loops need: chain access, the tasks so far, the last progress line.
struct Watch<'a> {
    reader: &'a DynProvider,
    tm: Tm<'a>,
    tm_admin: Tm<'a>,
    ids: Vec<U256>,
    last_line: String,
}

impl Watch<'_> {
    async fn chain_time(&self) -> Result<u64> {
        let block = self
            .reader
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await?
            .context("no latest block")?;
        Ok(block.header.timestamp)
    }

    /// Prints a status line when it changes, reassigns tasks whose worker missed the response
    /// deadline (anyone may; the miss is recorded and the worker jailed briefly) and returns
    /// how many tasks are final.
    async fn tick(&mut self) -> Result<usize> {
        let now = self.chain_time().await?;
        let mut counts: HashMap<&'static str, usize> = HashMap::new();
        for id in &self.ids {
            let t = self.tm.getTask(*id).call().await?;
            let status = TaskStatus::from_u8(t.status);
            if status == Some(TaskStatus::Assigned) && t.deadline < now {
                let call = self.tm_admin.reassign(*id);
                // another worker's executor may have reassigned it first (it reassigns the tasks
                // of its models whose worker missed): then the call would revert, nothing to do
                if let Ok(gas) = call.estimate_gas().await {
                    let r = call.gas(gas * 3 / 2).send().await?.get_receipt().await?;
                    eprintln!(
                        "    task {id}: worker {} missed its deadline; reassigned (tx {})",
                        t.worker, r.transaction_hash
                    );
                }
            }
            *counts
                .entry(status.map(|s| s.as_str()).unwrap_or("unknown"))
                .or_default() += 1;
        }
        let n = |k: &str| counts.get(k).copied().unwrap_or(0);
        let line = format!(
            "    assigned {}, committed {}, failed {}, finalized {}, refunded {} of {}",
            n("assigned"),
            n("committed"),
            n("failed"),
            n("finalized"),
            n("refunded"),
            self.ids.len()
        );
        if !self.ids.is_empty() && line != self.last_line {
            eprintln!("{line}");
            self.last_line = line;
        }
        Ok(n("finalized") + n("refunded"))
    }

    async fn until_chain_time(
        &mut self,
        at: u64,
        children: &mut Children,
        deadline: Instant,
    ) -> Result<()> {
        while self.chain_time().await? < at {
            self.tick().await?;
            children.check()?;
            if Instant::now() > deadline {
                bail!("timed out waiting for chain time {at}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(())
    }
}

impl Children {
    fn check(&mut self) -> Result<()> {
        for (name, c) in &mut self.0 {
            if let Some(status) = c.try_wait()? {
                bail!("{name} exited early with {status}; see its log in the demo's work dir");
            }
        }
        Ok(())
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Option<serde_json::Value>> {
    let res = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    if res.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !res.status().is_success() {
        bail!("GET {url}: HTTP {}", res.status());
    }
    Ok(Some(
        res.json()
            .await
            .with_context(|| format!("GET {url}: not JSON"))?,
    ))
}

fn short(a: &Address) -> String {
    let s = a.to_string();
    format!("{}..{}", &s[..6], &s[s.len() - 4..])
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

/// `demo: sim <K> strategies, all unprofitable at these parameters`, or the profitable ones.
fn sim_line(outcomes: &[sim::Outcome]) -> String {
    let profitable: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.ok())
        .map(|o| o.strategy.as_str())
        .collect();
    if profitable.is_empty() {
        format!(
            "demo: sim {} strategies, all unprofitable at these parameters",
            outcomes.len()
        )
    } else {
        format!(
            "demo: sim {} strategies, {} profitable at these parameters: {}",
            outcomes.len(),
            profitable.len(),
            profitable.join(", ")
        )
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
    if args.epochs == 0 || args.epoch_length < 8 {
        bail!("--epochs must be >= 1 and --epoch-length >= 8 seconds");
    }
    // The attack simulation over the same epoch rules, while the devnet works.
    let simulation =
        (!args.no_sim).then(|| std::thread::spawn(|| sim::strategies(&sim::Economy::default())));
    let executor_bin = sibling_binary("executor")?;
    let indexer_bin = sibling_binary("indexer")?;
    let verifier_bin = sibling_binary("verifier")?;
    let _ = std::fs::remove_dir_all(&args.work_dir);
    std::fs::create_dir_all(&args.work_dir)?;
    let work_dir = args.work_dir.canonicalize()?;

    step("starting anvil, deploying contracts, staking 3 workers + 1 validator, registering the digits model");
    if args.cheater && !(0.0..=1.0).contains(&args.cheat_rate) {
        bail!("--cheat-rate must be within 0..=1, got {}", args.cheat_rate);
    }
    let audit_p0 = args
        .audit_p0
        .unwrap_or(if args.cheater { 1.0 } else { 0.3 });
    if !(0.0..=1.0).contains(&audit_p0) {
        bail!("--audit-p0 must be within 0..=1, got {audit_p0}");
    }
    let net = Devnet::start(DevnetConfig {
        work_dir: Some(work_dir.join("chain")),
        validators: if args.cheater { 4 } else { 1 },
        challenge_window: 12,
        audit_p0_wad: Some((audit_p0 * 1e18) as u64),
        // with --cheater every task is audited (p = max(pMin, p0 (1 - T)) = 1 needs pMin = p0)
        audit_p_min_wad: args.cheater.then_some((audit_p0 * 1e18) as u64),
        dispute_window: Some(20),
        epoch_length: Some(args.epoch_length),
        response_window: (args.epoch_length / 2).max(4),
        jail_duration: Some(args.epoch_length / 2),
        initial_emission_dn: Some(1_000),
        // probe emission, the deploy script's default: the first verifier runs the prober
        probe: true,
        ..Default::default()
    })
    .await?;
    let d = net.deployment.clone();
    let mut children = Children(Vec::new());
    let deadline = Instant::now() + Duration::from_secs(args.timeout);

    let port = match args.indexer_port {
        Some(p) => p,
        None => free_port()?,
    };
    let base_url = format!("http://127.0.0.1:{port}");
    let blob_dir = work_dir.join("blobs");
    let (blob_child, blob_url) = devnet::spawn_blobstore(
        &sibling_binary("blobstore")?,
        &blob_dir,
        &work_dir.join("blobstore.log"),
    )?;
    step(&format!(
        "blob store (off-chain task payloads) at {blob_url}"
    ));
    children.0.push(("blobstore".into(), blob_child));

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
        "--poll-interval-ms",
        "500",
        "--blob-store",
        &blob_url,
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
        let dir = work_dir.join(format!("worker{i}"));
        std::fs::create_dir_all(&dir)?;
        let a = common(&[
            "--models-dir",
            &dir.join("models").display().to_string(),
            "--journal",
            &dir.join("journal.jsonl").display().to_string(),
            "--device",
            "auto",
            "--poll-interval-ms",
            "500",
            "--finalize-interval-secs",
            "2",
            "--blob-store",
            &blob_url,
            "--max-loaded-models",
            "6",
        ]);
        let mut a = a;
        if args.cheater && i == 0 {
            a.extend([
                "--test-cheat-rate".to_string(),
                args.cheat_rate.to_string(),
                "--test-cheat-log".to_string(),
                work_dir.join("cheated.txt").display().to_string(),
            ]);
        }
        let child = spawn_logged(
            "executor",
            &executor_bin,
            &a,
            &[("DN_PRIVATE_KEY", key_hex(w))],
            &dir.join("executor.log"),
        )?;
        children
            .0
            .push((format!("executor {}", w.address()), child));
    }
    let flaky = if args.flaky_worker {
        children
            .0
            .last()
            .map(|(_, c)| c.id())
            .zip(net.workers.last().map(|w| w.address()))
    } else {
        None
    };

    // The prober's task inputs: held-out images the demo's own waves do not use (or the first
    // ones when --tasks takes them all); workers cannot tell its tasks from the user's.
    let probe_inputs = work_dir.join("probe-inputs");
    std::fs::create_dir_all(&probe_inputs)?;
    let probe_samples = if samples.len() >= args.tasks + PROBE_INPUTS {
        &samples[samples.len() - PROBE_INPUTS..]
    } else {
        &samples[..PROBE_INPUTS.min(samples.len())]
    };
    for (i, s) in probe_samples.iter().enumerate() {
        std::fs::write(
            probe_inputs.join(format!("{i}.safetensors")),
            digits::encode_input(&s.pixels)?,
        )?;
    }
    let sig_dir = work_dir.join("signatures");
    for (i, v) in net.validators.iter().enumerate() {
        step(&format!(
            "starting the verifier of validator {}",
            v.address()
        ));
        let name = if i == 0 {
            "verifier".to_string()
        } else {
            format!("verifier{i}")
        };
        let mut v_args = common(&[
            "--db",
            &work_dir
                .join(format!("{name}.sqlite"))
                .display()
                .to_string(),
            "--models-dir",
            &work_dir
                .join(format!("{name}-models"))
                .display()
                .to_string(),
            "--signatures-dir",
            &sig_dir.display().to_string(),
            "--confirmations",
            "1",
            "--poll-interval-ms",
            "500",
        ]);
        let mut env = vec![("DN_PRIVATE_KEY", key_hex(v))];
        if let (0, Some(prober)) = (i, &net.prober) {
            // the protocol's prober, in the first verifier's process: its own key (PROBER_ROLE)
            // and a seed for its per-epoch wallets (derived here: anvil's keys are public anyway)
            v_args.extend([
                "--probe-model".to_string(),
                net.model_id.to_string(),
                "--probe-inputs".to_string(),
                probe_inputs.display().to_string(),
                "--probe-tasks-per-epoch".to_string(),
                PROBES_PER_EPOCH.to_string(),
            ]);
            let seed = alloy::primitives::keccak256(
                [
                    b"deepnode-demo probe seed".as_slice(),
                    &prober.to_bytes()[..],
                ]
                .concat(),
            );
            env.push(("DN_PROBE_PRIVATE_KEY", key_hex(prober)));
            env.push(("DN_PROBE_SEED", hex::encode(seed)));
        }
        let v_child = spawn_logged(
            "verifier",
            &verifier_bin,
            &v_args,
            &env,
            &work_dir.join(format!("{name}.log")),
        )?;
        children.0.push((name, v_child));
    }
    // every audit draw uses the validator weights frozen at the result's commit block: the
    // verifiers join the draw before any task is submitted
    step("waiting for the verifiers to join the audit draw");
    let all: Vec<usize> = (0..net.validators.len()).collect();
    net.wait_validators_joined(&all, Duration::from_secs(120))
        .await?;
    children.check()?;

    let reader = net.provider(&net.deployer);
    let admin = net.provider(&net.deployer);
    let user = net.provider(&net.user);
    let settlement = ISettlement::new(d.settlement, &reader);
    let settlement_admin = ISettlement::new(d.settlement, &admin);
    let mut watch = Watch {
        reader: &reader,
        tm: ITaskManager::new(d.task_manager, &reader),
        tm_admin: ITaskManager::new(d.task_manager, &admin),
        ids: Vec::new(),
        last_line: String::new(),
    };

    // One wave of tasks per epoch, submitted mid-epoch so the trust refreshed from the previous
    // epoch's report is already in force.
    let chosen = &samples[..args.tasks];
    let inputs = chosen
        .iter()
        .map(|s| digits::encode_input(&s.pixels))
        .collect::<Result<Vec<_>>>()?;
    let per_wave = inputs.len().div_ceil(args.epochs as usize);
    for (e, wave) in inputs.chunks(per_wave).enumerate() {
        let e = e as u64;
        let start = settlement.epochEnd(e).call().await?.to::<u64>() - args.epoch_length;
        watch
            .until_chain_time(start + args.epoch_length / 2, &mut children, deadline)
            .await?;
        if let Some((pid, addr)) = flaky {
            if e == 0 {
                step(&format!(
                    "freezing worker {addr} (SIGSTOP) through epoch 0, as a hung node would be"
                ));
                signal(pid, "STOP");
            } else if e == 1 {
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
        watch.ids.extend(wave_ids);
    }
    if let (Some((pid, _)), 1) = (flaky, args.epochs) {
        signal(pid, "CONT");
    }

    step("waiting for results, missed deadlines, challenge windows and finalization");
    loop {
        if watch.tick().await? == watch.ids.len() {
            break;
        }
        children.check()?;
        if Instant::now() > deadline {
            bail!(
                "tasks not final after {}s; see the logs in {}",
                args.timeout,
                work_dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    let ids = watch.ids.clone();

    // Read what happened from the chain's events.
    let from = d.start_block;
    let outputs = committed_outputs(&reader, &d).await?;
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

    let audits = audit_outcomes(&reader, &d).await?;
    println!();
    println!(
        "{:>5}  {:<12} {:>9} {:>5}  {:>10} {:>10} {:>10} {:>10}  {:>7}  {:<9}",
        "task",
        "worker",
        "predicted",
        "true",
        "developer",
        "worker",
        "validator",
        "protocol",
        "latency",
        "audit"
    );
    let mut correct = 0usize;
    let mut final_count = 0usize;
    let mut scores: Vec<u8> = Vec::with_capacity(ids.len());
    for (id, sample) in ids.iter().zip(chosen) {
        let predicted = outputs.get(id).and_then(|(o, code)| {
            if *code == 0 {
                digits::decode_label(o)
            } else {
                None
            }
        });
        let right = predicted == Some(sample.label);
        correct += usize::from(right);
        scores.push(if right { 100 } else { 0 });
        let audit = audits.get(id).map(String::as_str).unwrap_or("-");
        let Some(f) = finalized.get(id) else {
            if audit == "fraud" {
                println!("{id:>5}  (refunded: fraud proven by audit and dispute, worker slashed)  {:>29}  {audit:<9}", "");
            } else {
                println!("{id:>5}  (refunded: no worker took it)");
            }
            continue;
        };
        final_count += 1;
        println!(
            "{:>5}  {:<12} {:>9} {:>5}  {:>10} {:>10} {:>10} {:>10}  {:>6}s  {:<9}",
            id,
            short(&f.worker),
            predicted
                .map(|p| p.to_string())
                .unwrap_or_else(|| "failed".into()),
            sample.label,
            format_dn(f.developerFee),
            format_dn(f.workerFee),
            format_dn(f.validatorFee),
            format_dn(f.protocolFee),
            f.latency,
            audit
        );
    }
    println!();
    println!("fees in DN; latency = seconds from assignment to commit (block time 1s)");
    println!("audit: - not drawn, pass = a validator re-executed it and signed a matching verdict, fraud = mismatch upheld by the quorum");
    // the user's tasks only (the prober's are audited too)
    let own: Vec<&String> = ids.iter().filter_map(|id| audits.get(id)).collect();
    let audited = own.len();
    let passed = own.iter().filter(|a| a.as_str() == "pass").count();
    println!(
        "demo: {} of {} tasks audited (p0 = {audit_p0}), {} verdicts passed, {} frauds proven",
        audited,
        ids.len(),
        passed,
        own.iter().filter(|a| a.as_str() == "fraud").count()
    );
    let pct = if ids.is_empty() {
        0.0
    } else {
        100.0 * correct as f64 / ids.len() as f64
    };
    println!("demo: {final_count} tasks finalized, {correct} correct ({pct:.1}%)");
    let digits_line = format!(
        "demo: model digits-mlp tensor: {final_count} tasks finalized, {audited} audited, {passed} passed, e.g. {correct} of {} digits read right",
        ids.len()
    );

    // The user tells the network how good the answers were (the model's measured quality).
    let tm_user = ITaskManager::new(d.task_manager, &user);
    // refunded tasks (fraud proven) cannot be rated: rate the finalized ones
    let (rated_ids, rated_scores): (Vec<U256>, Vec<u8>) = ids
        .iter()
        .zip(&scores)
        .filter(|(id, _)| finalized.contains_key(*id))
        .map(|(id, s)| (*id, *s))
        .unzip();
    for (chunk_ids, chunk_scores) in rated_ids.chunks(32).zip(rated_scores.chunks(32)) {
        let call = tm_user.rateTasks(chunk_ids.to_vec(), chunk_scores.to_vec());
        let gas = call.estimate_gas().await?;
        call.gas(gas * 3 / 2).send().await?.get_receipt().await?;
    }

    step(&format!(
        "waiting for the verifier to settle epochs 0..{}",
        args.epochs - 1
    ));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let last = args.epochs - 1;
    loop {
        let latest = settlement.latestEpoch().call().await?;
        let indexed = get_json(&http, &format!("{base_url}/epochs/{last}")).await?;
        let posted_and_indexed =
            latest.exists && latest.epoch >= last && indexed.is_some_and(|v| v["posted"] == true);
        if posted_and_indexed {
            break;
        }
        watch.tick().await?;
        children.check()?;
        if Instant::now() > deadline {
            bail!(
                "epoch {last} not settled after {}s; see {}",
                args.timeout,
                work_dir.join("verifier.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }

    // Trust and task share per epoch, from the indexer; rewards claimed with its proofs.
    println!();
    println!(
        "{:>5}  {:<12} {:>8} {:>8} {:>7} {:>12}",
        "epoch", "worker", "probes", "on time", "trust", "reward DN"
    );
    let mut claimed_total = U256::ZERO;
    let mut claimers: std::collections::BTreeSet<Address> = Default::default();
    let worker_set: std::collections::BTreeSet<Address> =
        net.workers.iter().map(|w| w.address()).collect();
    let mut trust_now: HashMap<Address, f64> = HashMap::new();
    for e in 0..args.epochs {
        let epoch = get_json(&http, &format!("{base_url}/epochs/{e}"))
            .await?
            .with_context(|| format!("indexer has no epoch {e}"))?;
        let mut rows: Vec<(Address, &serde_json::Value)> = epoch["nodes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| {
                        n["address"]
                            .as_str()
                            .and_then(|s| s.parse().ok())
                            .map(|addr| (addr, n))
                    })
                    .collect()
            })
            .unwrap_or_default();
        rows.sort_by_key(|(a, _)| *a);
        for (addr, n) in rows.into_iter().filter(|(a, _)| worker_set.contains(a)) {
            let trust = n["trust"].as_f64().unwrap_or(0.0);
            trust_now.insert(addr, trust);
            let reward: U256 = n["reward"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_default();
            println!(
                "{:>5}  {:<12} {:>8} {:>8} {:>7.3} {:>12}",
                e,
                short(&addr),
                n["tasks_assigned"].as_i64().unwrap_or(0),
                n["tasks_on_time"].as_i64().unwrap_or(0),
                trust,
                format_dn(reward)
            );
            let Some(claim) =
                get_json(&http, &format!("{base_url}/epochs/{e}/rewards/{addr}")).await?
            else {
                continue;
            };
            if claim["claimed"] == true {
                continue;
            }
            let amount: U256 = claim["amount"].as_str().context("reward amount")?.parse()?;
            let proof: Vec<alloy::primitives::B256> =
                serde_json::from_value(claim["proof"].clone()).context("reward proof")?;
            let r = settlement_admin
                .claim(e, addr, amount, proof)
                .send()
                .await?
                .get_receipt()
                .await?;
            if !r.status() {
                bail!(
                    "claim of epoch {e} for {addr} reverted (tx {})",
                    r.transaction_hash
                );
            }
            claimed_total += amount;
            claimers.insert(addr);
        }
    }
    println!("probes = the prober's tasks assigned to the worker in the epoch (probe emission: they alone set trust and rewards); trust after the epoch (starts at 0.2)");

    // Trust over epochs as a chart, from the indexer's history.
    let mut series = Vec::new();
    for w in &net.workers {
        let hist = get_json(&http, &format!("{base_url}/nodes/{}/trust", w.address())).await?;
        let mut values = vec![None; args.epochs as usize];
        for h in hist
            .as_ref()
            .and_then(|h| h["history"].as_array())
            .into_iter()
            .flatten()
        {
            if let (Some(e), Some(t)) = (h["epoch"].as_u64(), h["trust"].as_f64()) {
                if let Some(slot) = values.get_mut(e as usize) {
                    *slot = Some(t);
                }
            }
        }
        let label = if flaky.map(|(_, a)| a) == Some(w.address()) {
            format!("{} (hung in epoch 0)", short(&w.address()))
        } else {
            short(&w.address())
        };
        series.push(devnet::chart::Series { label, values });
    }
    let svg = devnet::chart::trust_svg("Worker trust after each epoch (deepnode-demo)", &series);
    std::fs::write(work_dir.join("trust.svg"), &svg)?;
    if let Some(path) = &args.chart {
        std::fs::write(path, &svg).with_context(|| format!("--chart {}", path.display()))?;
    }

    let trust_list: Vec<String> = net
        .workers
        .iter()
        .map(|w| {
            format!(
                "{}={:.2}",
                w.address(),
                trust_now.get(&w.address()).copied().unwrap_or(0.0)
            )
        })
        .collect();
    println!(
        "demo: {} epochs settled, {} DN claimed by {} workers, trust {}",
        args.epochs,
        format_dn(claimed_total),
        claimers.len(),
        trust_list.join(" ")
    );
    let (probe_tasks, probe_wallets) = probe_summary(&reader, &d, args.epochs).await?;
    println!(
        "demo: prober {probe_tasks} probe tasks from {probe_wallets} epoch wallets, each revealed after its epoch; rewards follow probes only"
    );
    if args.cheater {
        let cheater = net.workers[0].address();
        let cheated: Vec<U256> = std::fs::read_to_string(work_dir.join("cheated.txt"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        let caught = cheated
            .iter()
            .filter(|id| audits.get(*id).map(String::as_str) == Some("fraud"))
            .count();
        let (slashed, honest) = slash_totals(&reader, &d, cheater).await?;
        println!(
            "demo: cheater {cheater} caught on {caught} of {} cheated tasks, slashed {} DN, honest nodes slashed {honest}",
            cheated.len(),
            format_dn(slashed)
        );
        // Predicted: each cheated task is audited with the rate sealed for its batch, and an
        // audited fake is always a mismatch (its int64 label is random).
        let rates = cheated_rates(&reader, &d, &cheated).await?;
        if !rates.is_empty() {
            let predicted: f64 = rates.iter().sum();
            println!(
                "demo: detection measured {caught}/{} = {:.2}, predicted by the sealed audit rates {:.2} (expected {predicted:.1} caught)",
                cheated.len(),
                caught as f64 / cheated.len() as f64,
                predicted / rates.len() as f64
            );
        }
    }
    println!("{digits_line}");
    if !args.no_catalogue {
        step("registering the model catalogue (one bundle per kind) and submitting real tasks of every kind");
        let lines = run_catalogue(
            &net,
            &reader,
            &blob_url,
            &mut children,
            Duration::from_secs(args.timeout),
        )
        .await?;
        for line in lines {
            println!("{line}");
        }
    }
    let gateway_url = start_gateway(&net, &work_dir, &base_url, &mut children).await?;
    println!("gateway: {gateway_url}");
    if !args.no_catalogue {
        step("calling the catalogue through the gateway (OpenAI's API): streamed chats and embeddings");
        println!(
            "{}",
            gateway_calls(&net, &reader, &gateway_url, &mut children).await?
        );
    }
    if let Some(simulation) = simulation {
        step("waiting for the economics simulation (make sim's strategies)");
        let outcomes = simulation
            .join()
            .map_err(|_| anyhow::anyhow!("the economics simulation panicked"))?;
        println!("{}", sim_line(&outcomes));
    }
    println!(
        "elapsed: {:.0}s from start; trust chart: {}",
        started.elapsed().as_secs_f64(),
        work_dir.join("trust.svg").display()
    );
    println!(
        "indexer: {base_url}/health  {base_url}/tasks?limit=5  {base_url}/tasks/{}  {base_url}/nodes  {base_url}/models  {base_url}/epochs  {base_url}/epochs/0  {base_url}/leaderboard?role=worker  {base_url}/openapi.json  {base_url}/metrics  {base_url}/ (staking page)",
        ids[0]
    );

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

/// Response window (seconds) of the catalogue's tasks.
const CATALOGUE_RESPONSE_WINDOW: u32 = 120;
/// Challenge window (seconds) of the catalogue's results: time for the validator to re-run
/// every kind and post its verdicts before the results finalize.
const CATALOGUE_CHALLENGE_WINDOW: u32 = 60;

/// Probe tasks and probe wallets of epochs `0..epochs`, from the chain: the wallets the prober
/// revealed (`ProbesRevealed`) and the tasks they submitted.
async fn probe_summary(
    reader: &DynProvider,
    d: &protocol::Deployment,
    epochs: u64,
) -> Result<(usize, usize)> {
    let reveals = reader
        .get_logs(
            &Filter::new()
                .address(d.probe_registry)
                .event_signature(protocol::bindings::IProbeRegistry::ProbesRevealed::SIGNATURE_HASH)
                .from_block(d.start_block),
        )
        .await?;
    let mut wallets = std::collections::BTreeSet::new();
    for log in reveals {
        let ev = log
            .log_decode::<protocol::bindings::IProbeRegistry::ProbesRevealed>()?
            .inner
            .data;
        if ev.epoch < epochs {
            wallets.insert(ev.submitter);
        }
    }
    let mut tasks = 0;
    for w in &wallets {
        tasks += reader
            .get_logs(
                &Filter::new()
                    .address(d.task_manager)
                    .event_signature(ITaskManager::TaskSubmitted::SIGNATURE_HASH)
                    .topic2(w.into_word())
                    .from_block(d.start_block),
            )
            .await?
            .len();
    }
    Ok((tasks, wallets.len()))
}

/// Registers every bundle of the catalogue, submits each kind's real inputs from the user
/// account (large ones through the blob store), waits until every task is final, and returns
/// one `demo: model ...` line per model.
async fn run_catalogue(
    net: &Devnet,
    reader: &DynProvider,
    blob_url: &str,
    children: &mut Children,
    timeout: Duration,
) -> Result<Vec<String>> {
    use devnet::catalogue;
    let d = &net.deployment;
    // The digits epochs run with response and challenge windows of a few seconds (so the frozen
    // worker's tasks are reassigned within an epoch); a language model on a busy 2-core machine,
    // and a validator re-running every kind, need more: the admin widens both for the tasks
    // assigned and committed from now on.
    // (admin calls go through the admin timelock, whose delay is 0 on the devnet)
    use alloy::sol_types::SolCall;
    let admin = net.provider(&net.deployer);
    let tm_admin = protocol::bindings::admin::TaskManager::new(d.task_manager, &admin);
    let jail = tm_admin.jailDuration().call().await?;
    let call = protocol::bindings::admin::TaskManager::setWindowsCall {
        responseWindow_: CATALOGUE_RESPONSE_WINDOW,
        challengeWindow_: CATALOGUE_CHALLENGE_WINDOW,
        jailDuration_: jail as u32,
    };
    net.admin_call(d.task_manager, call.abi_encode().into())
        .await
        .context("TaskManager.setWindows through the admin timelock")?;
    // Every catalogue task is audited (p0 = pMin = 1), so each model's line shows its rule at work.
    let audit_admin = protocol::bindings::audit_admin::AuditManager::new(d.audit_manager, &admin);
    let mut p = audit_admin.params().call().await?;
    p.p0Wad = 1_000_000_000_000_000_000;
    p.pMinWad = p.p0Wad;
    let call = protocol::bindings::audit_admin::AuditManager::setParamsCall { p };
    net.admin_call(d.audit_manager, call.abi_encode().into())
        .await
        .context("AuditManager.setParams through the admin timelock")?;
    let client = blobstore::Client::new(Duration::from_secs(30), 64 << 20)?;
    let mut models = Vec::new();
    for dir in catalogue::CATALOGUE {
        let manifest = catalogue::manifest(dir)?;
        let kind = catalogue::kind_of(&manifest)?;
        let name = manifest["name"].as_str().unwrap_or(dir).to_string();
        let id = net
            .register_bundle(&catalogue::bundle_dir(dir), net.config.model_price_wei)
            .await
            .with_context(|| format!("registering bundle {dir}"))?;
        let mut inputs = Vec::new();
        for input in catalogue::inputs(dir, &kind, 3)? {
            // the TaskManager caps inline inputs at 64 KiB: bigger ones go by reference
            if input.len() > 32 * 1024 {
                inputs.push(client.put(blob_url, input).await?.encode());
            } else {
                inputs.push(input);
            }
        }
        let ids = net
            .submit_inputs(id, &inputs, inputs.len())
            .await
            .with_context(|| format!("submitting {dir} tasks"))?;
        eprintln!(
            "    model {id} {name} ({kind}): {} tasks submitted",
            ids.len()
        );
        models.push((name, kind, ids));
    }
    let tm = ITaskManager::new(d.task_manager, reader);
    let mut watch = Watch {
        reader,
        tm: ITaskManager::new(d.task_manager, reader),
        tm_admin: ITaskManager::new(d.task_manager, &admin),
        ids: models
            .iter()
            .flat_map(|(_, _, ids)| ids.iter().copied())
            .collect(),
        last_line: String::new(),
    };
    let deadline = Instant::now() + timeout;
    while watch.tick().await? < watch.ids.len() {
        children.check()?;
        if Instant::now() > deadline {
            bail!(
                "catalogue tasks not final after {}s; see the logs in .demo/",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    let audits = audit_outcomes(reader, d).await?;
    let outputs = committed_outputs(reader, d).await?;
    let mut lines = Vec::new();
    for (name, kind, ids) in &models {
        let mut finalized = 0;
        let mut example = String::from("(no output)");
        for id in ids {
            if tm.getTask(*id).call().await?.status == TaskStatus::Finalized as u8 {
                finalized += 1;
            }
        }
        if let Some((published, _)) = ids.iter().find_map(|id| outputs.get(id)) {
            let bytes = match blobstore::BlobRef::decode(published) {
                None => published.clone(),
                Some(r) => client.fetch(&r?).await?,
            };
            example = catalogue::summarize(kind, &bytes);
        }
        let audited = ids.iter().filter(|id| audits.contains_key(*id)).count();
        let passed = ids
            .iter()
            .filter(|id| audits.get(*id).map(String::as_str) == Some("pass"))
            .count();
        lines.push(format!(
            "demo: model {name} {kind}: {finalized} tasks finalized, {audited} audited, {passed} passed, e.g. {example}"
        ));
    }
    Ok(lines)
}

/// Every committed result, by task: the bytes published in the commit event and the code.
async fn committed_outputs(
    reader: &DynProvider,
    d: &protocol::Deployment,
) -> Result<HashMap<U256, (Vec<u8>, u16)>> {
    let logs = reader
        .get_logs(
            &Filter::new()
                .address(d.task_manager)
                .event_signature(ITaskManager::ResultsCommitted::SIGNATURE_HASH)
                .from_block(d.start_block),
        )
        .await?;
    let mut outputs = HashMap::new();
    for log in logs {
        let ev = log
            .log_decode::<ITaskManager::ResultsCommitted>()?
            .inner
            .data;
        for (i, id) in ev.taskIds.iter().enumerate() {
            outputs.insert(*id, (ev.outputs[i].to_vec(), ev.codes[i]));
        }
    }
    Ok(outputs)
}

/// Each audited task's outcome from the AuditManager's events: pass, fraud, cleared, undecided,
/// forced-error or disputed (still open).
async fn audit_outcomes(
    reader: &DynProvider,
    d: &protocol::Deployment,
) -> Result<HashMap<U256, String>> {
    let logs = reader
        .get_logs(
            &Filter::new()
                .address(d.audit_manager)
                .event_signature(vec![
                    IAuditManager::VerdictAccepted::SIGNATURE_HASH,
                    IAuditManager::DisputeResolved::SIGNATURE_HASH,
                ])
                .from_block(d.start_block),
        )
        .await?;
    let mut out = HashMap::new();
    for log in logs {
        if let Ok(v) = log.log_decode::<IAuditManager::VerdictAccepted>() {
            let v = v.inner.data;
            out.insert(
                v.taskId,
                if v.matches { "pass" } else { "disputed" }.to_string(),
            );
        } else if let Ok(r) = log.log_decode::<IAuditManager::DisputeResolved>() {
            let r = r.inner.data;
            let name = match r.outcome {
                3 => "fraud",
                4 => "cleared",
                5 => "undecided",
                6 => "forced",
                _ => "disputed",
            };
            out.insert(r.taskId, name.to_string());
        }
    }
    Ok(out)
}

/// DN slashed from `cheater`, and how many other accounts were slashed at all.
async fn slash_totals(
    reader: &DynProvider,
    d: &protocol::Deployment,
    cheater: Address,
) -> Result<(U256, usize)> {
    let logs = reader
        .get_logs(
            &Filter::new()
                .address(d.staking)
                .event_signature(IStaking::Slashed::SIGNATURE_HASH)
                .from_block(d.start_block),
        )
        .await?;
    let mut total = U256::ZERO;
    let mut others = std::collections::BTreeSet::new();
    for log in logs {
        let e = log.log_decode::<IStaking::Slashed>()?.inner.data;
        if e.account == cheater {
            total += e.amount;
        } else {
            others.insert(e.account);
        }
    }
    Ok((total, others.len()))
}

/// The audit rate (p, as a fraction) sealed for the batch of each cheated task.
async fn cheated_rates(
    reader: &DynProvider,
    d: &protocol::Deployment,
    cheated: &[U256],
) -> Result<Vec<f64>> {
    let logs = reader
        .get_logs(
            &Filter::new()
                .address(d.task_manager)
                .event_signature(ITaskManager::ResultsCommitted::SIGNATURE_HASH)
                .from_block(d.start_block),
        )
        .await?;
    let audit = IAuditManager::new(d.audit_manager, reader);
    let mut rates = Vec::new();
    for log in logs {
        let ev = log
            .log_decode::<ITaskManager::ResultsCommitted>()?
            .inner
            .data;
        let n = ev.taskIds.iter().filter(|t| cheated.contains(t)).count();
        if n == 0 {
            continue;
        }
        let seal = audit.sealOf(ev.batchId).call().await?;
        let p = seal.pWad as f64 / 1e18;
        rates.extend(std::iter::repeat_n(p, n));
    }
    Ok(rates)
}

/// Starts the OpenAI-compatible gateway, paying from the developer's wallet (the user's key
/// signs the demo's own submissions; one key per sender keeps nonces apart), and waits until
/// it answers.
async fn start_gateway(
    net: &Devnet,
    work_dir: &Path,
    indexer_url: &str,
    children: &mut Children,
) -> Result<String> {
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let child = spawn_logged(
        "gateway",
        &sibling_binary("gateway")?,
        &[
            "--rpc-url".into(),
            net.rpc_url.clone(),
            "--deployment".into(),
            net.deployment_path.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--cache-dir".into(),
            work_dir.join("gateway-cache").display().to_string(),
            "--indexer-url".into(),
            indexer_url.to_string(),
        ],
        &[("DN_PRIVATE_KEY", key_hex(&net.developer))],
        &work_dir.join("gateway.log"),
    )?;
    children.0.push(("gateway".into(), child));
    let http = reqwest::Client::new();
    let start = Instant::now();
    loop {
        let up = http
            .get(format!("{url}/healthz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if up {
            return Ok(url);
        }
        children.check()?;
        if start.elapsed() > Duration::from_secs(60) {
            bail!("the gateway did not answer within 60 s; see .demo/gateway.log");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The task behind a gateway answer (`x-deepnode-task-id`).
fn task_id_of(r: &reqwest::Response) -> Result<U256> {
    Ok(r.headers()
        .get("x-deepnode-task-id")
        .and_then(|v| v.to_str().ok())
        .context("the gateway's answer has no x-deepnode-task-id")?
        .parse()?)
}

/// Three streamed chat answers and three embeddings through the gateway, each checked on-chain
/// (paid by the gateway's wallet, the committed output is what was answered). Returns the
/// `demo: gateway ...` line with the median time to the first streamed token.
async fn gateway_calls(
    net: &Devnet,
    reader: &DynProvider,
    url: &str,
    children: &mut Children,
) -> Result<String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let models: serde_json::Value = http
        .get(format!("{url}/v1/models"))
        .send()
        .await?
        .json()
        .await?;
    let of_kind = |kind: &str| -> Result<String> {
        models["data"]
            .as_array()
            .and_then(|d| d.iter().find(|m| m["deepnode"]["kind"] == kind))
            .and_then(|m| m["id"].as_str())
            .map(str::to_string)
            .with_context(|| format!("no {kind} model in GET /v1/models: {models}"))
    };
    let (chat, embed) = (of_kind("text-generation")?, of_kind("embeddings")?);
    let questions = [
        "What is the capital of France?",
        "Name a primary colour.",
        "What is 2 + 2?",
    ];
    // (task id, answered text or embedding's first value, from a stream)
    let mut answered: Vec<(U256, Option<String>)> = Vec::new();
    let mut first_token_ms = Vec::new();
    let mut total_ms = Vec::new();
    for q in questions {
        children.check()?;
        let started = Instant::now();
        let mut r = http
            .post(format!("{url}/v1/chat/completions"))
            .json(&serde_json::json!({
                "model": chat, "stream": true, "max_tokens": 16,
                "messages": [{"role": "user", "content": q}],
            }))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("gateway chat: {} {}", r.status(), r.text().await?);
        }
        let task = task_id_of(&r)?;
        let (mut buf, mut text, mut first) = (String::new(), String::new(), None);
        while let Some(chunk) = r.chunk().await? {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                let Some(data) = event.trim().strip_prefix("data: ") else {
                    continue;
                };
                if data == "[DONE]" {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(data)?;
                if v.get("error").is_some() {
                    bail!("gateway chat stream error: {v}");
                }
                // the gateway's own check: everything streamed is the committed answer
                if v["deepnode"]["verified"] == false {
                    bail!("gateway chat stream not verified: {}", v["deepnode"]);
                }
                if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
                    if !c.is_empty() && first.is_none() {
                        first = Some(started.elapsed());
                    }
                    text.push_str(c);
                }
            }
        }
        first_token_ms.push(first.context("no token streamed")?.as_millis() as u64);
        total_ms.push(started.elapsed().as_millis() as u64);
        answered.push((task, Some(text)));
    }
    for sentence in [
        "A man is eating food.",
        "A cat sleeps.",
        "Rain is expected.",
    ] {
        let r = http
            .post(format!("{url}/v1/embeddings"))
            .json(&serde_json::json!({"model": embed, "input": sentence}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("gateway embeddings: {} {}", r.status(), r.text().await?);
        }
        answered.push((task_id_of(&r)?, None));
    }
    // verified on-chain: paid by the gateway's wallet, committed, and the streamed text is the
    // committed output's
    let d = &net.deployment;
    let tm = ITaskManager::new(d.task_manager, reader);
    let outputs = committed_outputs(reader, d).await?;
    let mut verified = 0;
    for (task, text) in &answered {
        let t = tm.getTask(*task).call().await?;
        let paid = t.submitter == net.developer.address();
        let committed = outputs.get(task).is_some_and(|(bytes, code)| {
            *code == 0
                && text.as_ref().is_none_or(|text| {
                    serde_json::from_slice::<serde_json::Value>(bytes)
                        .is_ok_and(|v| v["text"].as_str() == Some(text.as_str()))
                })
        });
        if paid && committed {
            verified += 1;
        }
    }
    first_token_ms.sort_unstable();
    total_ms.sort_unstable();
    let p50 = first_token_ms[first_token_ms.len() / 2];
    println!(
        "demo: streamed chat latency: first token p50 {p50} ms, whole answer p50 {} ms (tokens streamed by the worker before its commit)",
        total_ms[total_ms.len() / 2]
    );
    let n = answered.len();
    let verdict = if verified == n {
        "all verified on-chain".to_string()
    } else {
        format!("{verified} of {n} verified on-chain")
    };
    Ok(format!(
        "demo: gateway {n} calls (text-generation, embeddings), first token p50 {p50} ms, {verdict}"
    ))
}
