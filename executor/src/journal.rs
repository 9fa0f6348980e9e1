//! The executor's crash-safety core: an append-only JSON-lines journal, fsynced after every
//! record, replayed on start so a crash or restart neither loses a task nor commits one twice.
//!
//! Records (one JSON object per line, externally tagged):
//! `{"computed":{"task_id","model_id","output_hash","code","output_hex"}}` a result (or failure
//! message) is ready; `{"submitted":{"task_ids","tx_hash"}}` a signed commit transaction is about
//! to be / was broadcast; `{"committed":{"task_ids","block"}}` the commit is on-chain (or the chain
//! already showed the task settled); `{"skipped":{"task_ids","reason"}}` the task will not be
//! committed (deadline passed, reassigned); `{"requeued":{"task_ids"}}` the chain expects them
//! from us again (commit reverted, dropped or reorged out); `{"finalized":{"task_ids"}}` paid out;
//! `{"cursor":block}` every assignment up to this block has been computed or skipped.
//! Sentinel mode (`--sentinel-key`) adds `{"planted":{"task_id","true_hash","salt"}}` (written
//! before the `plantForcedError` transaction: the salt must survive a crash so the forced error
//! can still be revealed) and `{"revealed":{"task_ids"}}` (nothing left to reveal).
//! The last record about a task wins, except that a committed or finalized task never goes back.

use alloy::primitives::{Bytes, B256, U256};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A computed task result (success or failure) waiting to be committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Computed {
    /// The task.
    pub task_id: U256,
    /// Model the task ran (for logs and metrics).
    #[serde(default)]
    pub model_id: u32,
    /// keccak256 of `output_hex`.
    pub output_hash: B256,
    /// Protocol failure code (0 = success).
    pub code: u16,
    /// Canonical safetensors output, or the UTF-8 failure message.
    pub output_hex: Bytes,
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    /// A result is ready to commit.
    Computed(Computed),
    /// A commit transaction was signed with this hash and is being broadcast.
    Submitted {
        /// Tasks in the transaction.
        task_ids: Vec<U256>,
        /// Its hash (known before broadcasting: the executor signs locally).
        tx_hash: B256,
    },
    /// The tasks are committed on-chain.
    Committed {
        /// Tasks.
        task_ids: Vec<U256>,
        /// Block of the commit (0 when only the task status showed it).
        block: u64,
    },
    /// The tasks will not be committed by this worker.
    Skipped {
        /// Tasks.
        task_ids: Vec<U256>,
        /// Why (deadline passed, reassigned, ...).
        reason: String,
    },
    /// The chain expects these tasks from us again (commit reverted, dropped or reorged out,
    /// or the task was assigned back to us): commit the journaled results again.
    Requeued {
        /// Tasks.
        task_ids: Vec<U256>,
    },
    /// The tasks were finalized (fees paid out).
    Finalized {
        /// Tasks.
        task_ids: Vec<U256>,
    },
    /// Every TaskAssigned log up to this block is handled.
    Cursor(u64),
    /// Sentinel: this task of the sentinel's own planter becomes a forced error; its commitment
    /// `keccak256(abi.encode(task_id, true_hash, salt))` is planted before the wrong result is
    /// committed.
    Planted(Planted),
    /// Sentinel: these forced errors were revealed, or need no reveal (never audited).
    Revealed {
        /// Tasks.
        task_ids: Vec<U256>,
    },
}

/// A forced error the sentinel planted (or is about to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planted {
    /// The task (submitted by the sentinel's planter, served by this worker).
    pub task_id: U256,
    /// Commitment hash of the true result (what an honest worker would have committed).
    pub true_hash: B256,
    /// The commitment's salt.
    pub salt: B256,
}

/// Where a task stands according to the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Result journaled, not yet sent.
    Computed,
    /// Commit transaction signed/sent; receipt not yet seen.
    Submitted(B256),
    /// Committed on-chain at this block.
    Committed(u64),
    /// Not going to be committed.
    Skipped,
    /// Paid out.
    Finalized,
}

/// A task's journaled result and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskEntry {
    /// The result, when this journal computed it (absent after compaction of settled tasks).
    pub result: Option<Computed>,
    /// Current state.
    pub state: TaskState,
}

