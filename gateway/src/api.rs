//! The HTTP API: OpenAI's routes for text generation and embeddings, DeepNode's for any kind and
//! for following a task. Every answer names its on-chain task (`x-deepnode-task-id`, and a
//! `deepnode` object in the body) so the caller can verify, rate or challenge it.

use crate::chain::{status, Answer, Chain};
use crate::error::{from_json_rejection, ApiError};
use crate::keys::KeyInfo;
use crate::models::{Catalogue, ModelInfo};
use alloy::primitives::U256;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::{Json, Router};
use base64::Engine;
use inference::Kind;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Largest request body (30 s of 16 kHz WAV, about 0.96 MB, fits with room to spare).
pub const MAX_BODY_BYTES: usize = 2 << 20;
/// `max_tokens` when a request gives none.
pub const DEFAULT_MAX_TOKENS: u32 = 64;

/// What every handler shares.
pub struct AppState {
    /// Wallet and chain access.
    pub chain: Chain,
    /// Registry + manifests.
    pub catalogue: Catalogue,
    /// How long a request waits for its answer.
    pub task_timeout: Duration,
    /// API keys (when set, every `/v1` request needs one, and calls are charged to it).
    pub keys: Option<crate::keys::Keys>,
    /// How aliases pick a model.
    pub routing: crate::routing::Weights,
    /// The indexer's REST API, for measured model quality (aliases route without it on price
    /// and latency only).
    pub indexer: Option<String>,
    /// Mean answer time per model here, ms (exponentially weighted).
    pub latency: std::sync::Mutex<std::collections::HashMap<u32, f64>>,
    /// Open token streams from workers.
    pub streams: Arc<crate::streams::Hub>,
    /// Where workers reach this gateway to stream tokens (`None`: streaming calls get their
    /// text when it is committed).
    pub public_url: Option<String>,
    /// Challenge a task whose committed answer is not what its worker streamed.
    pub challenge_mismatch: bool,
    /// Seeded exploration draws (`--route-seed`: reproducible routing); `None`: the OS's.
    pub route_rng: Option<std::sync::Mutex<rand::rngs::StdRng>>,
}

impl AppState {
    /// A state with default routing, no indexer and no keys.
    pub fn new(chain: Chain, catalogue: Catalogue, task_timeout: Duration) -> Self {
        Self {
            chain,
            catalogue,
            task_timeout,
            keys: None,
            routing: crate::routing::Weights::default(),
            indexer: None,
            latency: Default::default(),
            streams: Default::default(),
            public_url: None,
            challenge_mismatch: true,
            route_rng: None,
        }
    }

    fn record_latency(&self, model: u32, ms: f64) {
        if let Ok(mut l) = self.latency.lock() {
            let e = l.entry(model).or_insert(ms);
            *e = 0.8 * *e + 0.2 * ms;
        }
    }

    /// The indexer's measured quality of `model` (its last epoch), if it has one.
    async fn measured_quality(&self, model: u32) -> Option<f64> {
        let base = self.indexer.as_ref()?;
        let v: Value = reqwest::Client::new()
            .get(format!("{}/models/{model}", base.trim_end_matches('/')))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v["measured_quality"].as_f64()
    }
}

/// The caller's key, when the gateway requires keys.
type Key = Option<Extension<KeyInfo>>;

/// Checks the API key of every `/v1` request when keys are required.
async fn require_key(
    State(s): State<Arc<AppState>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(keys) = &s.keys {
        if req.uri().path().starts_with("/v1/") {
            let header = req
                .headers()
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            match keys.authorize(header).await {
                Ok(info) => {
                    req.extensions_mut().insert(info);
                }
                Err(e) => return e.into_response(),
            }
        }
    }
    next.run(req).await
}

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/streams", get(crate::streams::open_streams))
        .route("/streams/{nonce}", post(crate::streams::worker_stream))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{*id}", get(get_model))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/audio/transcriptions", post(transcriptions))
        .route("/v1/tasks", post(run_task))
        .route("/v1/pipelines", post(pipeline))
        .route("/v1/tasks/{id}", get(get_task))
        .fallback(|| async {
            ApiError {
                status: axum::http::StatusCode::NOT_FOUND,
                ..ApiError::invalid("path", "no such route (see the README's gateway section)")
            }
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_key,
        ))
        .with_state(state)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn model_json(m: &ModelInfo) -> Value {
    json!({
        "id": m.openai_id(),
        "object": "model",
        "created": 0,
        "owned_by": m.developer.to_checksum(None),
        "deepnode": {
            "model_id": m.id,
            "name": m.name,
            "kind": m.kind.map(|k| k.as_str()),
            "price_wei": m.price.to_string(),
            "status": m.status_name(),
            "workers": m.workers,
            "sha256": m.sha256.to_string(),
        },
    })
}

