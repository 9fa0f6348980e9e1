//! `dn run` and `dn task get | rate | challenge`.

use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use anyhow::{anyhow, bail, Context, Result};
use protocol::bindings::{IAuditManager, IModelRegistry, ITaskManager, TaskStatus};
use protocol::codes::FailureCode;
use protocol::logs::LOG_CHUNK;
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::chain::{self, progress, refused, transact, Contract};
use crate::cli::{RunArgs, TaskChallengeArgs, TaskGetArgs, TaskRateArgs};
use crate::output::{amount_json, id_json, relative, Failure, Report};
use crate::units::format_dn;

/// How often a waiting `dn run` reads the task.
const POLL: Duration = Duration::from_millis(500);

/// The bytes of a task input: `-` reads stdin, `@PATH` a file, `@@TEXT` the text `@TEXT`, and
/// anything else is the text itself (UTF-8).
pub fn read_input(spec: &str, stdin: impl Read) -> Result<Vec<u8>> {
    if spec == "-" {
        let mut buf = Vec::new();
        let mut stdin = stdin;
        stdin
            .read_to_end(&mut buf)
            .context("INPUT -: reading stdin")?;
        return Ok(buf);
    }
    if let Some(rest) = spec.strip_prefix("@@") {
        return Ok(format!("@{rest}").into_bytes());
    }
    if let Some(path) = spec.strip_prefix('@') {
        if path.is_empty() {
            bail!("INPUT `@`: name a file after the @ (e.g. @image.png)");
        }
        return std::fs::read(Path::new(path)).map_err(|e| anyhow!("INPUT @{path}: {e}"));
    }
    Ok(spec.as_bytes().to_vec())
}

/// A status's name (`committed`), or `unknown(N)`.
pub fn status_name(s: u8) -> String {
    TaskStatus::from_u8(s)
        .map(|t| t.as_str().to_string())
        .unwrap_or_else(|| format!("unknown({s})"))
}

/// A failure code's name (`input_decode`), or `code N`.
pub fn code_name(code: u16) -> String {
    FailureCode::from_u16(code)
        .map(|c| c.as_str().to_string())
        .unwrap_or_else(|| format!("code {code}"))
}

/// `IAuditManager.AuditState`'s name.
pub fn audit_state_name(s: u8) -> &'static str {
    match s {
        0 => "none",
        1 => "passed",
        2 => "disputed",
        3 => "fraud",
        4 => "cleared",
        5 => "undecided",
        6 => "forced_error",
        7 => "missed",
        _ => "unknown",
    }
}

/// The output as JSON text: UTF-8 as-is, anything else as `0x` hex; and its encoding.
pub fn output_json(output: &[u8]) -> (Value, &'static str) {
    match std::str::from_utf8(output) {
        Ok(s) => (json!(s), "utf8"),
        Err(_) => (json!(format!("0x{}", hex::encode(output))), "hex"),
    }
}

/// One task of a ResultsCommitted event.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The batch.
    pub batch_id: U256,
    /// Its position in the batch.
    pub index: usize,
    /// Every task of the batch, in order.
    pub task_ids: Vec<U256>,
    /// Their output hashes.
    pub output_hashes: Vec<B256>,
    /// Their codes.
    pub codes: Vec<u16>,
    /// What was published for this task (inline bytes or a blob reference).
    pub published: Vec<u8>,
    /// The commit transaction.
    pub tx: B256,
}

impl Committed {
    /// The committed output hash.
    pub fn output_hash(&self) -> B256 {
        self.output_hashes[self.index]
    }

    /// The committed code.
    pub fn code(&self) -> u16 {
        self.codes[self.index]
    }

    /// The batch's Merkle leaves, in commit order (`protocol::merkle::leaf_hash`).
    pub fn leaves(&self) -> Vec<B256> {
        self.task_ids
            .iter()
            .zip(&self.output_hashes)
            .zip(&self.codes)
            .map(|((t, h), c)| protocol::merkle::leaf_hash(*t, *h, *c))
            .collect()
    }

