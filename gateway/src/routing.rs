//! Model aliases (`deepnode/auto-chat`, `deepnode/auto-embed`, ...): the gateway picks one model
//! of the alias's kind for each call, by measured quality (the indexer's epoch quality), price
//! and latency (what this gateway measured, submit to answer), with a share of exploration so
//! new models get traffic, and less for a model in Probation. The choice and its reason go in
//! the `x-deepnode-route` header. This is how better models earn more real traffic.

use crate::models::ModelInfo;
use inference::Kind;
use rand::Rng;

/// The aliases and their kinds.
pub const ALIASES: [(&str, Kind); 5] = [
    ("deepnode/auto-chat", Kind::TextGeneration),
    ("deepnode/auto-embed", Kind::Embeddings),
    ("deepnode/auto-transcribe", Kind::SpeechRecognition),
    ("deepnode/auto-ocr", Kind::Ocr),
    ("deepnode/auto-classify", Kind::ImageClassification),
];

/// The kind an alias routes to.
pub fn alias_kind(model: &str) -> Option<Kind> {
    ALIASES
        .iter()
        .find(|(a, _)| *a == model.trim())
        .map(|(_, k)| *k)
}

/// How routing weighs its inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// Weight of measured quality (0..1, unknown = 0.5).
    pub quality: f64,
    /// Weight of price (cheapest = 1, others cheapest/price).
    pub price: f64,
    /// Weight of latency (fastest = 1, others fastest/latency, unknown = 0.5).
    pub latency: f64,
    /// Share of calls sent to a uniformly drawn candidate instead of the best.
    pub explore: f64,
    /// Score multiplier of a model in Probation.
    pub probation: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            quality: 0.6,
            price: 0.2,
            latency: 0.2,
            explore: 0.1,
            probation: 0.5,
        }
    }
}

/// A routable model with what is known of it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The model.
    pub model: ModelInfo,
    /// Its measured quality in [0, 1], when the indexer has one.
    pub quality: Option<f64>,
    /// Its mean answer time here, when measured.
    pub latency_ms: Option<f64>,
}

/// The pick and why.
#[derive(Debug, Clone)]
pub struct Choice {
    /// The chosen model.
    pub model: ModelInfo,
    /// `x-deepnode-route`'s text.
    pub reason: String,
}

fn as_f64(x: alloy::primitives::U256) -> f64 {
    x.to_string().parse().unwrap_or(f64::MAX)
}

/// Each candidate's score in [0, 1]-ish (higher is better).
pub fn scores(cands: &[Candidate], w: &Weights) -> Vec<f64> {
    let min_price = cands
        .iter()
        .map(|c| c.model.price)
        .min()
        .unwrap_or_default();
    let min_latency = cands
        .iter()
        .filter_map(|c| c.latency_ms)
        .fold(f64::INFINITY, f64::min);
    cands
        .iter()
        .map(|c| {
            let q = c.quality.unwrap_or(0.5).clamp(0.0, 1.0);
            let p = if c.model.price.is_zero() {
                1.0
            } else {
                (as_f64(min_price) / as_f64(c.model.price)).clamp(0.0, 1.0)
            };
            let l = match c.latency_ms {
                Some(ms) if ms > 0.0 && min_latency.is_finite() => {
                    (min_latency / ms).clamp(0.0, 1.0)
                }
                _ => 0.5,
            };
            let s = w.quality * q + w.price * p + w.latency * l;
            if c.model.status == 1 {
                s * w.probation
            } else {
                s
            }
        })
        .collect()
}

