//! API keys with spending limits, kept in the gateway's own SQLite database. A key is shown once
//! when created; the database keeps only its sha256. Each call is charged its fee before it is
//! submitted (402 once the budget would be exceeded) and refunded when the submission fails;
//! each key has a per-minute request limit (429). Every submitted task charged to a key is kept
//! in a ledger until it settles on-chain; what the chain refunds (a worker-side failure, a missed
//! deadline, a fraud, the 90% of an input fault) is credited back to the key ([`reconcile`]).

use crate::error::ApiError;
use alloy::primitives::U256;
use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Row;
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One key as stored (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    /// Row id.
    pub id: i64,
    /// Its owner's label.
    pub name: String,
    /// Most it may spend, wei of DN.
    pub budget_wei: String,
    /// Spent so far, wei of DN.
    pub spent_wei: String,
    /// Requests per minute (0: no limit).
    pub rate_per_minute: u32,
    /// Revoked keys are refused.
    pub revoked: bool,
}

/// The key store.
pub struct Keys {
    pool: SqlitePool,
    /// Serializes charges (read, compare, write) within this process.
    charge_lock: tokio::sync::Mutex<()>,
    /// Fixed one-minute windows: key id -> (window start, requests in it).
    windows: Mutex<HashMap<i64, (Instant, u32)>>,
}

fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn wei(s: &str) -> U256 {
    U256::from_str(s).unwrap_or(U256::MAX)
}

