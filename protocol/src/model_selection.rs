//! Natural selection of models: the pure rules that turn an epoch's measured model quality into
//! the status the epoch report sets (Active -> Probation -> Delisted). No I/O: the indexer's `epochs` gathers
//! the facts and every validator applies these same functions.
//!
//! # Measured quality of a model in an epoch (WAD, 1e18 = 1.0)
//! `quality = feedback × canary_accuracy`, where
//! - **feedback** is the average user score of the epoch's `TaskRated` events of the model
//!   (scores 0..=100 by the task's submitter, recorded on-chain by `TaskManager.rateTask(s)`),
//!   divided by 100: `Σscore · 1e18 / (100 · ratings)`, floored; `1.0` when the model has no
//!   rating in the epoch;
//! - **canary_accuracy** is the share of validators' canary tasks the model's results got right.
//!   No canary task exists yet, so it is [`CANARY_ACCURACY_WITHOUT_CANARIES_WAD`] (1.0) for every
//!   model; once canaries exist the epoch facts fill it in and the formula does not change.
//!
//! The product is floored: `feedback · canary / 1e18`.
//!
//! # Status transitions (decided once per epoch, per registered model)
//! Ratings are bought: any wallet can pay for a task of a rival model and rate it 0 (issue 14's
//! rating attack). So ratings alone can only put a model on **Probation** (a public warning:
//! the model still takes tasks, `TaskManager` refuses only Delisted ones); **delisting needs
//! validator evidence**, canary reports (a failed canary is accepted on-chain only for a task a
//! dispute quorum judged Fraud). Only ratings of tasks that ended successfully count (result
//! code 0, not refunded by a dispute before the epoch's end; see `chainstore::epochs`), so each
//! costs a full fee.
//! - a **Delisted** model stays Delisted (only the registry's admin can list it again);
//! - canary evidence against it (at least [`MIN_CANARIES`] reports, accuracy below
//!   [`QUALITY_FLOOR_WAD`]) moves Active -> Probation and Probation -> Delisted;
//! - otherwise rating evidence against it (at least [`MIN_RATINGS`] ratings, feedback below the
//!   floor) moves Active -> Probation and keeps a model on Probation (never further);
//! - otherwise, with either kind of evidence and `quality >= QUALITY_FLOOR_WAD`, the model is
//!   Active (a model on probation recovers);
//! - with neither (fewer ratings and canaries than the minimums) the status is kept.
//!
//! These constants would sit better in `protocol::powr` next to `ModelStatusTree`; they live here
//! until that crate takes them (the indexer and the verifier are the only users today).

use crate::powr::{MODEL_ACTIVE, MODEL_DELISTED, MODEL_PROBATION, WAD};

/// Fewest ratings of a model in one epoch for its status to move.
pub const MIN_RATINGS: u64 = 5;
/// Fewest canary reports of a model in one epoch for them to move its status.
pub const MIN_CANARIES: u64 = 5;
/// Quality below which a rated model is demoted (0.5, WAD).
pub const QUALITY_FLOOR_WAD: u64 = WAD / 2;
/// Highest user score `TaskManager` accepts (`MAX_SCORE`).
pub const MAX_SCORE: u64 = 100;
/// Canary accuracy used while validators run no canary tasks (1.0, WAD).
pub const CANARY_ACCURACY_WITHOUT_CANARIES_WAD: u64 = WAD;

/// Name of a registry model status (`active`, `probation`, `delisted`; `unknown` otherwise), as
/// the REST API and the logs spell it.
pub fn status_name(status: u8) -> &'static str {
    match status {
        MODEL_ACTIVE => "active",
        MODEL_PROBATION => "probation",
        MODEL_DELISTED => "delisted",
        _ => "unknown",
    }
}