async fn list_models(State(s): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let models = s.catalogue.list().await?;
    let mut data: Vec<Value> = models
        .iter()
        .filter(|m| m.status != 2)
        .map(model_json)
        .collect();
    for (alias, kind) in crate::routing::ALIASES {
        data.push(json!({
            "id": alias, "object": "model", "created": 0, "owned_by": "deepnode",
            "deepnode": {"alias": true, "kind": kind.as_str(),
                         "routes": "by measured quality, price and latency, with exploration"},
        }));
    }
    Ok(Json(json!({"object": "list", "data": data})))
}

async fn get_model(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(model_json(&s.catalogue.resolve(&id).await?)))
}

/// The model an alias routes this call to (`x-deepnode-route` says why).
async fn route(s: &AppState, alias: &str, kind: Kind) -> Result<ModelInfo, ApiError> {
    let mut cands = Vec::new();
    for m in s.catalogue.list().await? {
        if m.kind != Some(kind) || m.status == 2 || m.workers == 0 {
            continue;
        }
        let quality = s.measured_quality(m.id).await;
        let latency_ms = s.latency.lock().ok().and_then(|l| l.get(&m.id).copied());
        cands.push(crate::routing::Candidate {
            model: m,
            quality,
            latency_ms,
        });
    }
    let choice = match &s.route_rng {
        Some(rng) => {
            let mut rng = rng
                .lock()
                .map_err(|_| ApiError::internal("routing draws poisoned"))?;
            crate::routing::choose(alias, &cands, &s.routing, &mut *rng)
        }
        None => crate::routing::choose(alias, &cands, &s.routing, &mut rand::thread_rng()),
    }
    .ok_or_else(|| ApiError::no_worker(format!("no {kind} model has a worker now ({alias})")))?;
    let mut m = choice.model;
    m.route = Some(choice.reason);
    Ok(m)
}

/// A model of `kind` by the request's name (or an alias of that kind), or the error naming what
/// is wrong.
async fn model_of_kind(s: &AppState, model: &str, kind: Kind) -> Result<ModelInfo, ApiError> {
    if let Some(k) = crate::routing::alias_kind(model) {
        if k != kind {
            return Err(ApiError::invalid(
                "model",
                format!("{model} routes to {k} models, not {kind}"),
            ));
        }
        return route(s, model.trim(), kind).await;
    }
    let m = s.catalogue.resolve(model).await?;
    if m.status == 2 {
        return Err(ApiError::delisted(&m.openai_id()));
    }
    if m.kind != Some(kind) {
        return Err(ApiError::invalid(
            "model",
            format!(
                "{} ({}) is a {} model, not {kind}",
                m.openai_id(),
                m.name,
                m.kind.map(|k| k.as_str()).unwrap_or("unknown")
            ),
        ));
    }
    Ok(m)
}

/// Submits `inputs` to `m` (large ones by blob reference), charged to the caller's key.
async fn submit(
    s: &AppState,
    m: &ModelInfo,
    inputs: Vec<Vec<u8>>,
    key: &Key,
) -> Result<(Vec<U256>, u64), ApiError> {
    let mut submitted = Vec::with_capacity(inputs.len());
    for input in inputs {
        submitted.push(s.chain.submittable(input, "input").await?);
    }
    let cost = m.price.saturating_mul(U256::from(submitted.len()));
    let charged = match (&s.keys, key) {
        (Some(keys), Some(Extension(k))) => {
            keys.charge(k.id, cost).await?;
            Some((keys, k.id))
        }
        _ => None,
    };
    let r = s.chain.submit(m.id, submitted, m.price).await;
    match (&r, charged) {
        (Err(_), Some((keys, id))) => keys.refund(id, cost).await,
        // what the chain refunds later is credited back by the reconciler
        (Ok((ids, block)), Some((keys, id))) => keys.record(id, ids, m.price, *block).await,
        _ => {}
    }
    r
}

/// Submits `inputs` to `m`, waits for every answer.
async fn run(
    s: &AppState,
    m: &ModelInfo,
    inputs: Vec<Vec<u8>>,
    key: &Key,
) -> Result<Vec<Answer>, ApiError> {
    let started = Instant::now();
    let (ids, block) = submit(s, m, inputs, key).await?;
    let deadline = Instant::now() + s.task_timeout;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(s.chain.wait(id, block, deadline).await?);
    }
    s.record_latency(m.id, started.elapsed().as_secs_f64() * 1000.0);
    Ok(out)
}

/// A committed failure as the error a client understands: an input fault is the caller's (422,
/// the worker's message), anything else the worker's (502, the fee is refunded).
fn failure(a: &Answer, param: &str) -> ApiError {
    let msg = String::from_utf8_lossy(&a.output).into_owned();
    let name = protocol::codes::FailureCode::from_u16(a.code)
        .map(|c| c.as_str())
        .unwrap_or("unknown");
    let e = if protocol::codes::is_input_fault_code(a.code) {
        ApiError::invalid(
            param,
            format!(
                "the model refused the input ({name}): {msg} (task {}; the fee less the worker's processing share is refunded when it settles)",
                a.task_id
            ),
        )
    } else {
        ApiError::worker_failed(format!(
            "the worker could not run task {} ({name}): {msg}; the fee is refunded",
            a.task_id
        ))
    };
    ApiError {
        task_id: Some(a.task_id.to_string()),
        ..e
    }
}