    /// The Merkle proof of this task's leaf.
    pub fn proof(&self) -> Vec<B256> {
        protocol::merkle::proof(&self.leaves(), self.index)
    }
}

/// The ResultsCommitted event of `worker` holding `task_id`: searched from the newest block back
/// to `floor` in ranges of [`LOG_CHUNK`] blocks.
pub async fn find_commit(
    provider: &DynProvider,
    task_manager: Address,
    worker: Address,
    task_id: U256,
    floor: u64,
) -> Result<Option<Committed>> {
    let mut to = provider
        .get_block_number()
        .await
        .context("reading the block number")?;
    loop {
        let from = to.saturating_sub(LOG_CHUNK - 1).max(floor);
        let filter = Filter::new()
            .address(task_manager)
            .event_signature(ITaskManager::ResultsCommitted::SIGNATURE_HASH)
            .topic2(worker.into_word())
            .from_block(from)
            .to_block(to);
        let logs = provider
            .get_logs(&filter)
            .await
            .context("eth_getLogs ResultsCommitted")?;
        for log in logs.iter().rev() {
            let Ok(ev) = log.log_decode::<ITaskManager::ResultsCommitted>() else {
                continue;
            };
            let d = &ev.inner.data;
            let Some(i) = d.taskIds.iter().position(|t| *t == task_id) else {
                continue;
            };
            return Ok(Some(Committed {
                batch_id: d.batchId,
                index: i,
                task_ids: d.taskIds.clone(),
                output_hashes: d.outputHashes.clone(),
                codes: d.codes.clone(),
                published: d.outputs.get(i).map(|b| b.to_vec()).unwrap_or_default(),
                tx: log.transaction_hash.unwrap_or_default(),
            }));
        }
        if from <= floor {
            return Ok(None);
        }
        to = from - 1;
    }
}

/// The output bytes of a commitment: inline, or fetched from the blob store it references.
pub async fn output_bytes(blobs: &blobstore::Client, published: &[u8]) -> Result<Vec<u8>> {
    match blobstore::BlobRef::decode(published) {
        None => Ok(published.to_vec()),
        Some(Err(e)) => bail!("the committed output is a malformed blob reference: {e}"),
        Some(Ok(r)) => blobs
            .fetch(&r)
            .await
            .map_err(|e| anyhow!("fetching the output from the blob store: {e}")),
    }
}

