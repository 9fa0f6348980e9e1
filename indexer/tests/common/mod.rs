//! A small chain history built from the `sol!` event types, stored through the real ingestion
//! code (`Db::index_range`), for the DB and REST tests.
#![allow(dead_code)]

use alloy::primitives::{address, keccak256, Address, Bytes, B256, U256};
use alloy::sol_types::SolEvent;
use indexer::db::{BlockRef, Db};
use indexer::ingest::{Contracts, RawLog};
use inference::tensor::{encode, Tensor};
use protocol::bindings::{IModelRegistry as M, IStaking as S, ITaskManager as T};
use protocol::Deployment;
use serde_json::Value;

#[allow(unused_imports)] // each test binary uses what it needs
pub use chainstore::testing::{db_spec, pg_database};

pub const CHAIN: u64 = 31337;
pub const TM: Address = address!("0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9");
pub const REG: Address = address!("0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0");
pub const STAKING: Address = address!("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512");
pub const W1: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
pub const W2: Address = address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
pub const VAL: Address = address!("0x90F79bf6EB2c4f870365E785982E1f101E93b906");
pub const USER: Address = address!("0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65");
pub const DEV: Address = address!("0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc");
pub const SETTLEMENT: Address = address!("0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9");
pub const AM: Address = address!("0x5FC8d32690cc91D4c39d9d3abcBD16989F875707");
pub const PROBES: Address = address!("0x0165878A594ca255338adfa4d48449f69242Eb8F");

/// A response type of the API as the JSON it is served as.
pub fn to_json<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).expect("a response type serializes")
}

/// The schema `schema` refers to in `doc` (itself when it is no `$ref`).
pub fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("a $ref outside the components: {r}"));
            let target = &doc["components"]["schemas"][name];
            assert!(target.is_object(), "dangling {r}");
            resolve(doc, target)
        }
        None => schema,
    }
}

/// The properties of an object schema of `doc` and its required ones, through `$ref`s and the
/// `allOf` parts that flattened fields become.
pub fn properties(doc: &Value, schema: &Value) -> (Value, Vec<String>) {
    let (props, required) = object_properties(doc, schema);
    (Value::Object(props), required)
}

fn object_properties(doc: &Value, schema: &Value) -> (serde_json::Map<String, Value>, Vec<String>) {
    let schema = resolve(doc, schema);
    let mut props = serde_json::Map::new();
    let mut required = Vec::new();
    if let Some(p) = schema["properties"].as_object() {
        props.extend(p.clone());
    }
    if let Some(r) = schema["required"].as_array() {
        required.extend(r.iter().map(|k| k.as_str().unwrap().to_string()));
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        let (p, r) = object_properties(doc, part);
        props.extend(p);
        required.extend(r);
    }
    (props, required)
}

/// The schema of the 200 response of `GET route` in `doc`.
pub fn response_schema(doc: &Value, route: &str) -> Value {
    doc["paths"][route]["get"]["responses"]["200"]["content"]["application/json"]["schema"].clone()
}

/// The JSON Schema type of `value`.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Whether `schema` (resolved) declares a type `value` has (no `type`: any value, unless the
/// schema is an `allOf` of objects).
fn type_fits(schema: &Value, value: &Value) -> bool {
    let t = json_type(value);
    let declared: Vec<&str> = match &schema["type"] {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ if schema["allOf"].is_array() => vec!["object"],
        _ => return true,
    };
    declared.contains(&t) || (t == "integer" && declared.contains(&"number"))
}

/// Whether `value` is the alternative `alt` of a `oneOf` (its type, and for an object the
/// properties the alternative requires).
fn fits(doc: &Value, alt: &Value, value: &Value) -> bool {
    let alt = resolve(doc, alt);
    type_fits(alt, value)
        && match value.as_object() {
            Some(o) => properties(doc, alt).1.iter().all(|k| o.contains_key(k)),
            None => true,
        }
}

/// Whether `s` matches `pattern`, one of the few the document uses.
fn matches_pattern(pattern: &str, s: &str) -> bool {
    let hex_of = |s: &str, n: usize, upper: bool| {
        s.len() == n
            && s.bytes().all(|b| {
                b.is_ascii_digit()
                    || (b'a'..=b'f').contains(&b)
                    || (upper && (b'A'..=b'F').contains(&b))
            })
    };
    match pattern {
        "^0x[0-9a-fA-F]{40}$" => s.strip_prefix("0x").is_some_and(|h| hex_of(h, 40, true)),
        "^0x[0-9a-f]{64}$" => s.strip_prefix("0x").is_some_and(|h| hex_of(h, 64, false)),
        "^[0-9a-f]{64}$" => hex_of(s, 64, false),
        "^[0-9]+$" => !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()),
        other => panic!("a pattern this check does not know: {other}"),
    }
}