/// Headers naming the task behind an answer.
fn task_headers(m: &ModelInfo, answers: &[Answer]) -> HeaderMap {
    let mut h = HeaderMap::new();
    let join = |f: &dyn Fn(&Answer) -> String| -> String {
        answers.iter().map(f).collect::<Vec<_>>().join(",")
    };
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    put("x-deepnode-task-id", join(&|a| a.task_id.to_string()));
    put("x-deepnode-model-id", m.id.to_string());
    put("x-deepnode-worker", join(&|a| a.worker.to_checksum(None)));
    put("x-deepnode-fee", join(&|a| a.fee.to_string()));
    put(
        "x-deepnode-verified",
        answers.iter().all(|a| a.verified).to_string(),
    );
    if let Some(r) = &m.route {
        put("x-deepnode-route", r.clone());
    }
    h
}

fn deepnode_json(a: &Answer) -> Value {
    json!({
        "task_id": a.task_id.to_string(),
        "worker": a.worker.to_checksum(None),
        "fee_wei": a.fee.to_string(),
        "verified": a.verified,
        "commit_tx": a.commit_tx.to_string(),
    })
}

/// Output JSON of a kind, or a 502 when the worker's bytes are not what its kind returns.
fn output_json(a: &Answer) -> Result<Value, ApiError> {
    serde_json::from_slice(&a.output).map_err(|e| {
        ApiError::worker_failed(format!(
            "task {}: the worker's output is not its kind's JSON: {e}",
            a.task_id
        ))
    })
}

// ------------------------------------------------------------------ chat and completions

/// `stop`: one string or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

/// OpenAI's chat request. Sampling fields are accepted and ignored (decoding is greedy and
/// deterministic, so validators can check it); unknown fields are refused by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatRequest {
    model: String,
    messages: Vec<Value>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<Value>,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    presence_penalty: Option<f64>,
    #[serde(default)]
    frequency_penalty: Option<f64>,
}

/// A message's content as plain text: a string, or OpenAI's list of `{"type":"text"}` parts.
fn flatten_message(i: usize, m: &Value) -> Result<Value, ApiError> {
    let param = format!("messages[{i}]");
    let Some(obj) = m.as_object() else {
        return Err(ApiError::invalid(&param, "a message is an object"));
    };
    let role = obj
        .get("role")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid(&format!("{param}.role"), "missing role"))?;
    let content = match obj.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (j, p) in parts.iter().enumerate() {
                match (p["type"].as_str(), p["text"].as_str()) {
                    (Some("text"), Some(t)) => text.push_str(t),
                    _ => {
                        return Err(ApiError::invalid(
                            &format!("{param}.content[{j}]"),
                            "only text parts are supported by text-generation models",
                        ))
                    }
                }
            }
            text
        }
        _ => {
            return Err(ApiError::invalid(
                &format!("{param}.content"),
                "content is a string or a list of text parts",
            ))
        }
    };
    Ok(json!({"role": role, "content": content}))
}

fn max_tokens(a: Option<u32>, b: Option<u32>) -> Result<u32, ApiError> {
    let (param, v) = match (a, b) {
        (Some(v), _) => ("max_tokens", v),
        (None, Some(v)) => ("max_completion_tokens", v),
        (None, None) => return Ok(DEFAULT_MAX_TOKENS),
    };
    if v == 0 {
        return Err(ApiError::invalid(param, "must be at least 1"));
    }
    Ok(v)
}

/// The text-generation output this gateway reads.
struct Generated {
    text: String,
    token_ids: Vec<u32>,
    finish_reason: String,
    prompt_tokens: u64,
    completion_tokens: u64,
}

fn generated(a: &Answer) -> Result<Generated, ApiError> {
    let v = output_json(a)?;
    Ok(Generated {
        text: v["text"].as_str().unwrap_or_default().to_string(),
        token_ids: v["token_ids"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()))
                    .collect()
            })
            .unwrap_or_default(),
        finish_reason: v["finish_reason"].as_str().unwrap_or("stop").to_string(),
        prompt_tokens: v["prompt_tokens"].as_u64().unwrap_or(0),
        completion_tokens: v["token_ids"].as_array().map_or(0, |t| t.len() as u64),
    })
}

fn usage(g: &Generated) -> Value {
    json!({
        "prompt_tokens": g.prompt_tokens,
        "completion_tokens": g.completion_tokens,
        "total_tokens": g.prompt_tokens + g.completion_tokens,
    })
}

