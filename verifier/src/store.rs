//! What this verifier signed and posted, kept in its own database next to the indexed events,
//! so a restart re-uses its signature (never signs two reports for one epoch without saying so)
//! and knows where it stopped.

use crate::cosign::SignedReport;
use alloy::primitives::B256;
use sqlx::{Row, SqlitePool};

/// The verifier's table in its database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Creates the table when missing.
    pub async fn open(pool: &SqlitePool) -> Result<Self, sqlx::Error> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS verifier_reports (
                epoch INTEGER PRIMARY KEY,
                signed TEXT NOT NULL,
                posted_tx TEXT
            )",
        )
        .execute(pool)
        .await?;
        Ok(Self { pool: pool.clone() })
    }

    /// This verifier's signature of `epoch`, if it signed one.
    pub async fn signed(&self, epoch: u64) -> Result<Option<SignedReport>, sqlx::Error> {
        let row: Option<String> =
            sqlx::query_scalar("SELECT signed FROM verifier_reports WHERE epoch = ?")
                .bind(i64_of(epoch))
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// Records (or replaces) this verifier's signature of an epoch.
    pub async fn save_signed(&self, s: &SignedReport) -> Result<(), sqlx::Error> {
        let json = serde_json::to_string(s).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query(
            "INSERT INTO verifier_reports (epoch, signed) VALUES (?, ?)
             ON CONFLICT (epoch) DO UPDATE SET signed = excluded.signed, posted_tx = NULL",
        )
        .bind(i64_of(s.epoch))
        .bind(json)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the transaction that posted `epoch`.
    pub async fn save_posted(&self, epoch: u64, tx: B256) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE verifier_reports SET posted_tx = ? WHERE epoch = ?")
            .bind(tx.to_string())
            .bind(i64_of(epoch))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The highest epoch this verifier signed.
    pub async fn last_signed_epoch(&self) -> Result<Option<u64>, sqlx::Error> {
        let row = sqlx::query("SELECT MAX(epoch) AS e FROM verifier_reports")
            .fetch_one(&self.pool)
            .await?;
        let e: Option<i64> = row.try_get("e")?;
        Ok(e.and_then(|e| u64::try_from(e).ok()))
    }
}