/// `dn run`
pub async fn run(a: RunArgs) -> Result<Report> {
    let input = read_input(&a.input, std::io::stdin().lock())?;
    if input.is_empty() {
        bail!("INPUT is empty");
    }
    let w = chain::wallet(&a.wallet.rpc, &a.wallet.key).await?;
    let d = w.deployment.clone();
    let registry = IModelRegistry::new(d.model_registry, &w.provider);
    let tm = ITaskManager::new(d.task_manager, &w.provider);
    let count = registry
        .modelCount()
        .call()
        .await
        .context("reading ModelRegistry.modelCount")?;
    if a.model == 0 || a.model > count {
        bail!(
            "unknown model {}: the registry has {count} model(s); see `dn model list`",
            a.model
        );
    }
    let terms = registry
        .modelTerms(a.model)
        .call()
        .await
        .with_context(|| format!("reading model {}", a.model))?;
    let price = U256::from(terms.pricePerCall);
    if terms.status == 2 {
        bail!("model {} is delisted and takes no new tasks", a.model);
    }
    let max_fee = a.max_fee.unwrap_or(price);
    if max_fee < price {
        bail!(
            "model {} costs {} DN per call, more than --max-fee {} DN",
            a.model,
            format_dn(price),
            format_dn(max_fee)
        );
    }

    let blobs = match &a.blob_store {
        Some(url) => blobstore::Client::new(Duration::from_secs(60), 256 << 20)?
            .with_base_url(url.trim_end_matches('/')),
        None => blobstore::Client::new(Duration::from_secs(60), 256 << 20)?,
    };
    let max_inline = tm
        .maxInputBytes()
        .call()
        .await
        .context("reading TaskManager.maxInputBytes")?;
    let submitted_input = if U256::from(input.len()) <= max_inline {
        input
    } else {
        let Some(store) = &a.blob_store else {
            bail!(
                "INPUT is {} bytes; the TaskManager takes at most {max_inline} inline: pass --blob-store URL to submit it by reference",
                input.len()
            );
        };
        progress(&format!(
            "storing the {}-byte input in {store}",
            input.len()
        ));
        blobs
            .put(store.trim_end_matches('/'), input)
            .await
            .map_err(|e| anyhow!("storing the input in the blob store: {e}"))?
            .encode()
    };

    let approve_tx =
        chain::ensure_allowance(&w, d.task_manager, "TaskManager (task fee)", max_fee).await?;
    let receipt = transact(
        tm.submitTask(a.model, Bytes::from(submitted_input), max_fee),
        w.me,
        &format!("submitTask(model {})", a.model),
        Contract::TaskManager,
    )
    .await?;
    let submitted = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<ITaskManager::TaskSubmitted>().ok())
        .map(|l| l.inner.data)
        .context("the submission receipt has no TaskSubmitted event")?;
    let task_id = submitted.taskId;
    let from_block = receipt.block_number.unwrap_or(d.start_block);
    progress(&format!(
        "task {task_id} submitted to model {} for {} DN (tx {})",
        a.model,
        format_dn(submitted.fee),
        receipt.transaction_hash
    ));

    // Follow the task until its worker commits.
    let deadline = Instant::now() + Duration::from_secs(a.timeout);
    let mut last = u8::MAX;
    let task = loop {
        let t = tm
            .getTask(task_id)
            .call()
            .await
            .map_err(|e| refused(&e, &format!("getTask({task_id})"), Contract::TaskManager))?;
        if t.status != last {
            last = t.status;
            match TaskStatus::from_u8(t.status) {
                Some(TaskStatus::Drawing) => progress(&format!(
                    "task {task_id}: waiting for its worker to be drawn"
                )),
                Some(TaskStatus::Assigned) => progress(&format!(
                    "task {task_id}: assigned to {}, running",
                    t.worker
                )),
                _ => progress(&format!("task {task_id}: {}", status_name(t.status))),
            }
        }
        if let Some(
            TaskStatus::Committed
            | TaskStatus::Failed
            | TaskStatus::Finalized
            | TaskStatus::Disputed
            | TaskStatus::Refunded,
        ) = TaskStatus::from_u8(t.status)
        {
            break t;
        }
        if Instant::now() >= deadline {
            bail!(
                "task {task_id} has no answer after {}s (status {}); it stays on-chain: `dn task get {task_id}` follows it, and its fee is refunded if the worker misses its deadline",
                a.timeout,
                status_name(t.status)
            );
        }
        tokio::time::sleep(POLL).await;
    };
    let commit = if task.worker == Address::ZERO {
        None
    } else {
        find_commit(
            &w.provider,
            d.task_manager,
            task.worker,
            task_id,
            from_block,
        )
        .await?
    };
    let Some(commit) = commit else {
        bail!(
            "task {task_id} was {} before any worker answered; its fee goes back to {} (TaskManager payout)",
            status_name(task.status),
            w.me
        );
    };
    let output = output_bytes(&blobs, &commit.published).await?;
    let verified = keccak256(&output) == commit.output_hash();
    if let Some(path) = &a.output {
        std::fs::write(path, &output).map_err(|e| anyhow!("--output {}: {e}", path.display()))?;
    }
    let code = commit.code();
    let (output_value, encoding) = output_json(&output);
    let by_reference = matches!(blobstore::BlobRef::decode(&commit.published), Some(Ok(_)));
    let json = json!({
        "task_id": id_json(task_id),
        "model_id": a.model,
        "worker": task.worker.to_checksum(None),
        "fee": amount_json(submitted.fee),
        "status": status_name(task.status),
        "code": code,
        "code_name": code_name(code),
        "output": output_value,
        "output_encoding": encoding,
        "output_bytes": output.len(),
        "output_by_reference": by_reference,
        "output_hash": commit.output_hash().to_string(),
        "verified": verified,
        "batch_id": id_json(commit.batch_id),
        "transactions": {
            "approve": approve_tx.map(|h| h.to_string()),
            "submit": receipt.transaction_hash.to_string(),
            "commit": commit.tx.to_string(),
        },
    });
    if !verified {
        return Err(Failure {
            message: format!(
                "the output of task {task_id} does not match the hash its worker committed ({}); do not trust it (`dn task challenge {task_id}` disputes it)",
                commit.output_hash()
            ),
            json,
        }
        .into());
    }
    if code != 0 {
        let reason = FailureCode::from_u16(code).map_or("unknown failure code", |c| c.describe());
        return Err(Failure {
            message: format!(
                "task {task_id} failed: {} ({reason}): {}",
                code_name(code),
                chain::one_line(&String::from_utf8_lossy(&output))
            ),
            json,
        }
        .into());
    }
    let text = if a.output.is_some() {
        format!(
            "task {task_id}: {} bytes written to {} (verified)",
            output.len(),
            a.output
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )
    } else {
        match std::str::from_utf8(&output) {
            Ok(s) => s.to_string(),
            Err(_) => {
                progress(&format!(
                    "task {task_id}: the output is {} bytes of binary, shown as hex (-o FILE writes the bytes)",
                    output.len()
                ));
                format!("0x{}", hex::encode(&output))
            }
        }
    };
    progress(&format!(
        "task {task_id}: answered by {}, output verified against the committed hash",
        task.worker
    ));
    Ok(Report::new(text, json))
}