impl Keys {
    /// Opens (creating) the database at `path`.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(|e| anyhow::anyhow!("keys database {}: {e}", path.display()))?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS api_keys (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL UNIQUE,
                key_sha256 TEXT NOT NULL UNIQUE,
                budget_wei TEXT NOT NULL,
                spent_wei TEXT NOT NULL DEFAULT '0',
                rate_per_minute INTEGER NOT NULL DEFAULT 0,
                revoked INTEGER NOT NULL DEFAULT 0
            )",
        )
        .execute(&pool)
        .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS charges (
                task_id TEXT PRIMARY KEY,
                key_id INTEGER NOT NULL,
                fee_wei TEXT NOT NULL,
                block INTEGER NOT NULL,
                settled INTEGER NOT NULL DEFAULT 0,
                refund_wei TEXT
            )",
        )
        .execute(&pool)
        .await?;
        sqlx::query("CREATE INDEX IF NOT EXISTS charges_open ON charges (settled, task_id)")
            .execute(&pool)
            .await?;
        Ok(Self {
            pool,
            charge_lock: tokio::sync::Mutex::new(()),
            windows: Mutex::new(HashMap::new()),
        })
    }

    /// Creates a key named `name`; returns the key (shown once: only its hash is kept).
    pub async fn create(
        &self,
        name: &str,
        budget_wei: U256,
        rate_per_minute: u32,
    ) -> anyhow::Result<String> {
        anyhow::ensure!(!name.trim().is_empty(), "--name is empty");
        let mut raw = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
        let key = format!("dn-{}", hex::encode(raw));
        sqlx::query(
            "INSERT INTO api_keys (name, key_sha256, budget_wei, rate_per_minute) VALUES (?, ?, ?, ?)",
        )
        .bind(name)
        .bind(hash(&key))
        .bind(budget_wei.to_string())
        .bind(i64::from(rate_per_minute))
        .execute(&self.pool)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                anyhow::anyhow!("a key named `{name}` exists already")
            }
            e => e.into(),
        })?;
        Ok(key)
    }

    /// Every key.
    pub async fn list(&self) -> anyhow::Result<Vec<KeyInfo>> {
        let rows = sqlx::query(
            "SELECT id, name, budget_wei, spent_wei, rate_per_minute, revoked FROM api_keys ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(row_info).collect::<Result<Vec<_>, _>>()?)
    }

    /// Revokes the key named `name`; false when there is none.
    pub async fn revoke(&self, name: &str) -> anyhow::Result<bool> {
        let r = sqlx::query("UPDATE api_keys SET revoked = 1 WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// The key behind an `Authorization` header value (401 when missing, unknown or revoked;
    /// 429 past its per-minute limit).
    pub async fn authorize(&self, header: Option<&str>) -> Result<KeyInfo, ApiError> {
        let unauthorized = |msg: &str| ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: msg.to_string(),
            param: None,
            code: "invalid_api_key",
            task_id: None,
        };
        let key = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| unauthorized("missing API key (Authorization: Bearer <key>)"))?;
        let row = sqlx::query(
            "SELECT id, name, budget_wei, spent_wei, rate_per_minute, revoked FROM api_keys WHERE key_sha256 = ?",
        )
        .bind(hash(key))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| ApiError::internal(format!("keys database: {e}")))?;
        let info = row
            .as_ref()
            .map(row_info)
            .transpose()
            .map_err(|e| ApiError::internal(format!("keys database: {e}")))?
            .ok_or_else(|| unauthorized("unknown API key"))?;
        if info.revoked {
            return Err(unauthorized("this API key was revoked"));
        }
        self.count_request(&info)?;
        Ok(info)
    }

    fn count_request(&self, info: &KeyInfo) -> Result<(), ApiError> {
        if info.rate_per_minute == 0 {
            return Ok(());
        }
        let mut w = self
            .windows
            .lock()
            .map_err(|_| ApiError::internal("rate limiter poisoned"))?;
        let now = Instant::now();
        let entry = w.entry(info.id).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        if entry.1 >= info.rate_per_minute {
            let wait = 60 - now.duration_since(entry.0).as_secs().min(59);
            return Err(ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: format!(
                    "API key `{}` is limited to {} requests per minute; retry in {wait} s",
                    info.name, info.rate_per_minute
                ),
                param: None,
                code: "rate_limit_exceeded",
                task_id: None,
            });
        }
        entry.1 += 1;
        Ok(())
    }

    /// Charges `amount` to key `id` (402 when it would pass the budget).
    pub async fn charge(&self, id: i64, amount: U256) -> Result<(), ApiError> {
        let _turn = self.charge_lock.lock().await;
        let row = sqlx::query("SELECT name, budget_wei, spent_wei FROM api_keys WHERE id = ?")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| ApiError::internal(format!("keys database: {e}")))?;
        let name: String = row.get("name");
        let budget = wei(&row.get::<String, _>("budget_wei"));
        let spent = wei(&row.get::<String, _>("spent_wei"));
        let after = spent.saturating_add(amount);
        if after > budget {
            return Err(ApiError::payment(format!(
                "API key `{name}` has {} wei of DN left of its budget; this call costs {amount}",
                budget.saturating_sub(spent)
            )));
        }
        sqlx::query("UPDATE api_keys SET spent_wei = ? WHERE id = ?")
            .bind(after.to_string())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| ApiError::internal(format!("keys database: {e}")))?;
        Ok(())
    }

    /// Gives back a charge whose submission failed.
    pub async fn refund(&self, id: i64, amount: U256) {
        let _turn = self.charge_lock.lock().await;
        let Ok(row) = sqlx::query("SELECT spent_wei FROM api_keys WHERE id = ?")
            .bind(id)
            .fetch_one(&self.pool)
            .await
        else {
            return;
        };
        let spent = wei(&row.get::<String, _>("spent_wei")).saturating_sub(amount);
        let _ = sqlx::query("UPDATE api_keys SET spent_wei = ? WHERE id = ?")
            .bind(spent.to_string())
            .bind(id)
            .execute(&self.pool)
            .await;
    }
}

/// A task charged to a key and not settled yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCharge {
    /// The task.
    pub task_id: U256,
    /// The key it was charged to.
    pub key_id: i64,
    /// What was charged.
    pub fee: U256,
    /// Block it was submitted in (where its events start).
    pub block: u64,
}

