//! DeepNode chain store: the library the indexer and the verifier share. It follows the
//! TaskManager, ModelRegistry, Staking, Settlement and AuditManager events of a deployment into
//! SQLite ([`follow`]: backfill, then poll; confirmation depth; reorg rollback), stores them
//! ([`db`], [`ingest`], [`audit`]) and gathers each epoch's facts for the pure epoch computation
//! `protocol::epoch::compute` ([`epochs`]). No HTTP: the indexer adds its REST API on top, the
//! verifier its audits and epoch reports.
#![warn(missing_docs)]

pub mod audit;
pub mod db;
pub mod epochs;
pub mod follow;
pub mod ingest;
pub mod sql;
#[cfg(feature = "testing")]
pub mod testing;
/// The model selection rules live in the protocol crate (every validator applies the same ones).
pub use protocol::model_selection;
