//! Signed epoch reports as files shared between co-signing validators, and the quorum rule
//! of `Settlement.postReport` (signers strictly ascending, >= 2/3 of the validator stake).

use alloy::primitives::{Address, Bytes, Signature, B256, U256};
use protocol::powr::EpochReport;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An epoch report in JSON (amounts as decimal strings, hashes as 0x-hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportJson {
    /// Epoch number.
    pub epoch: u64,
    /// Root of the rewards tree.
    pub rewards_root: B256,
    /// Root of the trust tree.
    pub trust_root: B256,
    /// Sum of the rewards leaves, in wei (decimal).
    pub total_rewards: String,
    /// Hash of the agreed model statuses.
    pub model_status_hash: B256,
}

impl From<&EpochReport> for ReportJson {
    fn from(r: &EpochReport) -> Self {
        Self {
            epoch: r.epoch,
            rewards_root: r.rewardsRoot,
            trust_root: r.trustRoot,
            total_rewards: r.totalRewards.to_string(),
            model_status_hash: r.modelStatusHash,
        }
    }
}

impl ReportJson {
    /// Back to the signed struct (fails on a malformed amount).
    pub fn to_report(&self) -> Result<EpochReport, String> {
        let total: U256 = self
            .total_rewards
            .parse()
            .map_err(|e| format!("totalRewards `{}`: {e}", self.total_rewards))?;
        Ok(EpochReport {
            epoch: self.epoch,
            rewardsRoot: self.rewards_root,
            trustRoot: self.trust_root,
            totalRewards: total,
            modelStatusHash: self.model_status_hash,
        })
    }
}

/// One validator's signature of one epoch report (the file a co-signer reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedReport {
    /// Epoch number (repeated for `jq`).
    pub epoch: u64,
    /// The report that was signed.
    pub report: ReportJson,
    /// EIP-712 digest of the report (`Settlement.reportDigest`).
    pub digest: B256,
    /// The validator that signed.
    pub signer: Address,
    /// 65-byte ECDSA signature (r, s, v) over `digest`.
    pub signature: Bytes,
}

impl SignedReport {
    /// Whether the signature recovers to `signer` over `digest`.
    pub fn verify(&self) -> bool {
        Signature::try_from(self.signature.as_ref())
            .ok()
            .and_then(|s| s.recover_address_from_prehash(&self.digest).ok())
            == Some(self.signer)
    }
}

/// File name of `signer`'s signature of `epoch`.
pub fn file_name(epoch: u64, signer: Address) -> String {
    format!("epoch-{epoch}-{}.json", signer.to_string().to_lowercase())
}

/// Writes `signed` into `dir` atomically (temporary file, then rename), so a co-signer never
/// reads half a file.
pub fn write(dir: &Path, signed: &SignedReport) -> std::io::Result<PathBuf> {
    let path = dir.join(file_name(signed.epoch, signed.signer));
    let tmp = dir.join(format!(".{}.tmp", file_name(signed.epoch, signed.signer)));
    let json = serde_json::to_vec_pretty(signed).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// What reading the co-signers' files found.
#[derive(Debug, Default)]
pub struct Found {
    /// Valid signatures of the expected digest, one per signer.
    pub valid: BTreeMap<Address, Bytes>,
    /// Files that were unreadable, had a bad signature, or signed another report
    /// (path and reason), for the logs.
    pub rejected: Vec<(PathBuf, String)>,
}

/// Reads every `epoch-<epoch>-*.json` in `dir` and keeps the signatures of `digest` that
/// recover to their stated signer.
pub fn read_epoch(dir: &Path, epoch: u64, digest: B256) -> std::io::Result<Found> {
    let prefix = format!("epoch-{epoch}-");
    let mut found = Found::default();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !name.starts_with(&prefix) || !name.ends_with(".json") {
            continue;
        }
        let parsed = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<SignedReport>(&b).map_err(|e| e.to_string()));
        match parsed {
            Err(e) => found.rejected.push((path, format!("unreadable: {e}"))),
            Ok(s) if s.epoch != epoch => found
                .rejected
                .push((path, format!("holds epoch {}", s.epoch))),
            Ok(s) if s.digest != digest => found.rejected.push((
                path,
                format!(
                    "{} signed another report (digest {}, this verifier computed {digest})",
                    s.signer, s.digest
                ),
            )),
            Ok(s) if !s.verify() => found
                .rejected
                .push((path, format!("signature does not recover to {}", s.signer))),
            Ok(s) => {
                found.valid.insert(s.signer, s.signature);
            }
        }
    }
    Ok(found)
}

