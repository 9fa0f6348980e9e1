//! The store, on SQLite or PostgreSQL ([`crate::sql`]): opening (migrations), the deployment a
//! database belongs to, the cursor, applying a block range in one transaction, and rolling back
//! past a fork point.

use crate::ingest::{self, Contracts, RawLog};
use alloy::primitives::{Address, Bytes, B256};
use protocol::Deployment;

use crate::sql::{self, Backend, DbRow, Pool};
use sqlx::any::AnyPoolOptions;
use sqlx::{Executor, Row};
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database could not be opened or created.
    #[error("--db {spec}: {reason}")]
    Open {
        /// What was passed to --db.
        spec: String,
        /// Why it failed.
        reason: String,
    },
    /// The schema migrations failed.
    #[error("--db: applying migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database was filled from another deployment.
    #[error("--db holds data of another deployment ({key} is {stored}, the deployment file says {expected}); use a fresh --db file")]
    OtherDeployment {
        /// Meta key that differs.
        key: String,
        /// Value in the database.
        stored: String,
        /// Value of the current deployment.
        expected: String,
    },
    /// A query failed.
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// This process lost the right to write the database (PostgreSQL: its writer lock's
    /// connection was dropped, so another process may write now); nothing was written.
    #[error("--db: this process no longer holds the database's writer lock; nothing written")]
    NotWriter,
}

impl DbError {
    /// Whether the database's disk (or its size limit) is full: SQLite's `SQLITE_FULL` (13),
    /// PostgreSQL's `disk_full` (53100), or an I/O error saying no space is left.
    pub fn is_disk_full(&self) -> bool {
        match self {
            DbError::Sql(sqlx::Error::Database(e)) => {
                e.code()
                    .is_some_and(|c| c == "13" || c == "SQLITE_FULL" || c == "53100")
                    || e.message().contains("disk is full")
            }
            DbError::Sql(sqlx::Error::Io(e)) => e.raw_os_error() == Some(28), // ENOSPC
            _ => false,
        }
    }
}

/// A block the indexer has seen: number, hash, time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Unix time.
    pub timestamp: u64,
}

/// The database of one deployment.
#[derive(Debug, Clone)]
pub struct Db {
    pool: Pool,
    /// PostgreSQL backend pid of this process's writer lock connection (0: none held).
    writer_pid: Arc<AtomicI64>,
}

/// TCP keepalives the PostgreSQL server sends on each of this process's connections: after 10 s
/// idle, every 5 s, 3 unanswered close it, so the server drops a vanished client's session (and
/// its writer lock) within about 25 s. Ignored on a Unix socket, which cannot vanish that way.
pub const PG_KEEPALIVES: &str =
    "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3;";

/// Key of the PostgreSQL advisory lock held by the one process that writes a database ("DNIX";
/// advisory locks are per database).
const WRITER_LOCK_KEY: i64 = 0x444E_4958;

/// The right to write a database: several indexers may serve one PostgreSQL database, and only
/// the holder of this lock follows the chain into it (the others serve what it writes). Held
/// by a connection of its own for as long as this value lives: if the process dies or the
/// connection drops, PostgreSQL releases it and another process takes over. Every range and
/// rollback is written only after checking, in its transaction, that this connection still
/// holds it. SQLite files have one writing process by design: the lock is always granted.
#[derive(Debug)]
pub struct WriterLock {
    // in a Mutex only to be `Sync` (a connection is not); never locked
    _conn: Option<std::sync::Mutex<sqlx::AnyConnection>>,
    writer_pid: Arc<AtomicI64>,
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        self.writer_pid.store(0, Ordering::Relaxed);
    }
}