/// The state a journal replays to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalState {
    /// Last fully handled block of TaskAssigned logs.
    pub cursor: Option<u64>,
    /// Every task the journal knows.
    pub tasks: BTreeMap<U256, TaskEntry>,
    /// Sentinel: forced errors planted and not yet revealed.
    pub planted: BTreeMap<U256, Planted>,
}

impl JournalState {
    /// Applies one record (replay and live appends use the same rules).
    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::Computed(c) => {
                let entry = self.tasks.entry(c.task_id).or_insert(TaskEntry {
                    result: None,
                    state: TaskState::Computed,
                });
                entry.result = Some(c.clone());
                // Re-journaling a result requeues it: after a skip (the task came back to us) or a
                // commit transaction that never landed.
                if matches!(
                    entry.state,
                    TaskState::Skipped | TaskState::Computed | TaskState::Submitted(_)
                ) {
                    entry.state = TaskState::Computed;
                }
            }
            Record::Submitted { task_ids, tx_hash } => {
                for id in task_ids {
                    if let Some(e) = self.tasks.get_mut(id) {
                        if matches!(e.state, TaskState::Computed | TaskState::Submitted(_)) {
                            e.state = TaskState::Submitted(*tx_hash);
                        }
                    }
                }
            }
            Record::Committed { task_ids, block } => {
                for id in task_ids {
                    let e = self.tasks.entry(*id).or_insert(TaskEntry {
                        result: None,
                        state: TaskState::Committed(*block),
                    });
                    if e.state != TaskState::Finalized {
                        e.state = TaskState::Committed(*block);
                    }
                }
            }
            Record::Skipped { task_ids, .. } => {
                for id in task_ids {
                    let e = self.tasks.entry(*id).or_insert(TaskEntry {
                        result: None,
                        state: TaskState::Skipped,
                    });
                    if matches!(
                        e.state,
                        TaskState::Computed | TaskState::Submitted(_) | TaskState::Skipped
                    ) {
                        e.state = TaskState::Skipped;
                    }
                }
            }
            Record::Requeued { task_ids } => {
                for id in task_ids {
                    if let Some(e) = self.tasks.get_mut(id) {
                        if e.result.is_some() && e.state != TaskState::Finalized {
                            e.state = TaskState::Computed;
                        }
                    }
                }
            }
            Record::Finalized { task_ids } => {
                for id in task_ids {
                    self.tasks
                        .entry(*id)
                        .or_insert(TaskEntry {
                            result: None,
                            state: TaskState::Finalized,
                        })
                        .state = TaskState::Finalized;
                }
            }
            Record::Cursor(b) => self.cursor = Some(*b),
            Record::Planted(p) => {
                self.planted.insert(p.task_id, *p);
            }
            Record::Revealed { task_ids } => {
                for id in task_ids {
                    self.planted.remove(id);
                }
            }
        }
    }

    /// State of one task.
    pub fn state_of(&self, id: &U256) -> Option<TaskState> {
        self.tasks.get(id).map(|e| e.state)
    }

    /// Results journaled but not yet sent, in task order.
    pub fn to_commit(&self) -> Vec<Computed> {
        self.tasks
            .values()
            .filter(|e| e.state == TaskState::Computed)
            .filter_map(|e| e.result.clone())
            .collect()
    }

    /// Commit transactions whose receipt was never recorded, with their tasks.
    pub fn pending_txs(&self) -> BTreeMap<B256, Vec<U256>> {
        let mut out: BTreeMap<B256, Vec<U256>> = BTreeMap::new();
        for (id, e) in &self.tasks {
            if let TaskState::Submitted(tx) = e.state {
                out.entry(tx).or_default().push(*id);
            }
        }
        out
    }

    /// Committed tasks not yet finalized.
    pub fn awaiting_finalize(&self) -> Vec<U256> {
        self.tasks
            .iter()
            .filter(|(_, e)| matches!(e.state, TaskState::Committed(_)))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The smallest set of records that replays to this state, minus finalized tasks
    /// (the chain keeps their history; the journal only needs live work).
    fn compacted_records(&self) -> Vec<Record> {
        let mut out = Vec::new();
        for (id, e) in &self.tasks {
            if e.state == TaskState::Finalized {
                continue;
            }
            if let Some(r) = &e.result {
                out.push(Record::Computed(r.clone()));
            }
            let ids = vec![*id];
            match e.state {
                TaskState::Computed => {}
                TaskState::Submitted(tx_hash) => out.push(Record::Submitted {
                    task_ids: ids,
                    tx_hash,
                }),
                TaskState::Committed(block) => out.push(Record::Committed {
                    task_ids: ids,
                    block,
                }),
                TaskState::Skipped => out.push(Record::Skipped {
                    task_ids: ids,
                    reason: "compacted".into(),
                }),
                TaskState::Finalized => {}
            }
        }
        out.extend(self.planted.values().map(|p| Record::Planted(*p)));
        if let Some(c) = self.cursor {
            out.push(Record::Cursor(c));
        }
        out
    }
}