/// Average user feedback as a WAD fraction of [`MAX_SCORE`]: `score_sum · 1e18 / (100 · ratings)`,
/// floored and capped at 1.0; 1.0 when there is no rating.
pub fn feedback_wad(ratings: u64, score_sum: u64) -> u64 {
    if ratings == 0 {
        return WAD;
    }
    let v = u128::from(score_sum) * u128::from(WAD) / (u128::from(MAX_SCORE) * u128::from(ratings));
    u64::try_from(v.min(u128::from(WAD))).unwrap_or(WAD)
}

/// Measured quality: `feedback · canary_accuracy / 1e18` (both WAD, each capped at 1.0).
pub fn model_quality_wad(feedback_wad: u64, canary_accuracy_wad: u64) -> u64 {
    let v = u128::from(feedback_wad.min(WAD)) * u128::from(canary_accuracy_wad.min(WAD))
        / u128::from(WAD);
    // v <= WAD, so it fits
    u64::try_from(v).unwrap_or(WAD)
}

/// One model's evidence in an epoch, as [`next_model_status`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evidence {
    /// Ratings counted (of successfully finished tasks).
    pub ratings: u64,
    /// Their average score / 100 ([`feedback_wad`]).
    pub feedback_wad: u64,
    /// Canary reports.
    pub canaries: u64,
    /// Matching share of them (1.0 without any).
    pub canary_accuracy_wad: u64,
}

impl Evidence {
    /// Measured quality `feedback × canary_accuracy` ([`model_quality_wad`]).
    pub fn quality_wad(&self) -> u64 {
        model_quality_wad(self.feedback_wad, self.canary_accuracy_wad)
    }
}

