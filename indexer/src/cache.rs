//! Serialized pages of `GET /tasks` and `GET /nodes/{addr}`, keyed by the route and query and by
//! the indexed block they were read at.
//!
//! A task list or a node's record changes only when the follow loop stores a block range or rolls
//! one back, and both move the cursor (block number and hash) in the same transaction as the rows.
//! A page is read together with the cursor in one read transaction (one WAL snapshot), so the
//! cursor names the data exactly; a request first reads the cursor (a primary-key lookup) and,
//! when the cache holds the page for that cursor, answers with its bytes: no page query, no JSON
//! built. The cache holds the pages of one cursor only: the first page read at another one (a new
//! block, or a reorg's fork point) empties it. It is per process: a database written by another
//! process is fine as long as that process also moves the cursor with every change, which the
//! chain store does.

use alloy::primitives::B256;
use axum::body::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;

/// Bytes of page bodies kept at most (one cursor's pages; beyond it, pages are not kept).
const MAX_BYTES: usize = 16 << 20;

/// The indexed block a page was read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    /// Block number of the cursor.
    pub number: u64,
    /// Its hash.
    pub hash: B256,
}

#[derive(Default)]
struct Pages {
    at: Option<At>,
    bytes: usize,
    pages: HashMap<String, Bytes>,
}

/// The cache (shared by the handlers through `AppState`).
#[derive(Default)]
pub struct PageCache {
    inner: Mutex<Pages>,
}

impl PageCache {
    /// The page of `key` read at `at`, if kept.
    pub fn get(&self, key: &str, at: At) -> Option<Bytes> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let hit = (inner.at == Some(at))
            .then(|| inner.pages.get(key).cloned())
            .flatten();
        let route = if key.starts_with("node:") {
            "node"
        } else {
            "tasks"
        };
        metrics::counter!("indexer_page_cache_total", "route" => route, "result" => if hit.is_some() { "hit" } else { "miss" })
            .increment(1);
        hit
    }

    /// Keeps the page of `key` read at `at`; pages of another cursor are dropped first.
    pub fn put(&self, key: String, at: At, body: Bytes) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.at != Some(at) {
            *inner = Pages {
                at: Some(at),
                ..Pages::default()
            };
        }
        if inner.bytes + body.len() > MAX_BYTES {
            return;
        }
        inner.bytes += body.len();
        if let Some(old) = inner.pages.insert(key, body) {
            inner.bytes -= old.len();
        }
    }

    /// Pages kept now (for tests and metrics).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pages
            .len()
    }

    /// Whether no page is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(n: u64) -> At {
        At {
            number: n,
            hash: B256::with_last_byte(n as u8),
        }
    }

    #[test]
    fn a_page_is_served_only_at_the_cursor_it_was_read_at() {
        let c = PageCache::default();
        c.put("limit=50".into(), at(5), Bytes::from_static(b"[5]"));
        assert_eq!(c.get("limit=50", at(5)).as_deref(), Some(&b"[5]"[..]));
        assert_eq!(c.get("limit=10", at(5)), None, "another query");
        assert_eq!(c.get("limit=50", at(6)), None, "a newer block");
        let reorged = At {
            number: 5,
            hash: B256::repeat_byte(0xee),
        };
        assert_eq!(c.get("limit=50", reorged), None, "same height, other hash");
        // a page read at another cursor replaces every kept page
        c.put("limit=10".into(), at(6), Bytes::from_static(b"[6]"));
        assert_eq!(c.len(), 1);
        assert_eq!(c.get("limit=50", at(5)), None);
    }

    #[test]
    fn the_byte_budget_bounds_what_is_kept() {
        let c = PageCache::default();
        let big = Bytes::from(vec![b'x'; MAX_BYTES / 2 + 1]);
        c.put("a".into(), at(1), big.clone());
        c.put("b".into(), at(1), big.clone());
        assert!(c.get("a", at(1)).is_some());
        assert!(c.get("b", at(1)).is_none(), "over the budget: not kept");
        // replacing a page releases its bytes
        c.put("a".into(), at(1), Bytes::from_static(b"small"));
        c.put("b".into(), at(1), big);
        assert!(c.get("b", at(1)).is_some());
    }
}