async fn chat(
    State(s): State<Arc<AppState>>,
    key: Key,
    body: Result<Json<ChatRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(from_json_rejection)?;
    if req.n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid("n", "only n = 1 is supported"));
    }
    if req.messages.is_empty() {
        return Err(ApiError::invalid("messages", "at least one message"));
    }
    let messages = req
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| flatten_message(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    let max = max_tokens(req.max_tokens, req.max_completion_tokens)?;
    let m = model_of_kind(&s, &req.model, Kind::TextGeneration).await?;
    let mut input = json!({"messages": messages, "max_tokens": max});
    if let Some(stop) = req.stop {
        input["stop"] = json!(stop.into_vec());
    }
    let _ = (
        req.temperature,
        req.top_p,
        req.seed,
        req.user,
        req.presence_penalty,
        req.frequency_penalty,
    );
    let include_usage = req
        .stream_options
        .as_ref()
        .and_then(|o| o["include_usage"].as_bool())
        .unwrap_or(false);
    if req.stream {
        return stream_chat(s, m, input, include_usage, key).await;
    }
    let bytes = serde_json::to_vec(&input).expect("JSON");
    let answers = run(&s, &m, vec![bytes], &key).await?;
    let a = &answers[0];
    if a.code != 0 {
        return Err(failure(a, "messages"));
    }
    let g = generated(a)?;
    let body = json!({
        "id": format!("chatcmpl-{}", a.task_id),
        "object": "chat.completion",
        "created": now_secs(),
        "model": m.openai_id(),
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": g.text},
            "finish_reason": g.finish_reason,
            "logprobs": null,
        }],
        "usage": usage(&g),
        "deepnode": deepnode_json(a),
    });
    Ok((task_headers(&m, &answers), Json(body)).into_response())
}

/// A chat answer as Server-Sent Events in OpenAI's chunk format. The task is submitted before the
/// response starts (its id is in the headers). The worker streams its tokens here while it
/// generates (when this gateway has a public URL), and they are forwarded as they arrive; once the
/// answer is committed on-chain it is checked against what was streamed: the rest of the
/// committed text follows, and the last chunk's `deepnode` object says whether everything sent
/// is the committed answer (`verified`). When it is not, the caller is told so, with the committed
/// text, and the task is challenged.
async fn stream_chat(
    s: Arc<AppState>,
    m: ModelInfo,
    mut input: Value,
    include_usage: bool,
    key: Key,
) -> Result<Response, ApiError> {
    let listener = s.public_url.as_ref().map(|base| {
        let l = s.streams.listen();
        input[protocol::stream::INPUT_FIELD] =
            json!(format!("{}{}", base.trim_end_matches('/'), l.path()));
        l
    });
    let bytes = serde_json::to_vec(&input).expect("JSON");
    let (ids, block) = submit(&s, &m, vec![bytes], &key).await?;
    let task_id = ids[0];
    if let Some(l) = &listener {
        l.set_task(task_id);
    }
    let id = format!("chatcmpl-{task_id}");
    let model = m.openai_id();
    let created = now_secs();
    let chunk = move |delta: Value, finish: Value, usage: Value| -> Value {
        let mut c = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}],
        });
        if !usage.is_null() {
            c["choices"] = json!([]);
            c["usage"] = usage;
        }
        c
    };
    let deadline = Instant::now() + s.task_timeout;
    let state = s.clone();
    let started = Instant::now();
    let model_id = m.id;
    let events = async_stream(move |tx| async move {
        let send = |c: Value| {
            let tx = tx.clone();
            async move {
                tx.send(Ok(Event::default().data(c.to_string())))
                    .await
                    .is_ok()
            }
        };
        if !send(chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
            Value::Null,
        ))
        .await
        {
            return;
        }
        // tokens as the worker streams them, until the answer is committed
        let mut preview = Preview::default();
        let wait = state.chain.wait(task_id, block, deadline);
        tokio::pin!(wait);
        let mut listener = listener;
        let answer = loop {
            let mut closed = false;
            tokio::select! {
                a = &mut wait => break a,
                t = next_token(&mut listener) => match t {
                    Some(t) => {
                        if let Some(d) = preview.push(t) {
                            if !send(chunk(json!({"content": d}), Value::Null, Value::Null)).await {
                                // the caller left: the task still completes and is paid
                                return;
                            }
                        }
                    }
                    None => closed = true,
                },
            }
            if closed {
                listener = None;
            }
        };
        // the worker streams before it commits; give a late stream a moment to finish
        if let Some(mut l) = listener.take() {
            let until = tokio::time::Instant::now() + Duration::from_secs(2);
            while let Ok(Some(t)) = tokio::time::timeout_at(until, l.rx.recv()).await {
                if let Some(d) = preview.push(t) {
                    if !send(chunk(json!({"content": d}), Value::Null, Value::Null)).await {
                        return;
                    }
                }
            }
        }
        let result = answer.and_then(|a| {
            if a.code != 0 {
                return Err(failure(&a, "messages"));
            }
            let g = generated(&a)?;
            Ok((a, g))
        });
        let (a, g) = match result {
            Ok(x) => x,
            Err(e) => {
                let _ = tx
                    .send(Ok(Event::default().data(e.body().to_string())))
                    .await;
                return;
            }
        };
        state.record_latency(model_id, started.elapsed().as_secs_f64() * 1000.0);
        let consistent = g.text.starts_with(&preview.text) && g.token_ids.starts_with(&preview.ids);
        let mut info = deepnode_json(&a);
        info["streamed_tokens"] = json!(preview.ids.len());
        if consistent {
            let rest = &g.text[preview.text.len()..];
            if !rest.is_empty()
                && !send(chunk(json!({"content": rest}), Value::Null, Value::Null)).await
            {
                return;
            }
        } else {
            // what the caller read is not the committed answer
            info["verified"] = json!(false);
            info["mismatch"] = json!(format!(
                "the worker streamed {} tokens that are not the start of its committed answer; the committed text is in `committed_text`",
                preview.ids.len()
            ));
            info["committed_text"] = json!(g.text);
            tracing::warn!(task = %task_id, worker = %a.worker, "streamed tokens differ from the committed answer");
            if state.challenge_mismatch {
                let chain = state.clone();
                let a = a.clone();
                tokio::spawn(async move {
                    match chain.chain.challenge(&a).await {
                        Ok(tx) => {
                            tracing::warn!(task = %a.task_id, %tx, "challenged: streamed tokens differ from the committed answer")
                        }
                        Err(e) => {
                            tracing::warn!(task = %a.task_id, reason = %e, "stream mismatch not challenged")
                        }
                    }
                });
            }
        }
        let mut last = chunk(json!({}), json!(g.finish_reason), Value::Null);
        last["deepnode"] = info;
        let _ = send(last).await
            && (!include_usage || send(chunk(json!({}), Value::Null, usage(&g))).await)
            && tx.send(Ok(Event::default().data("[DONE]"))).await.is_ok();
    });
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("x-deepnode-task-id"),
        HeaderValue::from_str(&task_id.to_string()).expect("digits"),
    );
    headers.insert(
        HeaderName::from_static("x-deepnode-model-id"),
        HeaderValue::from_str(&m.id.to_string()).expect("digits"),
    );
    if let Some(v) = m.route.as_ref().and_then(|r| HeaderValue::from_str(r).ok()) {
        headers.insert(HeaderName::from_static("x-deepnode-route"), v);
    }
    Ok((
        headers,
        Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(10))),
    )
        .into_response())
}