/// `dn task get`
pub async fn get(a: TaskGetArgs) -> Result<Report> {
    let r = chain::reader(&a.chain.rpc).await?;
    let d = &r.deployment;
    let tm = ITaskManager::new(d.task_manager, &r.provider);
    let t = match tm.getTask(a.id).call().await {
        Ok(t) => t,
        Err(e) => {
            let count = tm.taskCount().call().await.unwrap_or_default();
            if e.as_decoded_interface_error::<ITaskManager::ITaskManagerErrors>()
                .is_some_and(|x| matches!(x, ITaskManager::ITaskManagerErrors::UnknownTask(_)))
            {
                bail!("unknown task {}: the TaskManager has {count} task(s)", a.id);
            }
            return Err(refused(
                &e,
                &format!("getTask({})", a.id),
                Contract::TaskManager,
            ));
        }
    };
    let audit = IAuditManager::new(d.audit_manager, &r.provider)
        .auditRecord(a.id)
        .call()
        .await
        .context("reading AuditManager.auditRecord")?;
    let rated = tm
        .isRated(a.id)
        .call()
        .await
        .context("reading TaskManager.isRated")?;
    let now = r
        .provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .ok()
        .flatten()
        .map(|b| b.header.timestamp)
        .unwrap_or_default();
    let status = status_name(t.status);
    let drawing = t.status == TaskStatus::Drawing as u8;
    let deadline_kind = match TaskStatus::from_u8(t.status) {
        Some(TaskStatus::Assigned) => "response deadline",
        Some(TaskStatus::Committed | TaskStatus::Failed) => "end of the challenge window",
        _ => "deadline",
    };
    let mut text = format!(
        "task {}\n  status     {status}\n  model      {}\n  submitter  {}\n  fee        {} DN",
        a.id,
        t.modelId,
        t.submitter,
        format_dn(t.fee)
    );
    if drawing {
        text.push_str(&format!("\n  draw block {}", t.drawBlock));
    } else {
        text.push_str(&format!(
            "\n  worker     {}\n  code       {} ({})\n  deadline   {} ({}; {deadline_kind})",
            t.worker,
            t.code,
            code_name(t.code),
            t.deadline,
            relative(t.deadline, now)
        ));
    }
    text.push_str(&format!(
        "\n  audit      {}\n  rated      {}",
        audit_state_name(audit.state),
        if rated { "yes" } else { "no" }
    ));
    if audit.accuser != Address::ZERO {
        text.push_str(&format!("\n  accuser    {}", audit.accuser));
    }
    let json = json!({
        "task_id": id_json(a.id),
        "status": status,
        "model_id": t.modelId,
        "submitter": t.submitter.to_checksum(None),
        "worker": (!drawing && t.worker != Address::ZERO).then(|| t.worker.to_checksum(None)),
        "fee": amount_json(t.fee),
        "code": t.code,
        "code_name": code_name(t.code),
        "deadline": (!drawing).then_some(t.deadline),
        "deadline_kind": (!drawing).then_some(deadline_kind),
        "latency_secs": t.latency,
        "draw_block": drawing.then_some(t.drawBlock),
        "rated": rated,
        "audit": {
            "state": audit_state_name(audit.state),
            "accuser": (audit.accuser != Address::ZERO).then(|| audit.accuser.to_checksum(None)),
            "quality_ppm": audit.qualityPpm,
            "batch_id": audit.batchId,
            "worker_output_hash": (audit.workerOutputHash != B256::ZERO).then(|| audit.workerOutputHash.to_string()),
        },
    });
    Ok(Report::new(text, json))
}