/// The status after an epoch, from the status the model entered it with and its evidence (see
/// the module docs): ratings alone reach Probation at most, delisting needs canary evidence. An
/// unknown status (> Delisted) is kept as is.
pub fn next_model_status(prev: u8, e: &Evidence) -> u8 {
    // Delisted (or a status this code does not know) is final here.
    if prev >= MODEL_DELISTED {
        return prev;
    }
    let canary_evidence = e.canaries >= MIN_CANARIES;
    let rating_evidence = e.ratings >= MIN_RATINGS;
    if canary_evidence && e.canary_accuracy_wad < QUALITY_FLOOR_WAD {
        return match prev {
            MODEL_ACTIVE => MODEL_PROBATION,
            _ => MODEL_DELISTED,
        };
    }
    if rating_evidence && e.feedback_wad < QUALITY_FLOOR_WAD {
        return MODEL_PROBATION;
    }
    if (canary_evidence || rating_evidence) && e.quality_wad() >= QUALITY_FLOOR_WAD {
        return MODEL_ACTIVE;
    }
    prev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_is_the_average_score_over_100_and_one_without_ratings() {
        assert_eq!(feedback_wad(0, 0), WAD);
        assert_eq!(feedback_wad(4, 400), WAD);
        assert_eq!(feedback_wad(5, 0), 0);
        assert_eq!(feedback_wad(2, 50), WAD / 4);
        // 1/3 floored
        assert_eq!(feedback_wad(3, 100), 333_333_333_333_333_333);
        // A corrupt sum above 100 per rating is capped.
        assert_eq!(feedback_wad(1, 1000), WAD);
    }

    #[test]
    fn quality_is_feedback_times_canary_accuracy() {
        assert_eq!(
            model_quality_wad(WAD / 2, CANARY_ACCURACY_WITHOUT_CANARIES_WAD),
            WAD / 2
        );
        assert_eq!(model_quality_wad(WAD / 2, WAD / 2), WAD / 4);
        assert_eq!(model_quality_wad(WAD, 0), 0);
        assert_eq!(model_quality_wad(u64::MAX, u64::MAX), WAD);
    }

    fn rated(ratings: u64, feedback_wad: u64) -> Evidence {
        Evidence {
            ratings,
            feedback_wad,
            canaries: 0,
            canary_accuracy_wad: CANARY_ACCURACY_WITHOUT_CANARIES_WAD,
        }
    }

    fn canaried(canaries: u64, canary_accuracy_wad: u64) -> Evidence {
        Evidence {
            ratings: 0,
            feedback_wad: WAD,
            canaries,
            canary_accuracy_wad,
        }
    }

    #[test]
    fn ratings_alone_reach_probation_and_never_delist() {
        let low = QUALITY_FLOOR_WAD - 1;
        let ok = QUALITY_FLOOR_WAD;
        assert_eq!(
            next_model_status(MODEL_ACTIVE, &rated(MIN_RATINGS, low)),
            MODEL_PROBATION
        );
        // issue 14's rating attack: zero ratings epoch after epoch keep it on probation only
        assert_eq!(
            next_model_status(MODEL_PROBATION, &rated(MIN_RATINGS, 0)),
            MODEL_PROBATION
        );
        assert_eq!(
            next_model_status(MODEL_PROBATION, &rated(1_000_000, 0)),
            MODEL_PROBATION
        );
        assert_eq!(
            next_model_status(MODEL_ACTIVE, &rated(MIN_RATINGS, ok)),
            MODEL_ACTIVE
        );
        assert_eq!(
            next_model_status(MODEL_PROBATION, &rated(MIN_RATINGS, ok)),
            MODEL_ACTIVE
        );
        // Not enough evidence: kept.
        assert_eq!(
            next_model_status(MODEL_ACTIVE, &rated(MIN_RATINGS - 1, 0)),
            MODEL_ACTIVE
        );
        assert_eq!(
            next_model_status(MODEL_PROBATION, &rated(0, WAD)),
            MODEL_PROBATION
        );
    }

    #[test]
    fn canary_evidence_delists_a_model_on_probation() {
        let low = QUALITY_FLOOR_WAD - 1;
        assert_eq!(
            next_model_status(MODEL_ACTIVE, &canaried(MIN_CANARIES, low)),
            MODEL_PROBATION
        );
        assert_eq!(
            next_model_status(MODEL_PROBATION, &canaried(MIN_CANARIES, 0)),
            MODEL_DELISTED
        );
        assert_eq!(
            next_model_status(MODEL_PROBATION, &canaried(MIN_CANARIES - 1, 0)),
            MODEL_PROBATION,
            "too few canaries"
        );
        // Good ratings do not outweigh failed canaries, nor good canaries bad ratings.
        let mixed = Evidence {
            ratings: MIN_RATINGS,
            feedback_wad: WAD,
            canaries: MIN_CANARIES,
            canary_accuracy_wad: 0,
        };
        assert_eq!(next_model_status(MODEL_PROBATION, &mixed), MODEL_DELISTED);
        let mixed = Evidence {
            ratings: MIN_RATINGS,
            feedback_wad: 0,
            canaries: MIN_CANARIES,
            canary_accuracy_wad: WAD,
        };
        assert_eq!(next_model_status(MODEL_PROBATION, &mixed), MODEL_PROBATION);
        // Recovery needs the product over the floor: 0.7 x 0.7 keeps the status.
        let seven = WAD / 10 * 7;
        let mixed = Evidence {
            ratings: MIN_RATINGS,
            feedback_wad: seven,
            canaries: MIN_CANARIES,
            canary_accuracy_wad: seven,
        };
        assert_eq!(next_model_status(MODEL_PROBATION, &mixed), MODEL_PROBATION);
        assert_eq!(
            next_model_status(MODEL_PROBATION, &canaried(MIN_CANARIES, WAD)),
            MODEL_ACTIVE
        );
    }

    #[test]
    fn delisted_and_unknown_statuses_are_final() {
        assert_eq!(
            next_model_status(MODEL_DELISTED, &rated(100, WAD)),
            MODEL_DELISTED
        );
        assert_eq!(
            next_model_status(MODEL_DELISTED, &canaried(100, WAD)),
            MODEL_DELISTED
        );
        assert_eq!(next_model_status(7, &canaried(100, 0)), 7);
    }
}