/// `value` conforms to `schema` of `doc`, and documents all of it: every field it has is a
/// property the schema lists (recursively, through `$ref`, `allOf` and `oneOf`), every property
/// the schema requires is there, and types, enums, patterns and bounds hold. Free-form objects
/// (decoded tensors, event details, manifests) are not looked into.
pub fn assert_documented(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(doc, schema);
    if let Some(alternatives) = schema["oneOf"].as_array() {
        let fitting: Vec<&Value> = alternatives
            .iter()
            .filter(|a| fits(doc, a, value))
            .collect();
        assert_eq!(
            fitting.len(),
            1,
            "{at}: {value} fits {} alternatives of {schema}",
            fitting.len()
        );
        return assert_documented(doc, fitting[0], value, at);
    }
    assert!(type_fits(schema, value), "{at}: {value} is not of {schema}");
    if let Some(e) = schema["enum"].as_array() {
        assert!(e.contains(value), "{at}: {value} is not one of {e:?}");
    }
    if let (Some(p), Some(s)) = (schema["pattern"].as_str(), value.as_str()) {
        assert!(matches_pattern(p, s), "{at}: {s:?} does not match {p}");
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema["minimum"].as_f64() {
            assert!(n >= min, "{at}: {n} < {min}");
        }
        if let Some(max) = schema["maximum"].as_f64() {
            assert!(n <= max, "{at}: {n} > {max}");
        }
    }
    match value {
        Value::Object(o) => {
            let (props, required) = properties(doc, schema);
            if props.as_object().unwrap().is_empty() {
                return;
            }
            for k in &required {
                assert!(o.contains_key(k), "{at}.{k} is required but not served");
            }
            for (k, v) in o {
                assert!(
                    props[k].is_object(),
                    "{at}.{k} is served but not documented"
                );
                assert_documented(doc, &props[k], v, &format!("{at}.{k}"));
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                assert_documented(doc, &schema["items"], v, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

pub fn dn(n: u64) -> U256 {
    U256::from(n) * U256::from(protocol::DN)
}

pub fn deployment() -> Deployment {
    Deployment {
        chain_id: CHAIN,
        start_block: 1,
        token: address!("0x5FbDB2315678afecb367f032d93F642f64180aa3"),
        staking: STAKING,
        model_registry: REG,
        task_manager: TM,
        treasury: DEV,
        validator_pool: DEV,
        settlement: SETTLEMENT,
        audit_manager: AM,
        admin_timelock: Address::ZERO,
        probe_registry: PROBES,
    }
}

pub fn contracts() -> Contracts {
    Contracts::of(&deployment())
}

/// Time of block `n` in the fixture chain.
pub fn time_of(n: u64) -> u64 {
    1_700_000_000 + 12 * n
}

pub fn block(n: u64) -> BlockRef {
    BlockRef {
        number: n,
        hash: keccak256(n.to_be_bytes()),
        timestamp: time_of(n),
    }
}

/// A digits-style input: one f32 tensor "input" of shape [1, 64].
pub fn digit_input(seed: f32) -> Vec<u8> {
    let values: Vec<f32> = (0..64).map(|i| (i as f32 + seed) % 16.0).collect();
    encode(&[("input", Tensor::from_f32(vec![1, 64], &values).unwrap())]).unwrap()
}

/// A classifier output: "label" i64 [1].
pub fn label_output(label: i64) -> Vec<u8> {
    encode(&[("label", Tensor::from_i64(vec![1], &[label]).unwrap())]).unwrap()
}

/// Builds the logs of one block.
pub struct BlockLogs {
    pub number: u64,
    logs: Vec<RawLog>,
}

impl BlockLogs {
    pub fn new(number: u64) -> Self {
        Self {
            number,
            logs: Vec::new(),
        }
    }

    pub fn push<E: SolEvent>(&mut self, address: Address, event: E) -> &mut Self {
        let index = self.logs.len() as u64;
        let tx = keccak256([self.number.to_be_bytes(), index.to_be_bytes()].concat());
        self.push_tx(address, event, tx)
    }

    /// Pushes a log of transaction `tx` (several logs of one contract call share it).
    pub fn push_tx<E: SolEvent>(&mut self, address: Address, event: E, tx: B256) -> &mut Self {
        let data = event.encode_log_data();
        let index = self.logs.len() as u64;
        self.logs.push(RawLog {
            block_number: self.number,
            log_index: index,
            tx_hash: tx,
            block_time: time_of(self.number),
            address,
            topics: data.topics().to_vec(),
            data: data.data.clone(),
        });
        self
    }

    pub fn logs(&self) -> &[RawLog] {
        &self.logs
    }
}

fn u96(v: U256) -> alloy::primitives::Uint<96, 2> {
    alloy::primitives::Uint::from(v)
}

/// The fixture history, block by block (blocks 1..=7):
/// 1 stakes, 2 model + opt-ins, 3 three tasks submitted and assigned, 4 a batch commit (task 1
/// ok, task 2 failed with garbage output) and a missed task 3 reassigned, 5 finalizations,
/// 6 unstakes of W1 and W2, slash + jail of W2, 7 task 3 committed and W1's unstake withdrawn.
pub fn history() -> Vec<BlockLogs> {
    let mut b1 = BlockLogs::new(1);
    b1.push(
        STAKING,
        S::Staked {
            account: W1,
            role: 0,
            amount: dn(1000),
            newStake: dn(1000),
        },
    )
    .push(
        STAKING,
        S::Staked {
            account: W2,
            role: 0,
            amount: dn(1000),
            newStake: dn(1000),
        },
    )
    .push(
        STAKING,
        S::Staked {
            account: VAL,
            role: 1,
            amount: dn(5000),
            newStake: dn(5000),
        },
    );

    let mut b2 = BlockLogs::new(2);
    b2.push(
        REG,
        M::ModelRegistered {
            modelId: 1,
            developer: DEV,
            sha256Hash: B256::repeat_byte(0xab),
            uri: "file:///models/digits.onnx".into(),
            pricePerCall: u96(dn(1)),
            computeUnits: 10,
            rule: 2,
            tolerance: 0,
            parent: 0,
        },
    )
    .push(
        REG,
        M::WorkerOptedIn {
            modelId: 1,
            worker: W1,
            weight: dn(1000),
        },
    )
    .push(
        REG,
        M::WorkerOptedIn {
            modelId: 1,
            worker: W2,
            weight: dn(1000),
        },
    )
    .push(
        REG,
        M::ModelPriceChanged {
            modelId: 1,
            pricePerCall: u96(dn(2)),
        },
    );

    let mut b3 = BlockLogs::new(3);
    for (id, worker) in [(1u64, W1), (2, W1), (3, W2)] {
        let input = if id == 2 {
            b"not a tensor".to_vec()
        } else {
            digit_input(id as f32)
        };
        b3.push(
            TM,
            T::TaskSubmitted {
                taskId: U256::from(id),
                submitter: USER,
                modelId: 1,
                fee: dn(2),
                input: input.into(),
            },
        )
        .push(
            TM,
            T::TaskAssigned {
                taskId: U256::from(id),
                worker,
                deadline: time_of(3) + 60,
            },
        );
    }

    let mut b4 = BlockLogs::new(4);
    let out1 = label_output(7);
    let out2 = b"input bytes are not a valid safetensors tensor document".to_vec();
    b4.push(
        TM,
        T::ResultsCommitted {
            batchId: U256::from(1),
            worker: W1,
            root: B256::repeat_byte(0x11),
            taskIds: vec![U256::from(1), U256::from(2)],
            outputHashes: vec![keccak256(&out1), keccak256(&out2)],
            codes: vec![0, 1],
            outputs: vec![Bytes::from(out1), Bytes::from(out2)],
        },
    )
    .push(
        TM,
        T::TaskMissed {
            taskId: U256::from(3),
            worker: W2,
        },
    )
    .push(
        TM,
        T::TaskAssigned {
            taskId: U256::from(3),
            worker: W1,
            deadline: time_of(4) + 60,
        },
    );

    let mut b5 = BlockLogs::new(5);
    b5.push(
        TM,
        T::TaskFinalized {
            taskId: U256::from(1),
            worker: W1,
            modelId: 1,
            code: 0,
            computeUnits: 10,
            quality: 1_000_000,
            latency: 12,
            developerFee: dn(1) / U256::from(10),
            workerFee: dn(1) * U256::from(16) / U256::from(10),
            validatorFee: dn(1) / U256::from(10),
            protocolFee: dn(1) * U256::from(2) / U256::from(10),
            refund: U256::ZERO,
        },
    )
    .push(
        TM,
        T::TaskFinalized {
            taskId: U256::from(2),
            worker: W1,
            modelId: 1,
            code: 1,
            computeUnits: 10,
            quality: 0,
            latency: 12,
            developerFee: U256::ZERO,
            workerFee: dn(1) / U256::from(10),
            validatorFee: U256::ZERO,
            protocolFee: U256::ZERO,
            refund: dn(1) * U256::from(19) / U256::from(10),
        },
    );

    let mut b6 = BlockLogs::new(6);
    b6.push(
        STAKING,
        S::UnstakeRequested {
            account: W2,
            role: 0,
            amount: dn(400),
            releaseAt: time_of(6) + 3600,
            newStake: dn(600),
        },
    )
    .push(
        STAKING,
        S::UnstakeRequested {
            account: W2,
            role: 0,
            amount: dn(100),
            releaseAt: time_of(6) + 3600,
            newStake: dn(500),
        },
    )
    .push(
        STAKING,
        S::UnstakeRequested {
            account: W1,
            role: 0,
            amount: dn(100),
            releaseAt: time_of(6),
            newStake: dn(900),
        },
    )
    .push(
        STAKING,
        S::Slashed {
            account: W2,
            role: 0,
            reason: 1,
            amount: dn(700),
            beneficiary: USER,
            rewarded: dn(350),
            burned: dn(350),
        },
    )
    .push(
        STAKING,
        S::Jailed {
            account: W2,
            until: time_of(6) + 600,
        },
    )
    .push(
        REG,
        M::TrustWeightSet {
            worker: W1,
            trustWad: dn(1),
        },
    )
    .push(
        REG,
        M::WorkerOptedOut {
            modelId: 1,
            worker: W2,
        },
    );

    let mut b7 = BlockLogs::new(7);
    let out3 = label_output(3);
    b7.push(
        TM,
        T::ResultsCommitted {
            batchId: U256::from(2),
            worker: W1,
            root: B256::repeat_byte(0x22),
            taskIds: vec![U256::from(3)],
            outputHashes: vec![keccak256(&out3)],
            codes: vec![0],
            outputs: vec![Bytes::from(out3)],
        },
    )
    .push(
        STAKING,
        S::Withdrawn {
            account: W1,
            amount: dn(100),
        },
    )
    // An event the bindings do not know is kept raw as "Unknown".
    .push(TM, UnknownEvent { x: U256::from(1) });
    vec![b1, b2, b3, b4, b5, b6, b7]
}

alloy::sol! {
    event UnknownEvent(uint256 x);
}

/// Indexes blocks `from..=to` of the history as one range, like the follow loop.
pub async fn index(db: &Db, history: &[BlockLogs], from: u64, to: u64) -> Vec<&'static str> {
    let mut logs = Vec::new();
    let mut blocks = Vec::new();
    for b in history.iter().filter(|b| (from..=to).contains(&b.number)) {
        logs.extend_from_slice(b.logs());
        blocks.push(block(b.number));
    }
    db.index_range(CHAIN, &contracts(), &logs, &blocks, block(to))
        .await
        .unwrap()
}

/// A fresh database file in `dir`, bound to the fixture deployment.
pub async fn open(dir: &std::path::Path) -> Db {
    let db = Db::open(&db_spec(dir, "indexer.sqlite")).await.unwrap();
    db.bind_deployment(&deployment()).await.unwrap();
    db
}

/// A database with the whole history indexed.
pub async fn filled(dir: &std::path::Path) -> Db {
    let db = open(dir).await;
    index(&db, &history(), 1, 7).await;
    db
}

/// The API's state over `db` (chain 31337, 2 confirmations, no web dir, no deployment).
pub fn api_state(db: Db) -> indexer::api::AppState {
    indexer::api::AppState {
        db,
        chain_id: CHAIN,
        confirmations: 2,
        sync: std::sync::Arc::new(indexer::api::SyncStatus::default()),
        metrics: indexer::metrics_handle(),
        web_dir: None,
        deployment: None,
        pages: Default::default(),
    }
}