/// What a worker streamed so far.
#[derive(Default)]
struct Preview {
    text: String,
    ids: Vec<u32>,
}

impl Preview {
    /// Records a streamed token; returns its text when it adds any (what the caller is sent).
    fn push(&mut self, t: protocol::stream::TokenLine) -> Option<String> {
        self.ids.push(t.token_id);
        if t.text.is_empty() {
            return None;
        }
        self.text.push_str(&t.text);
        Some(t.text)
    }
}

/// The next streamed token; never resolves without a listener.
async fn next_token(
    l: &mut Option<crate::streams::Listener>,
) -> Option<protocol::stream::TokenLine> {
    match l {
        Some(l) => l.rx.recv().await,
        None => std::future::pending().await,
    }
}

/// A stream fed by a task through a channel (the task ends when the client goes away: its next
/// send fails; the on-chain task still completes and is paid).
fn async_stream<F, Fut>(
    f: F,
) -> impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, std::convert::Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(f(tx));
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// OpenAI's legacy completion request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompletionRequest {
    model: String,
    prompt: String,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    user: Option<String>,
}

async fn completions(
    State(s): State<Arc<AppState>>,
    key: Key,
    body: Result<Json<CompletionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(from_json_rejection)?;
    if req.stream {
        return Err(ApiError::invalid(
            "stream",
            "streaming is offered on /v1/chat/completions; /v1/completions answers whole",
        ));
    }
    if req.n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid("n", "only n = 1 is supported"));
    }
    if req.prompt.is_empty() {
        return Err(ApiError::invalid("prompt", "the prompt is empty"));
    }
    let _ = (req.temperature, req.top_p, req.seed, req.user);
    let max = max_tokens(req.max_tokens, None)?;
    let m = model_of_kind(&s, &req.model, Kind::TextGeneration).await?;
    let mut input = json!({"prompt": req.prompt, "max_tokens": max});
    if let Some(stop) = req.stop {
        input["stop"] = json!(stop.into_vec());
    }
    let answers = run(
        &s,
        &m,
        vec![serde_json::to_vec(&input).expect("JSON")],
        &key,
    )
    .await?;
    let a = &answers[0];
    if a.code != 0 {
        return Err(failure(a, "prompt"));
    }
    let g = generated(a)?;
    let body = json!({
        "id": format!("cmpl-{}", a.task_id),
        "object": "text_completion",
        "created": now_secs(),
        "model": m.openai_id(),
        "choices": [{"index": 0, "text": g.text, "finish_reason": g.finish_reason, "logprobs": null}],
        "usage": usage(&g),
        "deepnode": deepnode_json(a),
    });
    Ok((task_headers(&m, &answers), Json(body)).into_response())
}

// ------------------------------------------------------------------ embeddings

/// `input`: one string or a list of strings (token arrays are not taken: the model tokenizes).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum EmbeddingInput {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbeddingsRequest {
    model: String,
    input: EmbeddingInput,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<u32>,
    #[serde(default)]
    user: Option<String>,
}

