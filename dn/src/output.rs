//! What a command prints: text for people by default, one JSON object with `--json`. Progress
//! goes to stderr, so stdout holds only the result.

use alloy::primitives::U256;
use serde_json::{json, Value};

use crate::units::format_dn;

/// A command's result in both forms.
#[derive(Debug, Clone)]
pub struct Report {
    /// The `--json` object.
    pub json: Value,
    /// The text for people (printed as-is, a trailing newline added when missing).
    pub text: String,
}

impl Report {
    /// A report of `text` and `json`.
    pub fn new(text: impl Into<String>, json: Value) -> Report {
        Report {
            json,
            text: text.into(),
        }
    }
}

/// An error that still has a result to show with `--json` (a task that failed, an output that
/// does not match its hash): printed as the object plus `"error"`, exit status 1.
#[derive(Debug)]
pub struct Failure {
    /// The one-line error.
    pub message: String,
    /// The object `--json` prints (an `"error"` field is added).
    pub json: Value,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The JSON of an error: the [`Failure`]'s object with `"error"`, or `{"error": message}`.
pub fn error_json(e: &anyhow::Error, message: &str) -> Value {
    let mut v = match e.downcast_ref::<Failure>() {
        Some(f) => f.json.clone(),
        None => json!({}),
    };
    if let Some(obj) = v.as_object_mut() {
        obj.insert("error".into(), Value::String(message.to_string()));
    }
    v
}

/// An amount as JSON: DN (exact decimal string) and wei (decimal string).
pub fn amount_json(wei: U256) -> Value {
    json!({"dn": format_dn(wei), "wei": wei.to_string()})
}

/// An id as a JSON number when it fits (task ids do), else a decimal string.
pub fn id_json(id: U256) -> Value {
    match u64::try_from(id) {
        Ok(n) => json!(n),
        Err(_) => json!(id.to_string()),
    }
}

/// `3m 20s`, `45s`, `2h 5m`, `1d 3h`.
pub fn duration_words(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// `in 3m 20s` or `45s ago`, relative to `now` (unix seconds).
pub fn relative(when: u64, now: u64) -> String {
    if when >= now {
        format!("in {}", duration_words(when - now))
    } else {
        format!("{} ago", duration_words(now - when))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_json_carries_the_result_and_the_error() {
        let e = anyhow::Error::new(Failure {
            message: "task 3 failed".into(),
            json: json!({"task_id": 3}),
        });
        let v = error_json(&e, "task 3 failed");
        assert_eq!(v, json!({"task_id": 3, "error": "task 3 failed"}));
        let v = error_json(&anyhow::anyhow!("plain"), "plain");
        assert_eq!(v, json!({"error": "plain"}));
    }

    #[test]
    fn words_for_times() {
        assert_eq!(duration_words(45), "45s");
        assert_eq!(duration_words(200), "3m 20s");
        assert_eq!(duration_words(7500), "2h 5m");
        assert_eq!(duration_words(97_200), "1d 3h");
        assert_eq!(relative(110, 100), "in 10s");
        assert_eq!(relative(100, 110), "10s ago");
    }

    #[test]
    fn amounts_and_ids() {
        assert_eq!(
            amount_json(U256::from(1_500_000_000_000_000_000u128)),
            json!({"dn": "1.5", "wei": "1500000000000000000"})
        );
        assert_eq!(id_json(U256::from(7)), json!(7));
        assert_eq!(id_json(U256::MAX), json!(U256::MAX.to_string()));
    }
}