/// Journal I/O errors, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file could not be opened, read, written or synced.
    #[error("journal {path}: {source}")]
    Io {
        /// Journal file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Another process holds the journal.
    #[error("journal {path} is in use by another executor (one journal per worker process; pass --journal for another)")]
    Locked {
        /// Journal file.
        path: PathBuf,
    },
    /// A line other than the last one is not a valid record: the file was edited or damaged.
    #[error("journal {path}: line {line} is not a valid record ({reason}); fix or move the file aside (the chain is the source of truth, a fresh journal rescans it)")]
    Corrupt {
        /// Journal file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Parse error.
        reason: String,
    },
}

/// What opening a journal found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Records replayed.
    pub records: usize,
    /// A truncated or unparsable final line (a crash mid-write) was dropped.
    pub dropped_partial_line: bool,
    /// The file was rewritten without finalized tasks.
    pub compacted: bool,
}

/// Rewrite the file on open when it holds more than this many records and compaction would
/// drop at least half of them.
const COMPACT_MIN_RECORDS: usize = 10_000;

/// The append-only journal file and the state it replays to.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    state: JournalState,
}

/// How long [`lock`] waits for a lock held elsewhere before [`JournalError::Locked`].
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Takes the journal's exclusive lock (`flock`), retrying for [`LOCK_WAIT`]: a lock is shared by
/// every copy of its descriptor, and a process forked by another thread (a child being spawned)
/// holds a copy until its `exec` closes it, so a journal closed and reopened at that moment looks
/// locked for a few milliseconds (a flaky `Locked` in the unit tests). Another executor holding it
/// still fails, after the wait.
fn lock(file: &File, path: &Path) -> Result<(), JournalError> {
    let started = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(_) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(_) => {
                return Err(JournalError::Locked {
                    path: path.to_path_buf(),
                })
            }
        }
    }
}