/// Most inputs one embeddings request may carry (one task each, one transaction).
pub const MAX_EMBEDDING_INPUTS: usize = 64;

async fn embeddings(
    State(s): State<Arc<AppState>>,
    key: Key,
    body: Result<Json<EmbeddingsRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(from_json_rejection)?;
    let texts = match req.input {
        EmbeddingInput::One(t) => vec![t],
        EmbeddingInput::Many(v) => v,
    };
    if texts.is_empty() {
        return Err(ApiError::invalid("input", "at least one input"));
    }
    if texts.len() > MAX_EMBEDDING_INPUTS {
        return Err(ApiError::invalid(
            "input",
            format!("at most {MAX_EMBEDDING_INPUTS} inputs per request"),
        ));
    }
    if let Some(i) = texts.iter().position(String::is_empty) {
        return Err(ApiError::invalid(&format!("input[{i}]"), "empty text"));
    }
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "encoding_format",
                format!("`{other}`: use float or base64"),
            ))
        }
    };
    let _ = req.user;
    let m = model_of_kind(&s, &req.model, Kind::Embeddings).await?;
    let answers = run(
        &s,
        &m,
        texts.into_iter().map(String::into_bytes).collect(),
        &key,
    )
    .await?;
    let mut data = Vec::new();
    let mut tokens = 0u64;
    for (i, a) in answers.iter().enumerate() {
        if a.code != 0 {
            return Err(failure(a, &format!("input[{i}]")));
        }
        let v = output_json(a)?;
        let vector: Vec<f32> = v["embedding"]
            .as_array()
            .map(|xs| {
                xs.iter()
                    .filter_map(Value::as_f64)
                    .map(|x| x as f32)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(d) = req.dimensions {
            if d as usize != vector.len() {
                return Err(ApiError::invalid(
                    "dimensions",
                    format!("{} returns {} dimensions", m.openai_id(), vector.len()),
                ));
            }
        }
        tokens += v["tokens"].as_u64().unwrap_or(0);
        let embedding = if base64 {
            let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
            json!(base64::engine::general_purpose::STANDARD.encode(bytes))
        } else {
            json!(vector)
        };
        data.push(json!({"object": "embedding", "index": i, "embedding": embedding}));
    }
    let body = json!({
        "object": "list",
        "data": data,
        "model": m.openai_id(),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        "deepnode": answers.iter().map(deepnode_json).collect::<Vec<_>>(),
    });
    Ok((task_headers(&m, &answers), Json(body)).into_response())
}

// ------------------------------------------------------------------ speech

/// OpenAI's transcription upload: multipart `file` (16 kHz WAV) and `model`; `response_format`
/// `json` (default) or `text`; `language`, `prompt` and `temperature` are accepted and ignored
/// (the model is English-only and decodes greedily).
async fn transcriptions(
    State(s): State<Arc<AppState>>,
    key: Key,
    mut form: axum::extract::Multipart,
) -> Result<Response, ApiError> {
    let (mut file, mut model, mut format) = (None, None, None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::invalid("body", format!("multipart body: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::invalid(&name, format!("reading the field: {e}")))?;
        let text = || String::from_utf8_lossy(&bytes).trim().to_string();
        match name.as_str() {
            "file" => file = Some(bytes.to_vec()),
            "model" => model = Some(text()),
            "response_format" => format = Some(text()),
            "language" | "prompt" | "temperature" => {}
            other => return Err(ApiError::invalid(other, format!("unknown field `{other}`"))),
        }
    }
    let model = model.ok_or_else(|| ApiError::invalid("model", "missing model"))?;
    let file = file.ok_or_else(|| ApiError::invalid("file", "missing file"))?;
    if file.is_empty() {
        return Err(ApiError::invalid("file", "the file is empty"));
    }
    let text_only = match format.as_deref() {
        None | Some("json") => false,
        Some("text") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "response_format",
                format!("`{other}`: use json or text"),
            ))
        }
    };
    let m = model_of_kind(&s, &model, Kind::SpeechRecognition).await?;
    let answers = run(&s, &m, vec![file], &key).await?;
    let a = &answers[0];
    if a.code != 0 {
        return Err(failure(a, "file"));
    }
    let v = output_json(a)?;
    let text = v["text"].as_str().unwrap_or_default().to_string();
    let headers = task_headers(&m, &answers);
    if text_only {
        return Ok((headers, text).into_response());
    }
    Ok((
        headers,
        Json(json!({"text": text, "deepnode": deepnode_json(a)})),
    )
        .into_response())
}

// ------------------------------------------------------------------ any kind

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskRequest {
    model: String,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    input_base64: Option<String>,
}

/// The committed output in its most useful form: JSON for the kinds' JSON, else base64.
fn output_value(a: &Answer) -> Value {
    if a.code != 0 {
        return json!({"failure": String::from_utf8_lossy(&a.output)});
    }
    match serde_json::from_slice::<Value>(&a.output) {
        Ok(v) => v,
        Err(_) => json!({"base64": base64::engine::general_purpose::STANDARD.encode(&a.output)}),
    }
}