/// The last indexed block of `chain_id` (None before the first range), read through `e`: a
/// transaction that also reads rows sees the cursor that names them (every range stored and every
/// rollback moves the cursor in the same transaction as the rows).
pub async fn read_cursor<'e, E: Executor<'e, Database = sqlx::Any>>(
    e: E,
    chain_id: u64,
) -> Result<Option<BlockRef>, DbError> {
    let row = sqlx::query(crate::sql!(
        "SELECT block_number, block_hash, updated_at FROM cursor WHERE chain_id = ?"
    ))
    .bind(i64_of(chain_id))
    .fetch_optional(e)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let hash: String = row.try_get("block_hash")?;
    Ok(Some(BlockRef {
        number: u64_of(row.try_get("block_number")?),
        hash: hash.parse().unwrap_or_default(),
        timestamp: u64_of(row.try_get("updated_at")?),
    }))
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Db {
    /// Opens (creating if missing) the database at `spec`: a file path or a `sqlite://` URL
    /// (SQLite), or a `postgres://` URL (PostgreSQL; the database must exist). Applies the
    /// migrations.
    pub async fn open(spec: &str) -> Result<Db, DbError> {
        let open_err = |reason: String| DbError::Open {
            spec: redacted(spec),
            reason,
        };
        sqlx::any::install_default_drivers();
        if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
            // One plain connection first: a wrong URL, password or an unreachable server fails
            // now, once, rather than after the pool's retries until its acquire timeout.
            {
                use sqlx::Connection;
                let conn = sqlx::AnyConnection::connect(spec)
                    .await
                    .map_err(|e| open_err(e.to_string()))?;
                let _ = conn.close().await;
            }
            // A server serves many clients: a pool of 16 per process, pinged before it is lent
            // (a server restart drops connections).
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(30))
                // The server probes each idle connection (`PG_KEEPALIVES`): a writer whose host
                // vanishes without closing its socket (power loss, a partition) would otherwise
                // hold the writer lock until the server's TCP stack gave up on it, two hours
                // with Linux's defaults, and no other indexer could take over until then.
                .after_connect(|conn, _| {
                    Box::pin(async move { conn.execute(PG_KEEPALIVES).await.map(|_| ()) })
                })
                .connect(spec)
                .await
                .map_err(|e| open_err(e.to_string()))?;
            // Several processes may open one database at once (one follows, others serve):
            // the migrator takes PostgreSQL's advisory lock, so they migrate one at a time.
            sqlx::migrate!("./migrations-pg").run(&pool).await?;
            return Db::checked_writable(pool, spec).await;
        }
        let url = if spec.starts_with("sqlite:") {
            spec.to_string()
        } else {
            let path = std::path::Path::new(spec);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if !dir.is_dir() {
                    return Err(open_err(format!(
                        "directory {} does not exist",
                        dir.display()
                    )));
                }
            }
            format!("sqlite://{}?mode=rwc", url_path(spec))
        };
        // WAL with synchronous=NORMAL: a commit is not fsynced (the WAL is, before each
        // checkpoint), so a crash of the process loses nothing, and a power loss or OS crash may
        // roll back the last ranges committed, never corrupt the file. Safe for a follower: a
        // range's rows and its cursor are written in one transaction (`index_range`), so what
        // survives is consistent and the follower reads the chain again from the cursor that
        // survived.
        //
        // Readers do not wait on the writer (WAL), and each connection runs its statements on a
        // thread of its own: 8 rather than 4 served 5-40% more `GET /nodes/{addr}` per second
        // on the bench's 2 cores (`make bench`, four alternating pairs of runs), for at most
        // 2 MB of page cache each.
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            // sqlx pings a connection before lending it by default: a round trip to the
            // connection's worker thread per query, for a file that does not go away the way a
            // network peer does
            .test_before_acquire(false)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                    )
                    .await
                    .map(|_| ())
                })
            })
            .connect(&url)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Db::checked_writable(pool, spec).await
    }

    /// Proves the database is writable now rather than at the first block.
    async fn checked_writable(pool: Pool, spec: &str) -> Result<Db, DbError> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('schema', '1') ON CONFLICT (key) DO NOTHING",
        )
        .execute(&pool)
        .await
        .map_err(|e| DbError::Open {
            spec: redacted(spec),
            reason: format!("not writable: {e}"),
        })?;
        Ok(Db {
            pool,
            writer_pid: Arc::default(),
        })
    }

    /// Takes the [`WriterLock`] if no other process holds it (None: another one does).
    pub async fn try_writer_lock(&self) -> Result<Option<WriterLock>, DbError> {
        if self.backend() == Backend::Sqlite {
            return Ok(Some(WriterLock {
                _conn: None,
                writer_pid: Arc::default(),
            }));
        }
        // a connection of its own, out of the pool: the lock lives as long as it does
        let mut conn = self.pool.acquire().await?.detach();
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(WRITER_LOCK_KEY)
            .fetch_one(&mut conn)
            .await?;
        if !got {
            use sqlx::Connection;
            let _ = conn.close().await;
            return Ok(None);
        }
        let pid: i64 = sqlx::query_scalar("SELECT CAST(pg_backend_pid() AS BIGINT)")
            .fetch_one(&mut conn)
            .await?;
        self.writer_pid.store(pid, Ordering::Relaxed);
        Ok(Some(WriterLock {
            _conn: Some(std::sync::Mutex::new(conn)),
            writer_pid: self.writer_pid.clone(),
        }))
    }

    /// In a write transaction: refuses it when this process took the writer lock and no longer
    /// holds it (a process that never took it, a tool or a test, writes unchecked).
    async fn check_writer(&self, tx: &mut sql::Conn) -> Result<(), DbError> {
        let pid = self.writer_pid.load(Ordering::Relaxed);
        if pid == 0 || self.backend() == Backend::Sqlite {
            return Ok(());
        }
        let held: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
                 AND pid = $1 AND classid::bigint = 0 AND objid::bigint = $2",
        )
        .bind(pid)
        .bind(WRITER_LOCK_KEY)
        .fetch_one(&mut *tx)
        .await?;
        if held == 0 {
            return Err(DbError::NotWriter);
        }
        Ok(())
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        Backend::of_pool(&self.pool)
    }

    /// The connection pool (read queries of the REST API).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Records which deployment this database indexes, or checks it matches the recorded one.
    pub async fn bind_deployment(&self, d: &Deployment) -> Result<(), DbError> {
        let expected = [
            ("chain_id", d.chain_id.to_string()),
            ("task_manager", d.task_manager.to_checksum(None)),
            ("model_registry", d.model_registry.to_checksum(None)),
            ("staking", d.staking.to_checksum(None)),
            ("settlement", d.settlement.to_checksum(None)),
            ("start_block", d.start_block.to_string()),
            ("audit_manager", d.audit_manager.to_checksum(None)),
        ];
        // A probe registry is recorded once a deployment names one (files written before it
        // have none): a database that followed the chain without it indexes it again.
        let probe_registry = (d.probe_registry != Address::ZERO)
            .then(|| ("probe_registry", d.probe_registry.to_checksum(None)));
        let mut tx = self.pool.begin().await?;
        let mut added_audit_manager = false;
        let mut added_probe_registry = false;
        for (key, value) in expected.into_iter().chain(probe_registry) {
            let stored: Option<String> =
                sqlx::query_scalar(crate::sql!("SELECT value FROM meta WHERE key = ?"))
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
            match stored {
                Some(stored) if stored != value => {
                    return Err(DbError::OtherDeployment {
                        key: key.into(),
                        stored,
                        expected: value,
                    })
                }
                Some(_) => {}
                None => {
                    added_audit_manager |= key == "audit_manager";
                    added_probe_registry |= key == "probe_registry";
                    sqlx::query(crate::sql!("INSERT INTO meta (key, value) VALUES (?, ?)"))
                        .bind(key)
                        .bind(&value)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        // A database filled before the indexer followed the AuditManager (or the probe
        // registry) lacks its logs (and decoded TaskHeld / TaskReleased as unknown): index it
        // again from the start block.
        let added_audit_manager = added_audit_manager && d.audit_manager != Address::ZERO;
        if (added_audit_manager || added_probe_registry) && self.cursor(d.chain_id).await?.is_some()
        {
            tracing::warn!(
                audit_manager = %d.audit_manager,
                probe_registry = %d.probe_registry,
                "database indexed without the AuditManager or the ProbeRegistry; re-indexing from the start block"
            );
            self.rollback_to(d.chain_id, &Contracts::of(d), None)
                .await?;
        }
        Ok(())
    }

    /// Chain id recorded by [`Db::bind_deployment`].
    pub async fn chain_id(&self) -> Result<Option<u64>, DbError> {
        let v: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'chain_id'")
            .fetch_optional(&self.pool)
            .await?;
        Ok(v.and_then(|v| v.parse().ok()))
    }

    /// Last indexed block of `chain_id`, if any.
    pub async fn cursor(&self, chain_id: u64) -> Result<Option<BlockRef>, DbError> {
        read_cursor(&self.pool, chain_id).await
    }

    /// Stores the logs of a block range, the hashes of its blocks and the new cursor, all in one
    /// transaction: a crash leaves either the whole range or none of it. Logs already stored are
    /// skipped. Returns the names of the newly stored events.
    pub async fn index_range(
        &self,
        chain_id: u64,
        contracts: &Contracts,
        logs: &[RawLog],
        blocks: &[BlockRef],
        cursor: BlockRef,
    ) -> Result<Vec<&'static str>, DbError> {
        let mut tx = self.pool.begin().await?;
        self.check_writer(&mut tx).await?;
        let names = ingest::ingest_all(&mut tx, contracts, logs).await?;
        // a block listed twice: the later one stands (as with a statement per block; one
        // PostgreSQL statement may not upsert a row twice)
        let blocks: Vec<BlockRef> = blocks
            .iter()
            .copied()
            .chain([cursor])
            .map(|b| (b.number, b))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_values()
            .collect();
        ingest::insert_rows(
            &mut tx,
            "INSERT INTO blocks (number, hash, timestamp) ",
            " ON CONFLICT (number) DO UPDATE SET hash = excluded.hash, timestamp = excluded.timestamp",
            &blocks,
            |mut row, b| {
                row.push_bind(i64_of(b.number))
                    .push_bind(b.hash.to_string())
                    .push_bind(i64_of(b.timestamp));
            },
        )
        .await?;
        sqlx::query(
            crate::sql!("INSERT INTO cursor (chain_id, block_number, block_hash, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (chain_id) DO UPDATE SET block_number = excluded.block_number,
                 block_hash = excluded.block_hash, updated_at = excluded.updated_at"),
        )
        .bind(i64_of(chain_id))
        .bind(i64_of(cursor.number))
        .bind(cursor.hash.to_string())
        .bind(i64_of(cursor.timestamp))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(names)
    }

    /// Known block hashes at or below `below`, newest first (to find a fork point).
    pub async fn known_blocks(&self, below: u64, limit: u32) -> Result<Vec<BlockRef>, DbError> {
        let rows = sqlx::query(crate::sql!("SELECT number, hash, timestamp FROM blocks WHERE number <= ? ORDER BY number DESC LIMIT ?"))
            .bind(i64_of(below))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let hash: String = r.try_get("hash")?;
                Ok(BlockRef {
                    number: u64_of(r.try_get("number")?),
                    hash: hash.parse().unwrap_or_default(),
                    timestamp: u64_of(r.try_get("timestamp")?),
                })
            })
            .collect()
    }

    /// Forgets everything after `fork` (or everything, for `None`) and rebuilds the derived
    /// tables by replaying the remaining events, in one transaction. The cursor moves to `fork`.
    /// Returns how many events were dropped.
    pub async fn rollback_to(
        &self,
        chain_id: u64,
        contracts: &Contracts,
        fork: Option<BlockRef>,
    ) -> Result<u64, DbError> {
        let keep_through = fork.map(|f| i64_of(f.number)).unwrap_or(-1);
        let mut tx = self.pool.begin().await?;
        self.check_writer(&mut tx).await?;
        let dropped = sqlx::query(crate::sql!("DELETE FROM events WHERE block_number > ?"))
            .bind(keep_through)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(crate::sql!("DELETE FROM blocks WHERE number > ?"))
            .bind(keep_through)
            .execute(&mut *tx)
            .await?;
        for table in ingest::DERIVED_TABLES {
            sqlx::query(&crate::sql::numbered(&format!("DELETE FROM {table}")))
                .execute(&mut *tx)
                .await?;
        }
        let rows = sqlx::query(
            "SELECT block_number, log_index, tx_hash, block_time, address, topics, data FROM events
             ORDER BY block_number, log_index",
        )
        .fetch_all(&mut *tx)
        .await?;
        let logs = rows.iter().map(raw_log_of).collect::<Result<Vec<_>, _>>()?;
        let events: Vec<_> = logs.iter().map(|l| ingest::decode(contracts, l)).collect();
        let items: Vec<_> = logs.iter().zip(&events).collect();
        ingest::apply_all(&mut tx, &items).await?;
        // Computed epochs whose facts reach past the fork point, and every later one (trust
        // chains from epoch to epoch), are recomputed from the replayed facts.
        let first_stale =
            crate::epochs::first_stale_epoch(&mut tx, fork.map(|f| f.timestamp)).await?;
        if let Some(first) = first_stale {
            crate::epochs::delete_from(&mut tx, first).await?;
            tracing::warn!(
                epoch = first,
                "reorg reached into computed epochs; recomputing from here"
            );
        }
        match fork {
            Some(f) => {
                sqlx::query(crate::sql!("UPDATE cursor SET block_number = ?, block_hash = ?, updated_at = ? WHERE chain_id = ?"))
                    .bind(i64_of(f.number))
                    .bind(f.hash.to_string())
                    .bind(i64_of(f.timestamp))
                    .bind(i64_of(chain_id))
                    .execute(&mut *tx)
                    .await?;
            }
            None => {
                sqlx::query(crate::sql!("DELETE FROM cursor WHERE chain_id = ?"))
                    .bind(i64_of(chain_id))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(dropped)
    }
}

/// `spec` without the password of a `postgres://user:password@host/db` URL (errors are logged).
pub fn redacted(spec: &str) -> String {
    let Some((scheme, rest)) = spec.split_once("://") else {
        return spec.to_string();
    };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{name}:***@{host}")
        }
        _ => spec.to_string(),
    }
}

