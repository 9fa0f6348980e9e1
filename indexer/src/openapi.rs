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

fn with_errors(mut responses: Value, codes: &[&str]) -> Value {
    if let Some(obj) = responses.as_object_mut() {
        for code in codes {
            let description = match *code {
                "400" => "a parameter is malformed (the detail names it)",
                "404" => "no such object",
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

/// The document served at `/openapi.json`.
pub fn document() -> Value {
    let address = json!({"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"});
    let wei =
        json!({"type": "string", "pattern": "^[0-9]+$", "description": "amount in wei, decimal"});
    let obj = json!({"type": "object"});
    let statuses = json!(crate::query::TASK_STATUSES);
    let model_status =
        json!({"type": "string", "enum": ["active", "probation", "delisted", "unknown"]});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "DeepNode indexer API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Contract events of a DeepNode deployment (tasks, models, nodes, stakes) indexed into SQLite. \
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
            "/nodes/{address}": get_op("One node: stakes, unbondings, jail, slashes, task stats and recent tasks",
                vec![param("address", "path", "node address", address.clone())],
                with_errors(ok("node", json!({"$ref": "#/components/schemas/Node"})), &["400", "404"])),
            "/tasks": get_op("Tasks, newest first, with keyset pagination by task id",
                vec![
                    param("status", "query", "only tasks in this state", json!({"type": "string", "enum": statuses})),
                    param("worker", "query", "only tasks assigned to this worker", address.clone()),
                    param("model", "query", "only tasks of this model id", json!({"type": "integer", "minimum": 0})),
                    param("limit", "query", "page size (default 50)", json!({"type": "integer", "minimum": 1, "maximum": crate::api::MAX_LIMIT})),
                    param("cursor", "query", "`next_cursor` of the previous page: tasks with a smaller id", json!({"type": "string", "pattern": "^[0-9]+$"})),
                ],
                with_errors(ok("a page of tasks", json!({"type": "object", "properties": {
                    "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
                    "next_cursor": {"type": ["string", "null"]}}})), &["400"])),
            "/tasks/{id}": get_op("One task: decoded input and output tensors, hashes, failure code, fee split, latency and audit trail",
                vec![param("id", "path", "task id", json!({"type": "integer", "minimum": 0}))],
                with_errors(ok("task", json!({"$ref": "#/components/schemas/Task"})), &["400", "404"])),
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
                ok("deployment", json!({"type": "object", "properties": {
                    "chainId": {"type": "integer"}, "startBlock": {"type": "integer"},
                    "token": {"type": "string"}, "staking": {"type": "string"}, "modelRegistry": {"type": "string"},
                    "taskManager": {"type": "string"}, "treasury": {"type": "string"}, "validatorPool": {"type": "string"}, "settlement": {"type": "string"}}}))),
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
            "ModelQuality": {"type": "object", "description": "Measured quality of a model in an epoch: feedback (average user score / 100, 1.0 without ratings) x canary accuracy (1.0 until canaries exist), and the status the epoch gives it",
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
                "tasks_assigned": {"type": "integer"}, "tasks_on_time": {"type": "integer"},
                "tasks_finalized": {"type": "integer"}, "compute_units": {"type": "integer"},
                "p50_latency_secs": {"type": ["integer", "null"]}, "score": {"type": "string"}, "reward": wei.clone()}},
            "Model": {"type": "object", "properties": {
                "model_id": {"type": "integer"}, "developer": {"type": "string"}, "sha256": {"type": "string"},
                "uri": {"type": "string"}, "price_per_call": wei.clone(), "compute_units": {"type": "integer"},
                "compare_rule": obj.clone(), "parent": {"type": "integer"},
                "status": {"type": "string", "enum": ["active", "probation", "delisted", "unknown"]},
                "royalties": wei.clone(), "worker_count": {"type": "integer"},
                "registered": {"type": "object", "properties": {
                    "block": {"type": "integer"}, "time": {"type": "integer"}, "tx": {"type": "string"}}},
                "workers": {"type": "array", "items": obj.clone()}, "tasks": obj.clone(),
                "measured_quality": {"type": ["number", "null"], "description": "quality of the latest computed epoch (1.0 when it had no ratings)"},
                "quality_history": {"type": "array", "items": {"$ref": "#/components/schemas/ModelQuality"}}}},
            "Node": {"type": "object", "properties": {
                "address": {"type": "string"}, "worker_stake": wei.clone(), "validator_stake": wei.clone(),
                "jailed_until": {"type": "integer"}, "jailed": {"type": "boolean"},
                "trust_wad": {"type": ["string", "null"]}, "earned": wei.clone(), "slashed": wei.clone(),
                "tasks": obj.clone(), "unbondings": {"type": "array", "items": obj.clone()},
                "slashes": {"type": "array", "items": obj.clone()}, "recent_tasks": {"type": "array", "items": obj.clone()}}},
            "Task": {"type": "object", "properties": {
                "task_id": {"type": "string"}, "model_id": {"type": "integer"}, "submitter": {"type": "string"},
                "worker": {"type": ["string", "null"]}, "fee": wei,
                "status": {"type": "string", "enum": crate::query::TASK_STATUSES},
                "code": {"type": ["object", "null"]}, "output_hash": {"type": ["string", "null"]},
                "input": obj.clone(), "output": {"type": ["object", "null"]},
                "fee_split": {"type": ["object", "null"]}, "latency_secs": {"type": ["integer", "null"]},
                "audit_trail": {"type": "array", "items": obj}}},
        }},
    })
}
