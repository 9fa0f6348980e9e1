//! What this verifier signed and posted, kept in its own database next to the indexed events,
//! so a restart re-uses its signature (never signs two reports for one epoch without saying so)
//! and knows where it stopped.

use crate::cosign::SignedReport;
use alloy::primitives::B256;
use chainstore::sql::Pool;
use sqlx::Row;

/// The verifier's table in its database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Creates the table when missing.
    pub async fn open(pool: &Pool) -> Result<Self, sqlx::Error> {
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
        let row: Option<String> = sqlx::query_scalar(chainstore::sql!(
            "SELECT signed FROM verifier_reports WHERE epoch = ?"
        ))
        .bind(i64_of(epoch))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// Records (or replaces) this verifier's signature of an epoch.
    pub async fn save_signed(&self, s: &SignedReport) -> Result<(), sqlx::Error> {
        let json = serde_json::to_string(s).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query(chainstore::sql!(
            "INSERT INTO verifier_reports (epoch, signed) VALUES (?, ?)
             ON CONFLICT (epoch) DO UPDATE SET signed = excluded.signed, posted_tx = NULL"
        ))
        .bind(i64_of(s.epoch))
        .bind(json)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the transaction that posted `epoch`.
    pub async fn save_posted(&self, epoch: u64, tx: B256) -> Result<(), sqlx::Error> {
        sqlx::query(chainstore::sql!(
            "UPDATE verifier_reports SET posted_tx = ? WHERE epoch = ?"
        ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, Bytes, U256};
    use chainstore::db::Db;
    use protocol::powr::EpochReport;

    fn signed(epoch: u64) -> SignedReport {
        let report = EpochReport {
            epoch,
            rewardsRoot: B256::repeat_byte(1),
            trustRoot: B256::repeat_byte(2),
            totalRewards: U256::from(5u64),
            modelStatusHash: B256::ZERO,
        };
        SignedReport {
            epoch,
            report: (&report).into(),
            digest: B256::repeat_byte(3),
            signer: Address::repeat_byte(4),
            signature: Bytes::from(vec![5; 65]),
        }
    }

    /// The verifier's own table on its database (SQLite, or PostgreSQL in `make test`'s
    /// `DN_TEST_DB=postgres` pass): a signature kept, replaced, posted, and the last epoch.
    #[tokio::test]
    async fn signatures_are_kept_replaced_and_posted() {
        let dir = tempfile::tempdir().unwrap();
        let spec = chainstore::testing::db_spec(dir.path(), "verifier.sqlite");
        let db = Db::open(&spec).await.unwrap();
        let store = Store::open(db.pool()).await.unwrap();
        assert_eq!(store.last_signed_epoch().await.unwrap(), None);
        store.save_signed(&signed(3)).await.unwrap();
        store.save_posted(3, B256::repeat_byte(9)).await.unwrap();
        store.save_signed(&signed(7)).await.unwrap();
        assert_eq!(store.signed(3).await.unwrap(), Some(signed(3)));
        assert_eq!(store.signed(5).await.unwrap(), None);
        assert_eq!(store.last_signed_epoch().await.unwrap(), Some(7));
        // signing an epoch again replaces the signature
        let mut again = signed(3);
        again.digest = B256::repeat_byte(8);
        store.save_signed(&again).await.unwrap();
        assert_eq!(store.signed(3).await.unwrap(), Some(again));
        // a reopened database keeps it all
        let store = Store::open(Db::open(&spec).await.unwrap().pool())
            .await
            .unwrap();
        assert_eq!(store.last_signed_epoch().await.unwrap(), Some(7));
    }
}
