//! Event lookups shared by the services.

use crate::bindings::ITaskManager;
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;

/// Largest block range of one eth_getLogs request these lookups make.
pub const LOG_CHUNK: u64 = 2_000;

/// The input of a task from its TaskSubmitted event: first in `hint_block` (submission and
/// assignment share a transaction), then backwards in ranges of [`LOG_CHUNK`] blocks down to
/// `floor` (the deployment's start block). `None` when no such event exists.
pub async fn task_input(
    provider: &DynProvider,
    task_manager: Address,
    floor: u64,
    task_id: U256,
    hint_block: u64,
) -> Result<Option<Bytes>, alloy::transports::TransportError> {
    let mut ranges = vec![(hint_block, hint_block)];
    let mut end = hint_block;
    while end > floor {
        let to = end - 1;
        let from = to.saturating_sub(LOG_CHUNK - 1).max(floor);
        ranges.push((from, to));
        end = from;
    }
    for (from, to) in ranges {
        let filter = Filter::new()
            .address(task_manager)
            .event_signature(ITaskManager::TaskSubmitted::SIGNATURE_HASH)
            .topic1(B256::from(task_id))
            .from_block(from)
            .to_block(to);
        for log in provider.get_logs(&filter).await? {
            if let Ok(ev) = log.log_decode::<ITaskManager::TaskSubmitted>() {
                if ev.inner.data.taskId == task_id {
                    return Ok(Some(ev.inner.data.input.clone()));
                }
            }
        }
    }
    Ok(None)
}