impl Journal {
    /// Opens (creating if needed) and replays the journal. A truncated last line is dropped
    /// (and cut from the file so the next append starts on a clean line); any other bad line
    /// is an error.
    pub fn open(path: &Path) -> Result<(Journal, ReplayReport), JournalError> {
        let io = |source: std::io::Error| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        // Two executors appending to one journal would each think the other's work is theirs.
        lock(&file, path)?;
        let mut state = JournalState::default();
        let mut report = ReplayReport::default();

        let mut lines: Vec<(u64, Vec<u8>)> = Vec::new(); // (offset of line start, bytes incl. '\n')
        {
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            let mut reader = BufReader::new(&file);
            let mut offset = 0u64;
            loop {
                let mut buf = Vec::new();
                let n = reader.read_until(b'\n', &mut buf).map_err(io)?;
                if n == 0 {
                    break;
                }
                lines.push((offset, buf));
                offset += n as u64;
            }
        }
        let total = lines.len();
        let mut good_end = 0u64;
        for (i, (offset, raw)) in lines.iter().enumerate() {
            let is_last = i + 1 == total;
            let complete = raw.last() == Some(&b'\n');
            let text = String::from_utf8_lossy(raw);
            let text = text.trim();
            if text.is_empty() {
                good_end = offset + raw.len() as u64;
                continue;
            }
            match serde_json::from_str::<Record>(text) {
                Ok(rec) if complete || !is_last => {
                    state.apply(&rec);
                    report.records += 1;
                    good_end = offset + raw.len() as u64;
                }
                // A final line without its newline was cut mid-write: even if it parses, the
                // fsync that would have made it durable never returned, so drop it.
                Ok(_) => {
                    report.dropped_partial_line = true;
                }
                Err(e) if is_last => {
                    tracing::warn!(journal = %path.display(), line = i + 1, error = %e, "dropping a truncated last journal line (crash while writing)");
                    report.dropped_partial_line = true;
                }
                Err(e) => {
                    return Err(JournalError::Corrupt {
                        path: path.to_path_buf(),
                        line: i + 1,
                        reason: e.to_string(),
                    });
                }
            }
        }
        if report.dropped_partial_line {
            file.set_len(good_end).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let mut journal = Journal {
            path: path.to_path_buf(),
            file,
            state,
        };
        if report.records > COMPACT_MIN_RECORDS {
            let kept = journal.state.compacted_records().len();
            if kept * 2 < report.records {
                journal.compact()?;
                report.compacted = true;
            }
        }
        Ok((journal, report))
    }

    /// Appends one record durably (write + fsync) and applies it to the state.
    pub fn append(&mut self, record: Record) -> Result<(), JournalError> {
        let io = |source: std::io::Error| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(&record).map_err(|e| io(std::io::Error::other(e)))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.state.apply(&record);
        Ok(())
    }

    /// Rewrites the file with only live tasks (atomically: temp file, fsync, rename).
    pub fn compact(&mut self) -> Result<(), JournalError> {
        let io = |source: std::io::Error| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension("jsonl.compact");
        {
            let mut f = File::create(&tmp).map_err(io)?;
            for rec in self.state.compacted_records() {
                let mut line =
                    serde_json::to_vec(&rec).map_err(|e| io(std::io::Error::other(e)))?;
                line.push(b'\n');
                f.write_all(&line).map_err(io)?;
            }
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        lock(&file, &self.path)?;
        self.file = file;
        let mut replayed = JournalState::default();
        for rec in self.state.compacted_records() {
            replayed.apply(&rec);
        }
        self.state = replayed;
        Ok(())
    }

    /// The replayed state.
    pub fn state(&self) -> &JournalState {
        &self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::keccak256;

    fn computed(id: u64, code: u16) -> Computed {
        let out = format!("out-{id}").into_bytes();
        Computed {
            task_id: U256::from(id),
            model_id: 1,
            output_hash: keccak256(&out),
            code,
            output_hex: out.into(),
        }
    }

    fn ids(v: &[u64]) -> Vec<U256> {
        v.iter().map(|i| U256::from(*i)).collect()
    }

    #[test]
    fn records_use_the_documented_json_shape() {
        let c = serde_json::to_value(Record::Computed(computed(7, 0))).unwrap();
        assert_eq!(c["computed"]["task_id"], "0x7");
        assert_eq!(
            c["computed"]["output_hex"],
            format!("0x{}", hex::encode(b"out-7"))
        );
        let s = serde_json::to_value(Record::Submitted {
            task_ids: ids(&[1, 2]),
            tx_hash: B256::repeat_byte(1),
        })
        .unwrap();
        assert_eq!(s["submitted"]["task_ids"][1], "0x2");
        assert_eq!(
            serde_json::to_string(&Record::Cursor(42)).unwrap(),
            r#"{"cursor":42}"#
        );
        let back: Record =
            serde_json::from_str(r#"{"committed":{"task_ids":["0x1"],"block":9}}"#).unwrap();
        assert_eq!(
            back,
            Record::Committed {
                task_ids: ids(&[1]),
                block: 9
            }
        );
    }

    #[test]
    fn replay_restores_every_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let tx = B256::repeat_byte(0xaa);
        {
            let (mut j, report) = Journal::open(&path).unwrap();
            assert_eq!(report, ReplayReport::default());
            for i in 1..=5 {
                j.append(Record::Computed(computed(i, (i % 2) as u16)))
                    .unwrap();
            }
            j.append(Record::Submitted {
                task_ids: ids(&[1, 2]),
                tx_hash: tx,
            })
            .unwrap();
            j.append(Record::Submitted {
                task_ids: ids(&[3]),
                tx_hash: B256::repeat_byte(3),
            })
            .unwrap();
            j.append(Record::Committed {
                task_ids: ids(&[3]),
                block: 11,
            })
            .unwrap();
            j.append(Record::Skipped {
                task_ids: ids(&[4]),
                reason: "deadline passed".into(),
            })
            .unwrap();
            j.append(Record::Cursor(12)).unwrap();
        }
        let (j, report) = Journal::open(&path).unwrap();
        assert_eq!(report.records, 10);
        assert!(!report.dropped_partial_line);
        let s = j.state();
        assert_eq!(s.cursor, Some(12));
        assert_eq!(s.state_of(&U256::from(1)), Some(TaskState::Submitted(tx)));
        assert_eq!(s.state_of(&U256::from(3)), Some(TaskState::Committed(11)));
        assert_eq!(s.state_of(&U256::from(4)), Some(TaskState::Skipped));
        // Computed-but-not-sent results come back with their bytes: nothing is recomputed.
        let todo = s.to_commit();
        assert_eq!(todo, vec![computed(5, 1)]);
        assert_eq!(s.pending_txs().get(&tx), Some(&ids(&[1, 2])));
        assert_eq!(s.awaiting_finalize(), ids(&[3]));
    }

    #[test]
    fn truncated_last_line_is_dropped_and_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        {
            let (mut j, _) = Journal::open(&path).unwrap();
            j.append(Record::Computed(computed(1, 0))).unwrap();
            j.append(Record::Cursor(5)).unwrap();
        }
        // A crash in the middle of writing the next record.
        let full = serde_json::to_string(&Record::Computed(computed(2, 0))).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&full.as_bytes()[..full.len() / 2]).unwrap();
        drop(f);

        let (mut j, report) = Journal::open(&path).unwrap();
        assert!(report.dropped_partial_line);
        assert_eq!(report.records, 2);
        assert_eq!(j.state().state_of(&U256::from(2)), None);
        assert_eq!(j.state().cursor, Some(5));
        // The next append lands on its own line and replays.
        j.append(Record::Computed(computed(3, 0))).unwrap();
        drop(j);
        let (j, report) = Journal::open(&path).unwrap();
        assert!(!report.dropped_partial_line);
        assert_eq!(report.records, 3);
        assert_eq!(j.state().to_commit().len(), 2);
    }

    #[test]
    fn complete_json_without_newline_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let line = serde_json::to_string(&Record::Cursor(9)).unwrap();
        std::fs::write(&path, line).unwrap();
        let (j, report) = Journal::open(&path).unwrap();
        assert!(report.dropped_partial_line);
        assert_eq!(j.state().cursor, None);
        assert_eq!(std::fs::read(&path).unwrap().len(), 0);
    }

