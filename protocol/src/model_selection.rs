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
//! - a **Delisted** model stays Delisted (only the registry's admin can list it again);
//! - with fewer than [`MIN_RATINGS`] ratings in the epoch there is not enough evidence either
//!   way: the status is kept (an unrated epoch neither clears a probation nor starts one);
//! - otherwise `quality >= QUALITY_FLOOR_WAD` (0.5) makes the model Active (a model on probation
//!   recovers), and `quality < QUALITY_FLOOR_WAD` moves Active -> Probation and
//!   Probation -> Delisted.
//!
//! These constants would sit better in `protocol::powr` next to `ModelStatusTree`; they live here
//! until that crate takes them (the indexer and the verifier are the only users today).

use crate::powr::{MODEL_ACTIVE, MODEL_DELISTED, MODEL_PROBATION, WAD};

/// Fewest ratings of a model in one epoch for its status to move.
pub const MIN_RATINGS: u64 = 5;
/// Quality below which a rated model is demoted (0.5, WAD).
pub const QUALITY_FLOOR_WAD: u64 = WAD / 2;
/// Highest user score `TaskManager` accepts (`MAX_SCORE`).
pub const MAX_SCORE: u64 = 100;
/// Canary accuracy used while validators run no canary tasks (1.0, WAD).
pub const CANARY_ACCURACY_WITHOUT_CANARIES_WAD: u64 = WAD;

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

/// The status after an epoch, from the status the model entered it with, its measured quality
/// and its number of ratings (the evidence). An unknown status (> Delisted) is kept as is.
pub fn next_model_status(prev: u8, quality_wad: u64, ratings: u64) -> u8 {
    // Delisted (or a status this code does not know) is final here.
    if prev >= MODEL_DELISTED || ratings < MIN_RATINGS {
        return prev;
    }
    if quality_wad >= QUALITY_FLOOR_WAD {
        return MODEL_ACTIVE;
    }
    match prev {
        MODEL_ACTIVE => MODEL_PROBATION,
        _ => MODEL_DELISTED,
    }
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

    #[test]
    fn transitions_follow_quality_with_enough_ratings() {
        let low = QUALITY_FLOOR_WAD - 1;
        let ok = QUALITY_FLOOR_WAD;
        assert_eq!(
            next_model_status(MODEL_ACTIVE, low, MIN_RATINGS),
            MODEL_PROBATION
        );
        assert_eq!(
            next_model_status(MODEL_PROBATION, low, MIN_RATINGS),
            MODEL_DELISTED
        );
        assert_eq!(
            next_model_status(MODEL_DELISTED, low, MIN_RATINGS),
            MODEL_DELISTED
        );
        assert_eq!(next_model_status(MODEL_DELISTED, WAD, 100), MODEL_DELISTED);
        assert_eq!(
            next_model_status(MODEL_ACTIVE, ok, MIN_RATINGS),
            MODEL_ACTIVE
        );
        assert_eq!(
            next_model_status(MODEL_PROBATION, ok, MIN_RATINGS),
            MODEL_ACTIVE
        );
        // Not enough evidence: kept.
        assert_eq!(
            next_model_status(MODEL_ACTIVE, 0, MIN_RATINGS - 1),
            MODEL_ACTIVE
        );
        assert_eq!(next_model_status(MODEL_PROBATION, WAD, 0), MODEL_PROBATION);
        assert_eq!(next_model_status(7, 0, 100), 7);
    }
}
