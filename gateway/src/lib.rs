//! DeepNode's gateway for apps and agents: an OpenAI-compatible HTTP API in front of the network.
//! It pays for each call from its own wallet (`submitTasks`), waits for the worker's committed
//! answer, checks it against the committed hash, and returns it in OpenAI's shape with the
//! on-chain task id (`x-deepnode-task-id`), so any answer can be verified, rated or challenged.
//!
//! Routes: `GET /v1/models`, `GET /v1/models/{id}`, `POST /v1/audio/transcriptions`,
//! `POST /v1/chat/completions` (with
//! `stream: true` as Server-Sent Events), `POST /v1/completions`, `POST /v1/embeddings`,
//! `POST /v1/tasks` (any kind), `GET /v1/tasks/{id}`, `GET /healthz`. Errors are OpenAI's JSON
//! error object with the status a client library maps (see [`error`]).

pub mod api;
pub mod chain;
pub mod error;
pub mod keys;
pub mod models;
pub mod routing;
pub mod streams;

pub use api::{router, AppState};