    #[test]
    fn a_second_open_of_the_same_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let (_j, _) = Journal::open(&path).unwrap();
        let e = Journal::open(&path).unwrap_err().to_string();
        assert!(e.contains("in use by another executor"), "{e}");
    }

    #[test]
    fn requeued_tasks_are_committed_again_unless_finalized() {
        let mut s = JournalState::default();
        s.apply(&Record::Computed(computed(1, 0)));
        s.apply(&Record::Computed(computed(2, 0)));
        s.apply(&Record::Committed {
            task_ids: ids(&[1, 2]),
            block: 5,
        });
        s.apply(&Record::Finalized {
            task_ids: ids(&[2]),
        });
        // Task 3 is unknown: nothing to requeue.
        s.apply(&Record::Requeued {
            task_ids: ids(&[1, 2, 3]),
        });
        assert_eq!(s.to_commit(), vec![computed(1, 0)]);
        assert_eq!(s.state_of(&U256::from(2)), Some(TaskState::Finalized));
        assert_eq!(s.state_of(&U256::from(3)), None);
        let j = serde_json::to_string(&Record::Requeued {
            task_ids: ids(&[1]),
        })
        .unwrap();
        assert_eq!(j, r#"{"requeued":{"task_ids":["0x1"]}}"#);
    }

    #[test]
    fn unsent_commit_can_be_requeued() {
        let mut s = JournalState::default();
        s.apply(&Record::Computed(computed(1, 0)));
        s.apply(&Record::Submitted {
            task_ids: ids(&[1]),
            tx_hash: B256::repeat_byte(1),
        });
        assert!(s.to_commit().is_empty());
        s.apply(&Record::Computed(computed(1, 0)));
        assert_eq!(s.to_commit().len(), 1);
        assert!(s.pending_txs().is_empty());
    }

    #[test]
    fn corrupt_middle_line_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(&path, "{\"cursor\":1}\nnot json\n{\"cursor\":2}\n").unwrap();
        let e = Journal::open(&path).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("j.jsonl"), "{e}");
    }

    #[test]
    fn replay_is_idempotent_and_committed_never_goes_back() {
        let mut s = JournalState::default();
        let recs = vec![
            Record::Computed(computed(1, 0)),
            Record::Submitted {
                task_ids: ids(&[1]),
                tx_hash: B256::repeat_byte(1),
            },
            Record::Committed {
                task_ids: ids(&[1]),
                block: 3,
            },
            // Late duplicates, as after a restart that re-checked the chain.
            Record::Committed {
                task_ids: ids(&[1]),
                block: 3,
            },
            Record::Skipped {
                task_ids: ids(&[1]),
                reason: "late".into(),
            },
            Record::Computed(computed(1, 0)),
            Record::Submitted {
                task_ids: ids(&[1]),
                tx_hash: B256::repeat_byte(2),
            },
        ];
        for r in &recs {
            s.apply(r);
        }
        assert_eq!(s.state_of(&U256::from(1)), Some(TaskState::Committed(3)));
        assert!(s.to_commit().is_empty());
        let mut twice = s.clone();
        for r in &recs {
            twice.apply(r);
        }
        assert_eq!(twice, s);
        s.apply(&Record::Finalized {
            task_ids: ids(&[1]),
        });
        s.apply(&Record::Committed {
            task_ids: ids(&[1]),
            block: 3,
        });
        assert_eq!(s.state_of(&U256::from(1)), Some(TaskState::Finalized));
        assert!(s.awaiting_finalize().is_empty());
    }

    #[test]
    fn skipped_task_can_be_requeued_by_a_new_computed_record() {
        let mut s = JournalState::default();
        s.apply(&Record::Computed(computed(1, 0)));
        s.apply(&Record::Skipped {
            task_ids: ids(&[1]),
            reason: "reassigned".into(),
        });
        assert!(s.to_commit().is_empty());
        s.apply(&Record::Computed(computed(1, 0)));
        assert_eq!(s.to_commit().len(), 1);
    }

    #[test]
    fn compaction_keeps_live_tasks_and_drops_finalized() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let (mut j, _) = Journal::open(&path).unwrap();
        for i in 1..=4 {
            j.append(Record::Computed(computed(i, 0))).unwrap();
        }
        j.append(Record::Committed {
            task_ids: ids(&[1, 2, 3]),
            block: 7,
        })
        .unwrap();
        j.append(Record::Finalized {
            task_ids: ids(&[1, 2]),
        })
        .unwrap();
        j.append(Record::Cursor(8)).unwrap();
        let before = j.state().clone();
        j.compact().unwrap();
        let mut expected = before.clone();
        expected.tasks.remove(&U256::from(1));
        expected.tasks.remove(&U256::from(2));
        assert_eq!(j.state(), &expected);
        j.append(Record::Cursor(9)).unwrap();
        drop(j);
        let (j, report) = Journal::open(&path).unwrap();
        assert_eq!(report.records, 5); // computed 3, committed 3, computed 4, cursor 8, cursor 9
        assert_eq!(j.state().cursor, Some(9));
        assert_eq!(j.state().awaiting_finalize(), ids(&[3]));
        assert_eq!(j.state().to_commit(), vec![computed(4, 0)]);
    }

    #[test]
    fn planted_forced_errors_survive_replay_and_compaction_until_revealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let planted = |id: u64| Planted {
            task_id: U256::from(id),
            true_hash: B256::repeat_byte(id as u8),
            salt: B256::repeat_byte(0x5a),
        };
        {
            let (mut j, _) = Journal::open(&path).unwrap();
            j.append(Record::Planted(planted(1))).unwrap();
            j.append(Record::Planted(planted(2))).unwrap();
            j.append(Record::Computed(computed(1, 0))).unwrap();
            j.append(Record::Revealed {
                task_ids: ids(&[2]),
            })
            .unwrap();
            let line = serde_json::to_value(Record::Planted(planted(3))).unwrap();
            assert_eq!(line["planted"]["task_id"], "0x3");
        }
        let (mut j, _) = Journal::open(&path).unwrap();
        assert_eq!(
            j.state().planted.values().copied().collect::<Vec<_>>(),
            vec![planted(1)],
            "the salt of an unrevealed forced error survives a restart"
        );
        j.compact().unwrap();
        drop(j);
        let (mut j, _) = Journal::open(&path).unwrap();
        assert_eq!(j.state().planted.len(), 1, "compaction keeps it");
        j.append(Record::Revealed {
            task_ids: ids(&[1]),
        })
        .unwrap();
        assert!(j.state().planted.is_empty());
    }
}
