//! API keys with spending limits, kept in the gateway's own SQLite database. A key is shown once
//! when created; the database keeps only its sha256. Each call is charged its fee before it is
//! submitted (402 once the budget would be exceeded) and refunded when the submission fails;
//! each key has a per-minute request limit (429).

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
}