/// The quorum rule of `Settlement.postReport`: `3 * signed >= 2 * total` with `total > 0`.
pub fn has_quorum(signed: U256, total: U256) -> bool {
    !total.is_zero() && signed * U256::from(3) >= total * U256::from(2)
}

/// The signatures in the order the contract requires (strictly ascending signer).
pub fn ordered(signatures: &BTreeMap<Address, Bytes>) -> Vec<Bytes> {
    // A BTreeMap iterates in ascending key order, and Address orders as the uint160 Solidity
    // compares (big-endian bytes).
    signatures.values().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::PrivateKeySigner;
    use alloy::signers::SignerSync;

    fn report(epoch: u64) -> EpochReport {
        EpochReport {
            epoch,
            rewardsRoot: B256::repeat_byte(1),
            trustRoot: B256::repeat_byte(2),
            totalRewards: U256::from(123_456_789u64),
            modelStatusHash: B256::ZERO,
        }
    }

    fn signed(s: &PrivateKeySigner, r: &EpochReport, digest: B256) -> SignedReport {
        let sig = s.sign_hash_sync(&digest).unwrap();
        SignedReport {
            epoch: r.epoch,
            report: r.into(),
            digest,
            signer: s.address(),
            signature: Bytes::from(sig.as_bytes().to_vec()),
        }
    }

    #[test]
    fn quorum_is_two_thirds_of_stake() {
        assert!(has_quorum(U256::from(2), U256::from(3)));
        assert!(!has_quorum(U256::from(1), U256::from(2)));
        assert!(has_quorum(U256::from(5), U256::from(5)));
        assert!(!has_quorum(U256::ZERO, U256::ZERO));
        assert!(!has_quorum(U256::from(666), U256::from(1000)));
        assert!(has_quorum(U256::from(667), U256::from(1000)));
    }

    #[test]
    fn report_json_round_trips() {
        let r = report(7);
        let j = ReportJson::from(&r);
        let text = serde_json::to_string(&j).unwrap();
        assert!(text.contains("\"totalRewards\":\"123456789\""), "{text}");
        let back: ReportJson = serde_json::from_str(&text).unwrap();
        assert_eq!(back.to_report().unwrap(), r);
    }

    #[test]
    fn reads_only_valid_signatures_of_the_digest_in_ascending_order() {
        let dir = tempfile::tempdir().unwrap();
        let r = report(3);
        let digest = protocol::powr::report_digest(&r, 31337, Address::repeat_byte(9));
        let keys: Vec<PrivateKeySigner> = (0..3).map(|_| PrivateKeySigner::random()).collect();
        for k in &keys {
            write(dir.path(), &signed(k, &r, digest)).unwrap();
        }
        // A forged file: signer claims to be someone else.
        let mut forged = signed(&PrivateKeySigner::random(), &r, digest);
        forged.signer = Address::repeat_byte(0x42);
        std::fs::write(
            dir.path().join(file_name(3, forged.signer)),
            serde_json::to_vec(&forged).unwrap(),
        )
        .unwrap();
        // Another report, another epoch, garbage.
        let other = report(4);
        let other_digest = protocol::powr::report_digest(&other, 31337, Address::repeat_byte(9));
        let mut wrong = signed(&PrivateKeySigner::random(), &other, other_digest);
        wrong.epoch = 3;
        std::fs::write(
            dir.path().join(file_name(3, wrong.signer)),
            serde_json::to_vec(&wrong).unwrap(),
        )
        .unwrap();
        write(dir.path(), &signed(&keys[0], &other, other_digest)).unwrap();
        std::fs::write(dir.path().join("epoch-3-garbage.json"), b"{").unwrap();

        let found = read_epoch(dir.path(), 3, digest).unwrap();
        assert_eq!(found.valid.len(), 3, "{:?}", found.rejected);
        assert_eq!(found.rejected.len(), 3, "{:?}", found.rejected);
        let mut addrs: Vec<Address> = keys.iter().map(|k| k.address()).collect();
        addrs.sort();
        assert_eq!(found.valid.keys().copied().collect::<Vec<_>>(), addrs);
        let sigs = ordered(&found.valid);
        for (sig, a) in sigs.iter().zip(&addrs) {
            let s = Signature::try_from(sig.as_ref()).unwrap();
            assert_eq!(s.recover_address_from_prehash(&digest).unwrap(), *a);
        }
    }
}