/// A file path as the path of an `sqlite://` URL: the characters a URL gives a meaning to are
/// percent-encoded (sqlx decodes them).
fn url_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

fn raw_log_of(r: &DbRow) -> Result<RawLog, sqlx::Error> {
    let bad =
        |what: &str, e: String| sqlx::Error::Decode(format!("stored event {what}: {e}").into());
    let tx_hash: String = r.try_get("tx_hash")?;
    let address: String = r.try_get("address")?;
    let topics: String = r.try_get("topics")?;
    let topics: Vec<String> =
        serde_json::from_str(&topics).map_err(|e| bad("topics", e.to_string()))?;
    let data: Vec<u8> = r.try_get("data")?;
    Ok(RawLog {
        block_number: u64_of(r.try_get("block_number")?),
        log_index: u64_of(r.try_get("log_index")?),
        tx_hash: tx_hash
            .parse()
            .map_err(|e: alloy::hex::FromHexError| bad("tx_hash", e.to_string()))?,
        block_time: u64_of(r.try_get("block_time")?),
        address: Address::from_str(&address).map_err(|e| bad("address", e.to_string()))?,
        topics: topics
            .iter()
            .map(|t| t.parse::<B256>().map_err(|e| bad("topic", e.to_string())))
            .collect::<Result<_, _>>()?,
        data: Bytes::from(data),
    })
}