async fn run_task(
    State(s): State<Arc<AppState>>,
    key: Key,
    body: Result<Json<TaskRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(from_json_rejection)?;
    let input = task_input(req.input, req.input_base64, "input")?;
    let m = match crate::routing::alias_kind(&req.model) {
        Some(kind) => route(&s, req.model.trim(), kind).await?,
        None => s.catalogue.resolve(&req.model).await?,
    };
    let answers = run(&s, &m, vec![input], &key).await?;
    let a = &answers[0];
    let body = json!({
        "object": "deepnode.task",
        "model": m.openai_id(),
        "kind": m.kind.map(|k| k.as_str()),
        "code": a.code,
        "output": output_value(a),
        "deepnode": deepnode_json(a),
    });
    if a.code != 0 {
        return Err(failure(a, "input"));
    }
    Ok((task_headers(&m, &answers), Json(body)).into_response())
}

// ------------------------------------------------------------------ pipelines

/// Most steps one pipeline may have.
pub const MAX_PIPELINE_STEPS: usize = 8;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineRequest {
    steps: Vec<TaskRequest>,
}

/// A step's output as text for the next steps: a kind's `text`, else its JSON.
fn step_text(output: &Value) -> String {
    match output.get("text").and_then(Value::as_str) {
        Some(t) => t.to_string(),
        None => output.to_string(),
    }
}

/// Replaces `{{previous}}` and `{{steps.N}}` in every string of `v` with earlier steps' text.
fn substitute(v: &mut Value, texts: &[String]) {
    match v {
        Value::String(s) => {
            if let Some(prev) = texts.last() {
                *s = s.replace("{{previous}}", prev);
            }
            for (i, t) in texts.iter().enumerate() {
                *s = s.replace(&format!("{{{{steps.{i}}}}}"), t);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, texts)),
        Value::Object(o) => o.values_mut().for_each(|x| substitute(x, texts)),
        _ => {}
    }
}

/// The bytes a task request submits (text as UTF-8, a JSON object as JSON, or base64 bytes).
fn task_input(
    input: Option<Value>,
    input_base64: Option<String>,
    param: &str,
) -> Result<Vec<u8>, ApiError> {
    let bytes = match (input, input_base64) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                param,
                "give input or input_base64, not both",
            ))
        }
        (Some(Value::String(text)), None) => text.into_bytes(),
        (Some(v @ (Value::Object(_) | Value::Array(_))), None) => {
            serde_json::to_vec(&v).expect("JSON")
        }
        (Some(_), None) => {
            return Err(ApiError::invalid(
                param,
                "a string (text) or a JSON object (e.g. a chat request)",
            ))
        }
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .map_err(|e| ApiError::invalid(param, format!("input_base64 is not base64: {e}")))?,
        (None, None) => return Err(ApiError::invalid(param, "missing input")),
    };
    if bytes.is_empty() {
        return Err(ApiError::invalid(param, "the input is empty"));
    }
    Ok(bytes)
}

/// Runs the steps in order, each a paid task whose input may quote earlier steps' text
/// (`{{previous}}`, `{{steps.N}}`); the first failure stops the pipeline, naming its step, and
/// the later steps are never submitted (never paid).
async fn pipeline(
    State(s): State<Arc<AppState>>,
    key: Key,
    body: Result<Json<PipelineRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(from_json_rejection)?;
    if req.steps.is_empty() || req.steps.len() > MAX_PIPELINE_STEPS {
        return Err(ApiError::invalid(
            "steps",
            format!("1 to {MAX_PIPELINE_STEPS} steps"),
        ));
    }
    let total = req.steps.len();
    let mut texts: Vec<String> = Vec::new();
    let mut done: Vec<Value> = Vec::new();
    for (i, step) in req.steps.into_iter().enumerate() {
        let paid = done.len();
        let model = step.model.clone();
        let fail = |e: ApiError| ApiError {
            message: format!(
                "step {i} ({model}) failed: {}; {} later step(s) not run and not paid{}",
                e.message,
                total - i - 1,
                if paid == 0 {
                    String::new()
                } else {
                    format!("; steps 0 to {} ran and were paid", paid - 1)
                }
            ),
            ..e
        };
        let mut input = step.input;
        if let Some(v) = input.as_mut() {
            substitute(v, &texts);
        }
        let bytes =
            task_input(input, step.input_base64, &format!("steps[{i}].input")).map_err(fail)?;
        let m = match crate::routing::alias_kind(&step.model) {
            Some(kind) => route(&s, step.model.trim(), kind).await,
            None => s.catalogue.resolve(&step.model).await,
        }
        .map_err(fail)?;
        let answers = run(&s, &m, vec![bytes], &key).await.map_err(fail)?;
        let a = &answers[0];
        if a.code != 0 {
            return Err(fail(failure(a, &format!("steps[{i}].input"))));
        }
        let out = output_value(a);
        texts.push(step_text(&out));
        done.push(json!({
            "model": m.openai_id(),
            "kind": m.kind.map(|k| k.as_str()),
            "output": out,
            "route": m.route,
            "deepnode": deepnode_json(a),
        }));
    }
    let output = done
        .last()
        .map(|d| d["output"].clone())
        .unwrap_or(Value::Null);
    Ok(
        Json(json!({"object": "deepnode.pipeline", "steps": done, "output": output}))
            .into_response(),
    )
}

