//! The OpenAPI 3.1 document of the REST API, written by hand next to the routes; a test checks
//! that every route in `api::routes` is documented and nothing else is.

use serde_json::{json, Value};

fn param(name: &str, location: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": location, "required": location == "path", "description": description, "schema": schema})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({
        "200": {"description": description, "content": {"application/json": {"schema": schema}}},
    })
}

/// Refusals every route may answer (the API's limits, `indexer::limits`).
const LIMIT_CODES: [&str; 3] = ["414", "429", "503"];

fn with_errors(mut responses: Value, codes: &[&str]) -> Value {
    if let Some(obj) = responses.as_object_mut() {
        for code in codes.iter().chain(LIMIT_CODES.iter()) {
            let description = match *code {
                "400" => "a parameter is malformed (the detail names it)",
                "404" => "no such object",
                "414" => "the request URI is longer than 4096 bytes",
                "429" => "this client IP is over its request rate (see retry-after)",
                "503" => "the request took longer than the server's timeout",
                _ => "error",
            };
            obj.insert(
                (*code).to_string(),
                json!({"description": description,
                       "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
            );
        }
    }
    responses
}

fn get_op(summary: &str, params: Vec<Value>, responses: Value) -> Value {
    json!({"get": {"summary": summary, "parameters": params, "responses": responses}})
}

/// Fields of a model's quality row (`/models/{id}` history entries carry the epoch too).
fn model_quality_props(model_status: &Value, with_epoch: bool) -> Value {
    let mut v = json!({
        "quality": {"type": "number"}, "quality_wad": {"type": "string"},
        "feedback": {"type": "number"}, "feedback_wad": {"type": "string"},
        "canary_accuracy": {"type": "number"}, "canary_accuracy_wad": {"type": "string"},
        "canaries": {"type": "integer", "description": "canary reports of the model in the epoch (first report per task)"},
        "canary_matches": {"type": "integer"},
        "ratings": {"type": "integer"}, "score_sum": {"type": "integer"},
        "status": model_status, "prev_status": model_status, "chain_status": model_status,
        "status_changed": {"type": "boolean"}, "in_report": {"type": "boolean"}});
    if let (true, Some(obj)) = (with_epoch, v.as_object_mut()) {
        obj.insert("epoch".into(), json!({"type": "integer"}));
    }
    v
}

/// Fields of a `models` row of `/epochs/{n}`: usage plus the quality row.
fn epoch_model_props(model_status: &Value) -> Value {
    let mut v = json!({
        "model_id": {"type": "integer"}, "developer": {"type": ["string", "null"]},
        "tasks_finalized": {"type": "integer"}, "compute_units": {"type": "integer"}});
    if let (Some(obj), Value::Object(q)) =
        (v.as_object_mut(), model_quality_props(model_status, false))
    {
        obj.extend(q);
    }
    v
}

/// The schemas of the validation layer (AuditManager): a task's audit record, its parts, a
/// node's audit counts, slashes and the `/audits` entries.
fn audit_schemas(address: &Value, wei: &Value) -> Value {
    let hash = json!({"type": "string", "pattern": "^0x[0-9a-f]{64}$"});
    let at = json!({"block": {"type": "integer"}, "log_index": {"type": "integer"},
                    "tx": {"type": "string"}, "time": {"type": "integer"}});
    let with_at = |v: Value| -> Value {
        let mut v = v;
        if let (Some(o), Value::Object(a)) = (v.as_object_mut(), at.clone()) {
            o.extend(a);
        }
        v
    };
    let outcome = json!({"type": "string", "enum": ["open", "fraud", "cleared", "undecided", "forced_error", "unknown"],
        "description": "open while the quorum votes, else the AuditState the dispute resolved to"});
    let block_tx_time = json!({"type": ["object", "null"], "properties": {
        "block": {"type": "integer"}, "time": {"type": ["integer", "null"]}, "tx": {"type": ["string", "null"]}}});
    json!({
        "Verdict": {"type": "object", "description": "A drawn validator's signed verdict (VerdictAccepted)",
            "properties": with_at(json!({
                "task_id": {"type": "string"}, "batch_id": {"type": "string"},
                "validator": address, "worker": address,
                "worker_output_hash": hash, "validator_output_hash": hash,
                "quality_ppm": {"type": "integer", "minimum": 0, "maximum": 1000000},
                "quality": {"type": "number"}, "matches": {"type": "boolean"}}))},
        "Dispute": {"type": "object", "description": "A dispute over a task's result, opened by a mismatch verdict or a user challenge",
            "properties": {
                "worker": address, "accuser": address,
                "opener": {"type": "string", "enum": ["validator", "user", "unknown"]},
                "members": {"type": "array", "items": address, "description": "the drawn quorum (empty until drawQuorum, a block or more after the dispute opened)"},
                "deadline": {"type": "integer"}, "outcome": outcome,
                "outcome_value": {"type": ["integer", "null"], "description": "IAuditManager.AuditState: 3 Fraud, 4 Cleared, 5 Undecided, 6 ForcedError"},
                "fraud_votes": {"type": "integer"}, "honest_votes": {"type": "integer"},
                "opened": block_tx_time.clone(), "resolved": block_tx_time}},
        "DisputeVote": {"type": "object", "properties": with_at(json!({
                "validator": address, "fraud": {"type": "boolean"}, "output_hash": hash}))},
        "CanaryReport": {"type": "object", "description": "A validator's known-answer task came back (the task's first CanaryReported)",
            "properties": with_at(json!({
                "validator": address, "worker": address, "model_id": {"type": "integer"},
                "expected_output_hash": hash, "matches": {"type": "boolean"},
                "quality_ppm": {"type": "integer"}, "quality": {"type": "number"}}))},
        "ValidatorMiss": {"type": "object", "description": "A validator let a deadline pass (DeadlineMissed)",
            "properties": with_at(json!({
                "validator": address, "kind": {"type": "string", "enum": ["verdict", "dispute_vote", "unknown"]},
                "kind_value": {"type": "integer"}}))},
        "Slash": {"type": "object", "description": "Staking.Slashed",
            "properties": {
                "role": {"type": "string", "enum": ["worker", "validator", "unknown"]},
                "reason": {"type": "integer", "description": "1 fraud, 2 false accusation, 3 lazy validator, 4 missed audit"},
                "reason_name": {"type": "string", "enum": ["fraud", "false_accusation", "lazy_validator", "missed_audit", "minority_vote", "report_equivocation", "unknown"]},
                "amount": wei, "beneficiary": address, "rewarded": wei, "burned": wei,
                "task_id": {"type": ["string", "null"], "description": "the disputed or forced-error task the slash settled"},
                "block": {"type": "integer"}, "tx": {"type": "string"}, "time": {"type": "integer"}}},
        "TaskAudit": {"type": "object", "description": "The task's audit record in the validation layer",
            "required": ["state", "verdicts", "dispute", "votes", "canary", "misses"],
            "properties": {
                "state": {"type": "string", "enum": ["none", "passed", "disputed", "fraud", "cleared", "undecided", "forced_error", "missed"],
                    "description": "IAuditManager.AuditState of the task"},
                "seal": {"type": ["object", "null"], "description": "audit randomness and rate of the task's batch (BatchSealed)",
                    "properties": with_at(json!({"batch_id": {"type": "string"}, "randomness": hash,
                        "p_wad": {"type": "string"}, "p": {"type": "number"}, "full": {"type": "boolean"}}))},
                "verdicts": {"type": "array", "items": {"$ref": "#/components/schemas/Verdict"}},
                "dispute": {"oneOf": [{"$ref": "#/components/schemas/Dispute"}, {"type": "null"}]},
                "votes": {"type": "array", "items": {"$ref": "#/components/schemas/DisputeVote"}},
                "canary": {"oneOf": [{"$ref": "#/components/schemas/CanaryReport"}, {"type": "null"}]},
                "misses": {"type": "array", "items": {"$ref": "#/components/schemas/ValidatorMiss"}},
                "forced_error": {"type": ["object", "null"], "description": "ForcedErrorRevealed: caught_lazy when the validator approved the planted wrong result",
                    "properties": with_at(json!({"validator": address, "caught_lazy": {"type": "boolean"}}))},
                "slashes": {"type": "array", "items": {"$ref": "#/components/schemas/Slash"}}}},
        "NodeAudits": {"type": "object", "description": "A node's audit record: as a worker (its results) and as a validator",
            "properties": {
                "audited": {"type": "integer", "description": "verdicts on its results"},
                "passed": {"type": "integer", "description": "of those, matching"},
                "failed": {"type": "integer", "description": "of those, mismatching (a dispute opened)"},
                "challenged": {"type": "integer", "description": "user challenges of its results"},
                "fraud_proven": {"type": "integer", "description": "disputes over its results resolved Fraud"},
                "cleared": {"type": "integer", "description": "disputes over its results resolved Cleared"},
                "canaries": {"type": "integer"}, "canaries_passed": {"type": "integer"},
                "verdicts_signed": {"type": "integer", "description": "as validator"},
                "dispute_votes": {"type": "integer", "description": "as quorum member"},
                "missed_audits": {"type": "integer", "description": "as validator: drawn audits without a verdict"},
                "missed_votes": {"type": "integer", "description": "as quorum member: disputes it did not vote on"},
                "false_accusations": {"type": "integer", "description": "its mismatch verdicts the quorum cleared"},
                "lazy_caught": {"type": "integer", "description": "forced errors it approved"},
                "validator_weight": {"type": ["string", "null"], "description": "audit draw weight (null: never joined)"}}},
        "AuditEntry": {"type": "object", "description": "A verdict with the outcome of the dispute it opened",
            "properties": with_at(json!({
                "task_id": {"type": "string"}, "batch_id": {"type": "string"},
                "validator": address, "worker": address,
                "worker_output_hash": hash, "validator_output_hash": hash,
                "quality_ppm": {"type": "integer"}, "quality": {"type": "number"}, "matches": {"type": "boolean"},
                "dispute": {"type": ["object", "null"], "properties": {
                    "outcome": outcome, "outcome_value": {"type": ["integer", "null"]},
                    "fraud_votes": {"type": "integer"}, "honest_votes": {"type": "integer"},
                    "resolved_block": {"type": ["integer", "null"]}}}}))},
    })
}

/// The document served at `/openapi.json`.
pub fn document() -> Value {
    let address = json!({"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"});
    let wei =
        json!({"type": "string", "pattern": "^[0-9]+$", "description": "amount in wei, decimal"});
    let obj = json!({"type": "object"});
    let statuses = json!(crate::query::TASK_STATUSES);
    let model_status =
        json!({"type": "string", "enum": ["active", "probation", "delisted", "unknown"]});
    let audit = audit_schemas(&address, &wei);
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "DeepNode indexer API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Contract events of a DeepNode deployment (tasks, models, nodes, stakes, audits, disputes, slashes) indexed into SQLite. \
                Addresses are EIP-55 checksummed, amounts are decimal strings in wei, times are unix seconds of the block."
        },
        "paths": {
            "/health": get_op("Indexer progress: chain id, indexed block, head block, blocks behind", vec![],
                ok("progress", json!({"type": "object", "properties": {
                    "status": {"type": "string", "enum": ["starting", "ok", "syncing"]},
                    "chain_id": {"type": "integer"},
                    "indexed_block": {"type": ["integer", "null"]},
                    "head_block": {"type": ["integer", "null"]},
                    "blocks_behind": {"type": ["integer", "null"]},
                    "confirmations": {"type": "integer"},
                    "rpc_errors": {"type": "integer"}}}))),
            "/models": get_op("Every registered model", vec![],
                ok("models", json!({"type": "object", "properties": {"models": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}}}}))),
            "/models/{id}": get_op("One model with its workers, price and usage counts",
                vec![param("id", "path", "model id", json!({"type": "integer", "minimum": 0, "maximum": 4294967295u64}))],
                with_errors(ok("model", json!({"$ref": "#/components/schemas/Model"})), &["400", "404"])),
            "/nodes": get_op("Every worker and validator seen on-chain", vec![],
                ok("nodes", json!({"type": "object", "properties": {"nodes": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}}))),
            "/nodes/{address}": get_op("One node: stakes, unbondings, jail, slashes, audit record, task stats and recent tasks",
                vec![param("address", "path", "node address", address.clone())],
                with_errors(ok("node", json!({"$ref": "#/components/schemas/Node"})), &["400", "404"])),
            "/tasks": get_op("Tasks, newest first, with keyset pagination by task id",
                vec![
                    param("status", "query", "only tasks in this state", json!({"type": "string", "enum": statuses})),
                    param("worker", "query", "only tasks assigned to this worker", address.clone()),
                    param("model", "query", "only tasks of this model id", json!({"type": "integer", "minimum": 0, "maximum": 4294967295u64})),
                    param("limit", "query", "page size (default 50)", json!({"type": "integer", "minimum": 1, "maximum": crate::api::MAX_LIMIT})),
                    param("cursor", "query", "`next_cursor` of the previous page: tasks with a smaller id", json!({"type": "string", "pattern": "^[0-9]+$"})),
                ],
                with_errors(ok("a page of tasks", json!({"type": "object", "properties": {
                    "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
                    "next_cursor": {"type": ["string", "null"]}}})), &["400"])),
            "/tasks/{id}": get_op("One task: decoded input and output tensors, hashes, failure code, fee split, latency, its trail of events and its audit record (verdicts, dispute and votes, canary report, validators' missed deadlines)",
                vec![param("id", "path", "task id", json!({"type": "integer", "minimum": 0}))],
                with_errors(ok("task", json!({"$ref": "#/components/schemas/Task"})), &["400", "404"])),
            "/audits": get_op("Verdicts of drawn validators, newest first, each with the outcome of the dispute it opened",
                vec![
                    param("worker", "query", "only verdicts on this worker's results", address.clone()),
                    param("validator", "query", "only verdicts signed by this validator", address.clone()),
                    param("limit", "query", "page size (default 50)", json!({"type": "integer", "minimum": 1, "maximum": crate::api::MAX_LIMIT})),
                    param("offset", "query", "verdicts to skip", json!({"type": "integer", "minimum": 0})),
                ],
                with_errors(ok("a page of verdicts", json!({"type": "object", "properties": {
                    "audits": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEntry"}},
                    "total": {"type": "integer", "description": "verdicts matching the filters"},
                    "limit": {"type": "integer"}, "offset": {"type": "integer"}}})), &["400"])),
            "/epochs": get_op("Computed epochs, newest first: report roots, totals, budget, whether the report was posted on-chain, claimed totals", vec![],
                ok("epochs", json!({"type": "object", "properties": {"epochs": {"type": "array", "items": {"$ref": "#/components/schemas/Epoch"}}}}))),
            "/epochs/{n}": get_op("One computed epoch: the report validators sign, pools and totals, and the per-worker table (rates, quality, trust, PoWR score, reward), validators and models",
                vec![param("n", "path", "epoch number", json!({"type": "integer", "minimum": 0}))],
                with_errors(ok("epoch", json!({"$ref": "#/components/schemas/Epoch"})), &["400", "404"])),
            "/epochs/{n}/rewards/{address}": get_op("An account's reward of an epoch with its Merkle proof (for Settlement.claim) and whether it was claimed",
                vec![param("n", "path", "epoch number", json!({"type": "integer", "minimum": 0})),
                     param("address", "path", "account", address.clone())],
                with_errors(ok("reward", json!({"type": "object", "properties": {
                    "epoch": {"type": "integer"}, "account": {"type": "string"}, "amount": wei.clone(),
                    "proof": {"type": "array", "items": {"type": "string", "pattern": "^0x[0-9a-f]{64}$"}},
                    "rewards_root": {"type": ["string", "null"]}, "parts": obj.clone(),
                    "claimed": {"type": "boolean"}, "claim_tx": {"type": ["string", "null"]}}})), &["400", "404"])),
            "/epochs/{n}/model-status/{id}": get_op("A model's leaf of the epoch report's model status tree with its Merkle proof (the arguments of Settlement.applyModelStatus) and whether it was applied; only models whose status the report sets",
                vec![param("n", "path", "epoch number", json!({"type": "integer", "minimum": 0})),
                     param("id", "path", "model id", json!({"type": "integer", "minimum": 0, "maximum": 4294967295u64}))],
                with_errors(ok("model status leaf", json!({"type": "object", "required": ["model_id", "status", "proof"], "properties": {
                    "epoch": {"type": "integer"}, "model_id": {"type": "integer"},
                    "status": {"type": "integer", "enum": [0, 1, 2], "description": "0 Active, 1 Probation, 2 Delisted"},
                    "status_name": model_status.clone(), "prev_status": model_status.clone(), "chain_status": model_status.clone(),
                    "quality": {"type": "number"}, "quality_wad": {"type": "string"}, "ratings": {"type": "integer"},
                    "proof": {"type": "array", "items": {"type": "string", "pattern": "^0x[0-9a-f]{64}$"}},
                    "model_status_hash": {"type": "string"}, "applied": {"type": "boolean"},
                    "applied_tx": {"type": ["string", "null"]}}})), &["400", "404"])),
            "/nodes/{address}/trust": get_op("A node's trust history per epoch with its four components (completion, accuracy, uptime, speed) and the epoch quality",
                vec![param("address", "path", "node address", address.clone())],
                with_errors(ok("trust history", json!({"type": "object", "properties": {
                    "address": {"type": "string"}, "current": {"type": ["object", "null"]},
                    "last_refresh": {"type": ["object", "null"]},
                    "history": {"type": "array", "items": {"$ref": "#/components/schemas/EpochNode"}}}})), &["400", "404"])),
            "/leaderboard": get_op("Workers (by rewards, then trust), validators (by rewards) or models (by quality x usage: compute units of each epoch weighted by the model's measured quality in it) over all computed epochs",
                vec![json!({"name": "role", "in": "query", "required": true, "description": "which leaderboard",
                            "schema": {"type": "string", "enum": crate::epoch_query::LEADERBOARD_ROLES}})],
                with_errors(ok("leaderboard", json!({"type": "object", "properties": {
                    "role": {"type": "string"}, "entries": {"type": "array", "items": obj.clone()}}})), &["400"])),
            "/openapi.json": get_op("This document", vec![], ok("OpenAPI 3.1 document", obj.clone())),
            "/deployment.json": get_op("The deployment being indexed: chain id, start block and contract addresses (as written by script/Deploy.s.sol)", vec![],
                with_errors(ok("deployment", json!({"type": "object", "properties": {
                    "chainId": {"type": "integer"}, "startBlock": {"type": "integer"},
                    "token": {"type": "string"}, "staking": {"type": "string"}, "modelRegistry": {"type": "string"},
                    "taskManager": {"type": "string"}, "treasury": {"type": "string"}, "validatorPool": {"type": "string"}, "settlement": {"type": "string"},
                    "auditManager": {"type": "string"}, "adminTimelock": {"type": "string"}}})),
                &["404"])),
            "/metrics": {"get": {"summary": "Prometheus metrics: indexed block, head block, blocks behind, events indexed by name, RPC errors",
                "parameters": [],
                "responses": {"200": {"description": "Prometheus text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error", "detail"], "properties": {
                "error": {"type": "string", "enum": ["bad_request", "not_found", "internal"]},
                "detail": {"type": "string"}}},
            "Epoch": {"type": "object", "properties": {
                "epoch": {"type": "integer"}, "start_time": {"type": "integer"}, "end_time": {"type": "integer"},
                "report": {"type": "object", "properties": {
                    "epoch": {"type": "integer"}, "rewardsRoot": {"type": "string"}, "trustRoot": {"type": "string"},
                    "totalRewards": wei.clone(), "modelStatusHash": {"type": "string"}}},
                "budget": wei.clone(), "pools": obj.clone(), "unminted": wei.clone(),
                "tasks_assigned": {"type": "integer"}, "tasks_finalized": {"type": "integer"},
                "claimed": wei.clone(), "claims": {"type": "integer"}, "posted": {"type": "boolean"}, "on_chain": obj.clone(),
                "nodes": {"type": "array", "items": {"$ref": "#/components/schemas/EpochNode"}},
                "validators": {"type": "array", "items": obj.clone()},
                "models": {"type": "array", "items": {"$ref": "#/components/schemas/EpochModel"}}}},
            "ModelQuality": {"type": "object", "description": "Measured quality of a model in an epoch: feedback (average user score / 100, 1.0 without ratings) x canary accuracy (matching canary reports / reports, 1.0 without reports), and the status the epoch gives it",
                "properties": model_quality_props(&model_status, true)},
            "EpochModel": {"type": "object", "description": "A model's usage in the epoch plus its ModelQuality fields",
                "properties": epoch_model_props(&model_status)},
            "EpochNode": {"type": "object", "properties": {
                "epoch": {"type": "integer"}, "address": {"type": "string"},
                "trust": {"type": "number"}, "trust_wad": {"type": "string"}, "prev_trust_wad": {"type": "string"},
                "quality": {"type": "number"}, "quality_wad": {"type": "string"},
                "components": {"type": "object", "properties": {
                    "completion": {"type": "number"}, "accuracy": {"type": "number"},
                    "uptime": {"type": "number"}, "speed": {"type": "number"}}},
                "components_wad": obj.clone(), "evaluated": {"type": "boolean"}, "slashed": {"type": "boolean"},
                "zero_epochs_left": {"type": "integer"},
                "audits": {"type": "object", "description": "accuracy facts: judgements of its results made in the epoch",
                    "properties": {"audited": {"type": "integer"}, "passed": {"type": "integer"},
                        "quality_sum_ppm": {"type": "integer"},
                        "fraud": {"type": "boolean", "description": "a dispute over its result resolved Fraud (trust pinned at 0)"}}},
                "tasks_assigned": {"type": "integer"}, "tasks_on_time": {"type": "integer"},
                "tasks_finalized": {"type": "integer"}, "compute_units": {"type": "integer"},
                "p50_latency_secs": {"type": ["integer", "null"]}, "score": {"type": "string"}, "reward": wei.clone()}},
            "Model": {"type": "object", "properties": {
                "model_id": {"type": "integer"}, "developer": {"type": "string"}, "sha256": {"type": "string"},
                "uri": {"type": "string"}, "price_per_call": wei.clone(), "compute_units": {"type": "integer"},
                "compare_rule": obj.clone(), "parent": {"type": "integer"},
                "status": {"type": "string", "enum": ["active", "probation", "delisted", "unknown"]},
                "royalties": wei.clone(), "worker_count": {"type": "integer"},
                "kind": {"type": ["string", "null"], "description": "the bundle's task kind (text-generation, embeddings, speech-recognition, ocr, image-classification, tensor); null when the manifest is not readable here"},
                "bundle": {"type": ["object", "null"], "description": "the bundle manifest read from a file:// URI and checked against the registered sha256: kind, name, compute_units, parts, verify, io, source (or error)"},
                "registered": {"type": "object", "properties": {
                    "block": {"type": "integer"}, "time": {"type": "integer"}, "tx": {"type": "string"}}},
                "workers": {"type": "array", "items": obj.clone()}, "tasks": obj.clone(),
                "measured_quality": {"type": ["number", "null"], "description": "quality of the latest computed epoch (1.0 when it had no ratings and no canary reports)"},
                "canary_accuracy": {"type": ["number", "null"], "description": "matching / all canary reports of the model's tasks (first report per task), over all time; null without reports"},
                "canaries": {"type": "object", "properties": {"reports": {"type": "integer"}, "matches": {"type": "integer"},
                    "accuracy": {"type": ["number", "null"]}}},
                "quality_history": {"type": "array", "items": {"$ref": "#/components/schemas/ModelQuality"}}}},
            "Node": {"type": "object", "properties": {
                "address": {"type": "string"}, "worker_stake": wei.clone(), "validator_stake": wei.clone(),
                "jailed_until": {"type": "integer"}, "jailed": {"type": "boolean"},
                "trust_wad": {"type": ["string", "null"]}, "earned": wei.clone(), "slashed": wei.clone(),
                "tasks": obj.clone(), "unbondings": {"type": "array", "items": obj.clone()},
                "slashes": {"type": "array", "items": {"$ref": "#/components/schemas/Slash"}},
                "audits": {"$ref": "#/components/schemas/NodeAudits"},
                "recent_tasks": {"type": "array", "items": obj.clone()}}},
            "Task": {"type": "object", "properties": {
                "task_id": {"type": "string"}, "model_id": {"type": "integer"}, "submitter": {"type": "string"},
                "worker": {"type": ["string", "null"]}, "fee": wei,
                "status": {"type": "string", "enum": crate::query::TASK_STATUSES},
                "code": {"type": ["object", "null"]}, "output_hash": {"type": ["string", "null"]},
                "input": obj.clone(), "output": {"type": ["object", "null"]},
                "fee_split": {"type": ["object", "null"]}, "latency_secs": {"type": ["integer", "null"]},
                "audit_trail": {"type": "array", "items": obj, "description": "the task's events in chain order (submitted, assigned, committed, held, verdict, dispute_opened, quorum_drawn, dispute_vote, dispute_resolved, released, canary, finalized, refunded, ...)"},
                "audit": {"$ref": "#/components/schemas/TaskAudit"}}},
        }},
    });
    if let (Some(schemas), Value::Object(extra)) = (
        doc.pointer_mut("/components/schemas")
            .and_then(Value::as_object_mut),
        audit,
    ) {
        schemas.extend(extra);
    }
    doc
}