#[cfg(test)]
mod spec_tests {
    use super::{redacted, url_path};

    #[test]
    fn a_password_never_reaches_a_message() {
        assert_eq!(
            redacted("postgres://dn:s3cret@db.example:5432/deepnode"),
            "postgres://dn:***@db.example:5432/deepnode"
        );
        assert_eq!(
            redacted("postgres://dn@127.0.0.1/deepnode"),
            "postgres://dn@127.0.0.1/deepnode"
        );
        assert_eq!(redacted("data/indexer.sqlite"), "data/indexer.sqlite");
    }

    #[test]
    fn file_names_survive_the_sqlite_url() {
        assert_eq!(url_path("a b/c?d#e%f.sqlite"), "a b/c%3Fd%23e%25f.sqlite");
    }
}

#[cfg(test)]
mod disk_full_tests {
    use super::DbError;

    /// A real SQLite out of room (its page limit reached, as a full disk would) is recognised;
    /// another failure is not.
    #[tokio::test]
    async fn a_full_database_is_told_apart_from_other_failures() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("CREATE TABLE t (b BLOB)")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query("PRAGMA max_page_count = 8")
            .execute(&mut *conn)
            .await
            .unwrap();
        let mut full = None;
        for _ in 0..64 {
            if let Err(e) = sqlx::query("INSERT INTO t VALUES (zeroblob(4096))")
                .execute(&mut *conn)
                .await
            {
                full = Some(DbError::Sql(e));
                break;
            }
        }
        let full = full.expect("8 pages fill up");
        assert!(full.is_disk_full(), "{full}");
        let other = sqlx::query("INSERT INTO missing VALUES (1)")
            .execute(&mut *conn)
            .await
            .unwrap_err();
        assert!(!DbError::Sql(other).is_disk_full());
    }
}