impl Keys {
    /// Records that `tasks`, submitted in `block`, were charged `fee` each to key `key_id`.
    pub async fn record(&self, key_id: i64, tasks: &[U256], fee: U256, block: u64) {
        for t in tasks {
            let r = sqlx::query(
                "INSERT OR IGNORE INTO charges (task_id, key_id, fee_wei, block) VALUES (?, ?, ?, ?)",
            )
            .bind(t.to_string())
            .bind(key_id)
            .bind(fee.to_string())
            .bind(i64::try_from(block).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await;
            if let Err(e) = r {
                tracing::warn!(task = %t, error = %e, "keys database: charge not recorded (its refund, if any, will not be credited)");
            }
        }
    }

    /// Up to `limit` unsettled charges, oldest first.
    pub async fn open_charges(&self, limit: u32) -> anyhow::Result<Vec<OpenCharge>> {
        let rows = sqlx::query(
            "SELECT task_id, key_id, fee_wei, block FROM charges WHERE settled = 0 ORDER BY rowid LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(OpenCharge {
                    task_id: U256::from_str(&r.get::<String, _>("task_id")).ok()?,
                    key_id: r.get("key_id"),
                    fee: wei(&r.get::<String, _>("fee_wei")),
                    block: u64::try_from(r.get::<i64, _>("block")).unwrap_or(0),
                })
            })
            .collect())
    }

    /// Settles a charge: credits `refund` (at most the fee charged) back to its key, once.
    /// Returns whether this call settled it.
    pub async fn settle(&self, c: &OpenCharge, refund: U256) -> anyhow::Result<bool> {
        let _turn = self.charge_lock.lock().await;
        let refund = refund.min(c.fee);
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE charges SET settled = 1, refund_wei = ? WHERE task_id = ? AND settled = 0",
        )
        .bind(refund.to_string())
        .bind(c.task_id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if done && !refund.is_zero() {
            let spent: String = sqlx::query("SELECT spent_wei FROM api_keys WHERE id = ?")
                .bind(c.key_id)
                .fetch_one(&mut *tx)
                .await?
                .get("spent_wei");
            sqlx::query("UPDATE api_keys SET spent_wei = ? WHERE id = ?")
                .bind(wei(&spent).saturating_sub(refund).to_string())
                .bind(c.key_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(done)
    }
}

/// Credits on-chain refunds back to the keys that paid, every `every`, forever: each unsettled
/// charge whose task is finalized or refunded is settled with the refund the chain paid the
/// gateway for it.
pub async fn reconcile(state: std::sync::Arc<crate::AppState>, every: Duration) {
    let Some(keys) = state.keys.as_ref() else {
        return;
    };
    loop {
        tokio::time::sleep(every).await;
        let open = match keys.open_charges(256).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "keys database: reading open charges");
                continue;
            }
        };
        for c in open {
            match state.chain.refund_of(c.task_id, c.block).await {
                Ok(Some(refund)) => match keys.settle(&c, refund).await {
                    Ok(true) if !refund.is_zero() => {
                        tracing::info!(task = %c.task_id, key = c.key_id, refund = %refund, "on-chain refund credited back to the API key")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(task = %c.task_id, error = %e, "keys database: settling a charge")
                    }
                },
                Ok(None) => {}
                Err(e) => tracing::debug!(task = %c.task_id, error = %e, "refund not known yet"),
            }
        }
    }
}