async fn get_task(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let task_id: U256 = id
        .parse()
        .map_err(|_| ApiError::invalid("id", format!("`{id}` is not a task id")))?;
    let tm = protocol::bindings::ITaskManager::new(
        s.chain.deployment().task_manager,
        s.chain.provider(),
    );
    let t = tm
        .getTask(task_id)
        .call()
        .await
        .map_err(|_| ApiError::unknown_task(&id))?;
    let mut body = json!({
        "task_id": task_id.to_string(),
        "status": status::name(t.status),
        "model_id": t.modelId,
        "submitter": t.submitter.to_checksum(None),
        "worker": t.worker.to_checksum(None),
        "fee_wei": t.fee.to_string(),
        "code": t.code,
    });
    if matches!(
        t.status,
        status::COMMITTED
            | status::FAILED
            | status::FINALIZED
            | status::DISPUTED
            | status::REFUNDED
    ) {
        let from = s.chain.deployment().start_block;
        if let Ok(a) = s.chain.committed(task_id, t.worker, t.fee, from).await {
            body["output"] = output_value(&a);
            body["verified"] = json!(a.verified);
            body["commit_tx"] = json!(a.commit_tx.to_string());
        }
    }
    Ok(Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bodies refused before anything is paid or the chain is asked (the state's chain is an
    /// RPC URL nobody listens on): malformed JSON, an unknown field, no JSON content type, a body
    /// over the limit. Each is OpenAI's error object naming the part at fault.
    #[tokio::test]
    async fn bad_bodies_are_refused_before_paying() {
        use tower::ServiceExt;
        let dir = tempfile::tempdir().unwrap();
        let s = crate::streams::tests::state(dir.path());
        let call = |body: Vec<u8>, json: bool| {
            let mut req = axum::http::Request::post("/v1/chat/completions");
            if json {
                req = req.header("content-type", "application/json");
            }
            let app = router(s.clone());
            async move {
                let res = app
                    .oneshot(req.body(axum::body::Body::from(body)).unwrap())
                    .await
                    .unwrap();
                let status = res.status();
                let b = axum::body::to_bytes(res.into_body(), 1 << 20)
                    .await
                    .unwrap();
                (status, serde_json::from_slice::<Value>(&b).unwrap())
            }
        };
        let (status, v) = call(
            b"{\"model\": \"deepnode/1\", \"messages\": [".to_vec(),
            true,
        )
        .await;
        assert_eq!(status, 422, "{v}");
        assert_eq!(v["error"]["param"], "body");
        let (status, v) = call(
            br#"{"model": "deepnode/1", "messages": [], "tmperature": 0}"#.to_vec(),
            true,
        )
        .await;
        assert_eq!(status, 422, "{v}");
        assert_eq!(v["error"]["param"], "tmperature");
        let (status, v) = call(
            br#"{"model": "deepnode/1", "messages": []}"#.to_vec(),
            false,
        )
        .await;
        assert_eq!(status, 415, "{v}");
        let (status, v) = call(vec![b' '; MAX_BODY_BYTES + 1], true).await;
        assert_eq!(status, 413, "{v}");
        assert_eq!(v["error"]["param"], "body");
    }

    #[test]
    fn pipeline_placeholders_take_earlier_steps_text() {
        let texts = vec!["it is sunny".to_string(), "{\"top5\":[]}".to_string()];
        let mut v = json!({"messages": [{"role": "user", "content": "Summarize: {{previous}} / first: {{steps.0}}"}], "max_tokens": 8});
        substitute(&mut v, &texts);
        assert_eq!(
            v["messages"][0]["content"],
            "Summarize: {\"top5\":[]} / first: it is sunny"
        );
        assert_eq!(v["max_tokens"], 8);
        assert_eq!(
            step_text(&json!({"text": "hello", "token_ids": [1]})),
            "hello"
        );
        assert_eq!(step_text(&json!({"dims": 2})), "{\"dims\":2}");
    }

    #[test]
    fn task_inputs_name_what_is_wrong() {
        assert_eq!(task_input(Some(json!("hi")), None, "input").unwrap(), b"hi");
        assert_eq!(
            task_input(None, Some("aGk=".into()), "input").unwrap(),
            b"hi"
        );
        for (input, b64) in [
            (Some(json!("x")), Some("eA==".to_string())),
            (Some(json!(3)), None),
            (None, Some("%%".into())),
            (None, None),
            (Some(json!("")), None),
        ] {
            let e = task_input(input, b64, "steps[2].input").unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(e.param.as_deref(), Some("steps[2].input"));
        }
    }
}