/// Picks one candidate: the best score, except a share `explore` of calls that draw uniformly.
pub fn choose(alias: &str, cands: &[Candidate], w: &Weights, rng: &mut impl Rng) -> Option<Choice> {
    if cands.is_empty() {
        return None;
    }
    let s = scores(cands, w);
    let explored = cands.len() > 1 && rng.gen::<f64>() < w.explore;
    let i = if explored {
        rng.gen_range(0..cands.len())
    } else {
        (0..cands.len())
            .max_by(|a, b| s[*a].total_cmp(&s[*b]).then(b.cmp(a)))
            .expect("non-empty")
    };
    let c = &cands[i];
    let fmt = |v: Option<f64>| v.map_or("unknown".to_string(), |v| format!("{v:.2}"));
    let reason = format!(
        "{alias} -> {}: {} (score {:.3}; quality {}, price {} wei, latency {} ms, status {}; {} candidates)",
        c.model.openai_id(),
        if explored { "exploration" } else { "best score" },
        s[i],
        fmt(c.quality),
        c.model.price,
        c.latency_ms.map_or("unknown".to_string(), |v| format!("{v:.0}")),
        c.model.status_name(),
        cands.len()
    );
    Some(Choice {
        model: c.model.clone(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, B256, U256};
    use rand::SeedableRng;

    fn model(id: u32, price: u64, status: u8) -> ModelInfo {
        ModelInfo {
            id,
            name: format!("m{id}"),
            kind: Some(Kind::TextGeneration),
            price: U256::from(price),
            status,
            workers: 1,
            developer: Address::ZERO,
            sha256: B256::ZERO,
            route: None,
        }
    }

    fn shares(cands: &[Candidate], w: &Weights, n: usize) -> Vec<f64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut counts = vec![0usize; cands.len()];
        for _ in 0..n {
            let c = choose("deepnode/auto-chat", cands, w, &mut rng).unwrap();
            counts[cands.iter().position(|x| x.model.id == c.model.id).unwrap()] += 1;
        }
        counts.iter().map(|c| *c as f64 / n as f64).collect()
    }

    #[test]
    fn the_better_model_gets_most_traffic_and_exploration_holds() {
        let w = Weights::default();
        let cands = vec![
            Candidate {
                model: model(1, 100, 0),
                quality: Some(0.6),
                latency_ms: Some(900.0),
            },
            Candidate {
                model: model(2, 100, 0),
                quality: Some(0.95),
                latency_ms: Some(600.0),
            },
            // new: nothing measured yet
            Candidate {
                model: model(3, 100, 0),
                quality: None,
                latency_ms: None,
            },
        ];
        let s = shares(&cands, &w, 20_000);
        // best: 1 - explore + explore/3 = 0.933; each other: explore/3 = 0.033
        assert!((s[1] - 0.933).abs() < 0.01, "{s:?}");
        assert!((s[0] - 0.033).abs() < 0.01, "{s:?}");
        assert!(
            (s[2] - 0.033).abs() < 0.01,
            "the new model is explored: {s:?}"
        );
        // no exploration: all to the best
        let greedy = Weights { explore: 0.0, ..w };
        assert_eq!(shares(&cands, &greedy, 1000), vec![0.0, 1.0, 0.0]);
    }

    #[test]
    fn probation_and_price_lower_a_score() {
        let w = Weights::default();
        let same = |m| Candidate {
            model: m,
            quality: Some(0.9),
            latency_ms: Some(500.0),
        };
        let s = scores(&[same(model(1, 100, 0)), same(model(2, 100, 1))], &w);
        assert!((s[1] - s[0] * 0.5).abs() < 1e-12, "{s:?}");
        let s = scores(&[same(model(1, 100, 0)), same(model(2, 200, 0))], &w);
        assert!(s[0] > s[1], "cheaper wins at equal quality: {s:?}");
        let c = choose(
            "deepnode/auto-chat",
            &[same(model(1, 100, 1)), same(model(2, 100, 0))],
            &Weights { explore: 0.0, ..w },
            &mut rand::rngs::StdRng::seed_from_u64(1),
        )
        .unwrap();
        assert_eq!(c.model.id, 2);
        assert!(
            c.reason
                .starts_with("deepnode/auto-chat -> deepnode/2: best score"),
            "{}",
            c.reason
        );
        assert!(choose("x", &[], &w, &mut rand::rngs::StdRng::seed_from_u64(1)).is_none());
    }

    #[test]
    fn aliases_name_their_kinds() {
        assert_eq!(alias_kind("deepnode/auto-embed"), Some(Kind::Embeddings));
        assert_eq!(alias_kind("deepnode/auto-chat"), Some(Kind::TextGeneration));
        assert_eq!(alias_kind("deepnode/2"), None);
    }
}