/// `dn task rate`
pub async fn rate(a: TaskRateArgs) -> Result<Report> {
    let w = chain::wallet(&a.wallet.rpc, &a.wallet.key).await?;
    let tm = ITaskManager::new(w.deployment.task_manager, &w.provider);
    let receipt = transact(
        tm.rateTask(a.id, a.score),
        w.me,
        &format!("rateTask({}, {})", a.id, a.score),
        Contract::TaskManager,
    )
    .await?;
    Ok(Report::new(
        format!(
            "task {} rated {}/100\n  tx {}",
            a.id, a.score, receipt.transaction_hash
        ),
        json!({
            "task_id": id_json(a.id),
            "score": a.score,
            "tx": receipt.transaction_hash.to_string(),
        }),
    ))
}

/// `dn task challenge`
pub async fn challenge(a: TaskChallengeArgs) -> Result<Report> {
    let w = chain::wallet(&a.wallet.rpc, &a.wallet.key).await?;
    let d = w.deployment.clone();
    let tm = ITaskManager::new(d.task_manager, &w.provider);
    let am = IAuditManager::new(d.audit_manager, &w.provider);
    let t = tm
        .getTask(a.id)
        .call()
        .await
        .map_err(|e| refused(&e, &format!("getTask({})", a.id), Contract::TaskManager))?;
    if t.submitter != w.me {
        bail!(
            "task {} was submitted by {}, not this wallet ({}); only its submitter may challenge it",
            a.id,
            t.submitter,
            w.me
        );
    }
    let record = am
        .auditRecord(a.id)
        .call()
        .await
        .context("reading AuditManager.auditRecord")?;
    if record.state != 0 {
        bail!(
            "task {}'s audit is already {}; it cannot be challenged again",
            a.id,
            audit_state_name(record.state)
        );
    }
    let open = matches!(
        TaskStatus::from_u8(t.status),
        Some(TaskStatus::Committed | TaskStatus::Failed)
    );
    if !open || t.worker == Address::ZERO {
        bail!(
            "task {} is {}: only a committed result inside its challenge window can be challenged",
            a.id,
            status_name(t.status)
        );
    }
    let now = w
        .provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .ok()
        .flatten()
        .map(|b| b.header.timestamp)
        .unwrap_or_default();
    if now > t.deadline {
        bail!(
            "task {}'s challenge window closed at {} ({})",
            a.id,
            t.deadline,
            relative(t.deadline, now)
        );
    }
    let commit = find_commit(&w.provider, d.task_manager, t.worker, a.id, d.start_block)
        .await?
        .ok_or_else(|| {
            anyhow!(
                "task {} has no ResultsCommitted event of its worker {} (status {})",
                a.id,
                t.worker,
                status_name(t.status)
            )
        })?;
    let proof = commit.proof();
    let root = tm
        .batchRoot(commit.batch_id)
        .call()
        .await
        .context("reading TaskManager.batchRoot")?;
    let leaf = protocol::merkle::leaf_hash(a.id, commit.output_hash(), commit.code());
    if !protocol::merkle::verify(&proof, root, leaf) {
        bail!(
            "the Merkle proof of task {} does not verify against batch {}'s root {root}",
            a.id,
            commit.batch_id
        );
    }
    let bond = U256::from(
        am.params()
            .call()
            .await
            .context("reading AuditManager.params")?
            .challengeBond,
    );
    let approve_tx =
        chain::ensure_allowance(&w, d.audit_manager, "AuditManager (challenge bond)", bond).await?;
    progress(&format!(
        "challenging task {} (batch {}, {} DN bond)",
        a.id,
        commit.batch_id,
        format_dn(bond)
    ));
    let receipt = transact(
        am.challenge(a.id, commit.batch_id, commit.output_hash(), proof.clone()),
        w.me,
        &format!("challenge({})", a.id),
        Contract::AuditManager,
    )
    .await?;
    let opened = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<IAuditManager::DisputeOpened>().ok())
        .map(|l| l.inner.data);
    let dispute_deadline = opened.as_ref().map(|o| o.deadline);
    Ok(Report::new(
        format!(
            "task {} challenged: a validator quorum now decides (bond {} DN)\n  batch {} (proof of {} hashes)\n  tx {}",
            a.id,
            format_dn(bond),
            commit.batch_id,
            proof.len(),
            receipt.transaction_hash
        ),
        json!({
            "task_id": id_json(a.id),
            "worker": t.worker.to_checksum(None),
            "batch_id": id_json(commit.batch_id),
            "output_hash": commit.output_hash().to_string(),
            "proof": proof.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "bond": amount_json(bond),
            "dispute_deadline": dispute_deadline,
            "transactions": {
                "approve": approve_tx.map(|h| h.to_string()),
                "challenge": receipt.transaction_hash.to_string(),
            },
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_from_text_files_and_stdin() {
        assert_eq!(read_input("hello", &b""[..]).unwrap(), b"hello");
        assert_eq!(read_input("-", &b"from stdin"[..]).unwrap(), b"from stdin");
        assert_eq!(read_input("@@handle", &b""[..]).unwrap(), b"@handle");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.bin");
        std::fs::write(&p, [0u8, 1, 2, 255]).unwrap();
        assert_eq!(
            read_input(&format!("@{}", p.display()), &b""[..]).unwrap(),
            vec![0u8, 1, 2, 255]
        );
        let e = read_input(&format!("@{}", dir.path().join("nope").display()), &b""[..])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("INPUT @") && e.contains("nope"), "{e}");
        assert!(read_input("@", &b""[..]).is_err());
    }

    #[test]
    fn names_and_output_encoding() {
        assert_eq!(status_name(2), "committed");
        assert_eq!(status_name(9), "unknown(9)");
        assert_eq!(code_name(1), "input_decode");
        assert_eq!(code_name(99), "code 99");
        assert_eq!(audit_state_name(2), "disputed");
        assert_eq!(output_json(b"seven"), (json!("seven"), "utf8"));
        assert_eq!(output_json(&[0xff, 0x00]), (json!("0xff00"), "hex"));
    }

    #[test]
    fn proofs_of_a_batch_verify_against_its_root() {
        let ids: Vec<U256> = (1..=5u64).map(U256::from).collect();
        let hashes: Vec<B256> = (0..5u8).map(|i| keccak256([i])).collect();
        let codes = vec![0u16, 0, 1, 0, 0];
        let leaves: Vec<B256> = ids
            .iter()
            .zip(&hashes)
            .zip(&codes)
            .map(|((t, h), c)| protocol::merkle::leaf_hash(*t, *h, *c))
            .collect();
        let root = protocol::merkle::batch_root(&leaves);
        for index in 0..5 {
            let c = Committed {
                batch_id: U256::from(9),
                index,
                task_ids: ids.clone(),
                output_hashes: hashes.clone(),
                codes: codes.clone(),
                published: vec![],
                tx: B256::ZERO,
            };
            let leaf = protocol::merkle::leaf_hash(ids[index], c.output_hash(), c.code());
            assert!(protocol::merkle::verify(&c.proof(), root, leaf));
        }
    }
}