fn row_info(r: &sqlx::sqlite::SqliteRow) -> Result<KeyInfo, sqlx::Error> {
    Ok(KeyInfo {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        budget_wei: r.try_get("budget_wei")?,
        spent_wei: r.try_get("spent_wei")?,
        rate_per_minute: u32::try_from(r.try_get::<i64, _>("rate_per_minute")?).unwrap_or(0),
        revoked: r.try_get::<i64, _>("revoked")? != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_authorize_charge_limit_and_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::open(&dir.path().join("keys.sqlite")).await.unwrap();
        let key = keys.create("app", U256::from(25u64), 3).await.unwrap();
        assert!(key.starts_with("dn-") && key.len() == 67);
        let dup = keys.create("app", U256::from(1u64), 0).await.unwrap_err();
        assert!(dup.to_string().contains("exists already"), "{dup}");

        // 401: missing, malformed, unknown
        for h in [
            None,
            Some("Basic abc"),
            Some("Bearer "),
            Some("Bearer dn-nope"),
        ] {
            let e = keys.authorize(h).await.unwrap_err();
            assert_eq!(e.status, StatusCode::UNAUTHORIZED, "{h:?}");
        }
        let bearer = format!("Bearer {key}");
        let info = keys.authorize(Some(&bearer)).await.unwrap();
        assert_eq!(info.name, "app");

        // 402: charges up to the budget, not past it; a refund gives room back
        keys.charge(info.id, U256::from(10u64)).await.unwrap();
        keys.charge(info.id, U256::from(10u64)).await.unwrap();
        let e = keys.charge(info.id, U256::from(10u64)).await.unwrap_err();
        assert_eq!(e.status, StatusCode::PAYMENT_REQUIRED);
        assert!(e.message.contains("5 wei"), "{}", e.message);
        keys.refund(info.id, U256::from(10u64)).await;
        keys.charge(info.id, U256::from(15u64)).await.unwrap();
        assert_eq!(keys.list().await.unwrap()[0].spent_wei, "25");

        // 429: the fourth request of the minute (three per minute)
        keys.authorize(Some(&bearer)).await.unwrap();
        keys.authorize(Some(&bearer)).await.unwrap();
        let e = keys.authorize(Some(&bearer)).await.unwrap_err();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);

        // revoked: 401 (the key store never held the key itself)
        assert!(keys.revoke("app").await.unwrap());
        assert!(!keys.revoke("other").await.unwrap());
        let e = keys.authorize(Some(&bearer)).await.unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        assert!(e.message.contains("revoked"));
        let raw = std::fs::read(dir.path().join("keys.sqlite")).unwrap();
        assert!(!raw.windows(key.len()).any(|w| w == key.as_bytes()));
    }

    #[tokio::test]
    async fn on_chain_refunds_are_credited_back_once_and_never_above_the_charge() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::open(&dir.path().join("keys.sqlite")).await.unwrap();
        keys.create("app", U256::from(100u64), 0).await.unwrap();
        let id = keys.list().await.unwrap()[0].id;
        keys.charge(id, U256::from(30u64)).await.unwrap();
        let tasks = [U256::from(7u64), U256::from(8u64), U256::from(9u64)];
        keys.record(id, &tasks, U256::from(10u64), 42).await;
        keys.record(id, &tasks[..1], U256::from(10u64), 42).await; // idempotent
        let open = keys.open_charges(10).await.unwrap();
        assert_eq!(open.len(), 3);
        assert_eq!(open[0].block, 42);
        assert_eq!(open[0].fee, U256::from(10u64));
        // a fully refunded task, an input fault (90%), a paid one
        assert!(keys.settle(&open[0], U256::from(10u64)).await.unwrap());
        assert!(keys.settle(&open[1], U256::from(9u64)).await.unwrap());
        assert!(keys.settle(&open[2], U256::ZERO).await.unwrap());
        assert_eq!(keys.list().await.unwrap()[0].spent_wei, "11");
        // settled once: a second settlement credits nothing
        assert!(!keys.settle(&open[0], U256::from(10u64)).await.unwrap());
        assert!(keys.open_charges(10).await.unwrap().is_empty());
        // a refund above the charge is capped at the charge
        keys.record(id, &[U256::from(10u64)], U256::from(1u64), 43)
            .await;
        let open = keys.open_charges(10).await.unwrap();
        keys.settle(&open[0], U256::from(1000u64)).await.unwrap();
        assert_eq!(keys.list().await.unwrap()[0].spent_wei, "10");
    }
}
