//! Signed audit verdicts (EIP-712, domain "DeepNode Validation" / "1") and the audit draw.
//!
//! Mirrors `contracts/libraries/Verdicts.sol` byte for byte: the struct hash, the signing
//! digest, signature recovery with OpenZeppelin's rules (65 bytes, `v` in {27, 28}, low `s`),
//! and the pure draw functions `audit_seed`, `is_audited` and `draw_index`. The vectors in
//! `test/Verdicts.t.sol` are pinned by the tests at the bottom of this file.

use alloy::primitives::{keccak256, Address, Signature, B256, U256};
use alloy::signers::SignerSync;
use alloy::sol_types::{Eip712Domain, SolStruct, SolValue};

/// EIP-712 domain name of the contract that accepts verdicts.
pub const VERDICT_DOMAIN_NAME: &str = "DeepNode Validation";
/// EIP-712 domain version of the contract that accepts verdicts.
pub const VERDICT_DOMAIN_VERSION: &str = "1";

/// Lowest quality an approving verdict may carry (`AuditManager.MIN_MATCH_QUALITY_PPM`): a result
/// the model's rule accepts counts as at least this good, so an approving validator cannot zero
/// the worker's quality.
pub const MIN_MATCH_QUALITY_PPM: u32 = 500_000;

/// The quality a verdict carries: a match is lifted to `MIN_MATCH_QUALITY_PPM`, a mismatch keeps
/// what was measured.
pub fn verdict_quality(matches: bool, measured_ppm: u32) -> u32 {
    if matches {
        measured_ppm.max(MIN_MATCH_QUALITY_PPM)
    } else {
        measured_ppm
    }
}

/// 1.0 in WAD (1e18), the unit of audit probabilities.
const WAD: u64 = 1_000_000_000_000_000_000;

/// secp256k1 group order / 2: OpenZeppelin's ECDSA rejects signatures with a larger `s`.
const HALF_ORDER: U256 = U256::from_be_bytes([
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
]);

alloy::sol! {
    /// A validator's verdict on one audited task: its own output hash next to the worker's,
    /// the quality score it measured (parts per million) and whether the outputs match under
    /// the model's comparison rule. Valid until `deadline` (unix seconds).
    #[derive(Debug, PartialEq, Eq)]
    struct Verdict {
        uint256 taskId;
        uint256 batchId;
        bytes32 workerOutputHash;
        bytes32 validatorOutputHash;
        uint32 qualityPpm;
        bool matches;
        uint64 deadline;
    }
}

impl Verdict {
    /// The same verdict as the contract bindings' argument type (`AuditManager.submitVerdicts`).
    pub fn to_call(&self) -> crate::bindings::Verdicts::Verdict {
        crate::bindings::Verdicts::Verdict {
            taskId: self.taskId,
            batchId: self.batchId,
            workerOutputHash: self.workerOutputHash,
            validatorOutputHash: self.validatorOutputHash,
            qualityPpm: self.qualityPpm,
            matches: self.matches,
            deadline: self.deadline,
        }
    }
}

/// Why a verdict could not be signed, recovered or drawn.
#[derive(Debug, thiserror::Error)]
pub enum VerdictError {
    /// The signer failed to sign the verdict digest.
    #[error("signing the verdict for task {task_id} failed: {source}")]
    Signing {
        /// Task of the verdict.
        task_id: U256,
        /// The signer's error.
        #[source]
        source: alloy::signers::Error,
    },
    /// The signature bytes are not what OpenZeppelin's ECDSA accepts.
    #[error("invalid verdict signature: {0}")]
    BadSignature(String),
    /// `draw_index` over an empty set.
    #[error("cannot draw an index among 0 candidates")]
    EmptyDraw,
}

/// EIP-712 domain of the validation contract at `contract` on `chain_id`.
pub fn verdict_domain(chain_id: u64, contract: Address) -> Eip712Domain {
    alloy::sol_types::eip712_domain! {
        name: VERDICT_DOMAIN_NAME,
        version: VERDICT_DOMAIN_VERSION,
        chain_id: chain_id,
        verifying_contract: contract,
    }
}

/// The EIP-712 struct hash of `verdict` (`Verdicts.hash`).
pub fn verdict_struct_hash(verdict: &Verdict) -> B256 {
    verdict.eip712_hash_struct()
}

/// The digest a validator signs (`Verdicts.digest(domainSeparator, verdict)`).
pub fn verdict_digest(verdict: &Verdict, chain_id: u64, contract: Address) -> B256 {
    verdict.eip712_signing_hash(&verdict_domain(chain_id, contract))
}

/// Signs `verdict` for the validation contract at `contract` on `chain_id`.
pub fn sign_verdict<S>(
    signer: &S,
    verdict: &Verdict,
    chain_id: u64,
    contract: Address,
) -> Result<Signature, VerdictError>
where
    S: SignerSync + ?Sized,
{
    let digest = verdict_digest(verdict, chain_id, contract);
    let sig = signer
        .sign_hash_sync(&digest)
        .map_err(|source| VerdictError::Signing {
            task_id: verdict.taskId,
            source,
        })?;
    tracing::debug!(task_id = %verdict.taskId, %digest, "signed verdict");
    Ok(sig)
}

/// The 65 bytes `r || s || v` (v = 27 or 28) that the contract takes.
pub fn signature_bytes(sig: &Signature) -> [u8; 65] {
    sig.as_bytes()
}

alloy::sol! {
    /// What a forced error's submitter and its worker each sign to let `planter` reveal it
    /// (`AuditManager.FORCED_ERROR_TYPEHASH`, AuditManager's EIP-712 domain).
    struct ForcedError {
        uint256 taskId;
        address planter;
    }
}

/// `signer`'s consent to `planter` revealing `task_id` as a forced error: the 65-byte signature
/// `AuditManager.revealForcedError` takes from the task's submitter and from its worker.
pub fn forced_error_consent<S: SignerSync>(
    signer: &S,
    chain_id: u64,
    audit_manager: Address,
    task_id: U256,
    planter: Address,
) -> Result<[u8; 65], alloy::signers::Error> {
    let digest = ForcedError {
        taskId: task_id,
        planter,
    }
    .eip712_signing_hash(&verdict_domain(chain_id, audit_manager));
    Ok(signature_bytes(&signer.sign_hash_sync(&digest)?))
}

/// Address that signed `verdict` with `signature` (65 bytes `r || s || v`), under the same
/// rules as `Verdicts.recover` (OpenZeppelin ECDSA): exactly 65 bytes, `v` in {27, 28}, `s` in
/// the lower half of the curve order. A signature over another verdict, contract or chain
/// recovers some other address, as on-chain.
pub fn recover_verdict_signer(
    verdict: &Verdict,
    chain_id: u64,
    contract: Address,
    signature: &[u8],
) -> Result<Address, VerdictError> {
    let raw: &[u8; 65] = signature.try_into().map_err(|_| {
        VerdictError::BadSignature(format!(
            "expected 65 bytes (r, s, v), got {}",
            signature.len()
        ))
    })?;
    let v = raw[64];
    if v != 27 && v != 28 {
        return Err(VerdictError::BadSignature(format!(
            "v must be 27 or 28, got {v}"
        )));
    }
    let sig = Signature::from_bytes_and_parity(&raw[..64], v == 28);
    if sig.s() > HALF_ORDER {
        return Err(VerdictError::BadSignature(
            "s is in the upper half of the curve order (malleable)".into(),
        ));
    }
    let digest = verdict_digest(verdict, chain_id, contract);
    sig.recover_address_from_prehash(&digest)
        .map_err(|e| VerdictError::BadSignature(format!("recovery failed: {e}")))
}

// ------------------------------------------------------------------ audit draw

/// Seed of the audit draw for `task_id`: `keccak256(abi.encode(randomness, taskId))`, where
/// `randomness` did not exist when the worker committed.
pub fn audit_seed(randomness: B256, task_id: U256) -> B256 {
    keccak256((randomness, task_id).abi_encode())
}

/// Whether the task with `seed` is audited at probability `p_wad` (1e18 = always):
/// `uint256(seed) % 1e18 < pWad`.
pub fn is_audited(seed: B256, p_wad: u64) -> bool {
    U256::from_be_bytes(seed.0) % U256::from(WAD) < U256::from(p_wad)
}

/// Index in `[0, n)` picked by `seed`, independent of `is_audited`'s draw:
/// `uint256(keccak256(abi.encode(seed))) % n`.
pub fn draw_index(seed: B256, n: u64) -> Result<u64, VerdictError> {
    if n == 0 {
        return Err(VerdictError::EmptyDraw);
    }
    let h = U256::from_be_bytes(keccak256(seed.abi_encode()).0);
    Ok((h % U256::from(n)).to::<u64>())
}

#[cfg(test)]
mod tests {
    //! Values pinned on both sides: test/Verdicts.t.sol checks this digest, recovers this
    //! signature and counts the same audited seeds (`test_RustVectors_*`).
    use super::*;
    use crate::wallet::ANVIL_DEV_KEYS;
    use alloy::signers::local::PrivateKeySigner;

    const CHAIN: u64 = 31337;

    fn b(s: &str) -> B256 {
        s.parse().expect("hex literal")
    }

    fn contract() -> Address {
        "0x7e2d100000000000000000000000000000000001"
            .parse()
            .expect("address literal")
    }

    fn fixed_verdict() -> Verdict {
        Verdict {
            taskId: U256::from(42u8),
            batchId: U256::from(7u8),
            workerOutputHash: keccak256(b"worker output"),
            validatorOutputHash: keccak256(b"validator output"),
            qualityPpm: 987_654,
            matches: true,
            deadline: 1_900_000_000,
        }
    }

    fn signer4() -> PrivateKeySigner {
        ANVIL_DEV_KEYS[4].parse().expect("anvil key 4")
    }

    #[test]
    fn vectors_shared_with_verdicts_t_sol() {
        let v = fixed_verdict();
        let signer = signer4();
        assert_eq!(
            signer.address(),
            "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
                .parse::<Address>()
                .unwrap()
        );
        let struct_hash = verdict_struct_hash(&v);
        let digest = verdict_digest(&v, CHAIN, contract());
        let sig = sign_verdict(&signer, &v, CHAIN, contract()).unwrap();
        let bytes = signature_bytes(&sig);
        println!("struct hash {struct_hash}");
        println!("digest {digest}");
        println!("signature 0x{}", alloy::hex::encode(bytes));
        // the type string the contract hashes
        assert_eq!(
            keccak256(
                "Verdict(uint256 taskId,uint256 batchId,bytes32 workerOutputHash,\
                 bytes32 validatorOutputHash,uint32 qualityPpm,bool matches,uint64 deadline)"
            ),
            v.eip712_type_hash()
        );
        assert_eq!(
            struct_hash,
            b("0xa870eec7ff37f018f2501d740577cd86f89d090be9fb73ab9fc8862cd23f9aec")
        );
        assert_eq!(
            digest,
            b("0xcdfa3e1604e07d489ec4ab33a966b29b37254965525d8b863847e1e3631aad01")
        );
        assert_eq!(
            alloy::hex::encode(bytes),
            "a41696864be9dbcc075eec6218114ac799e0643ad47b07be16a4a0074f4540f4222389f6e83aa30b40502cb4e0903f462b2dbb084707c63e2e1f11493e257cfe1c"
        );
        assert_eq!(
            recover_verdict_signer(&v, CHAIN, contract(), &bytes).unwrap(),
            signer.address()
        );
    }

    #[test]
    fn signature_does_not_replay_across_fields_chains_or_contracts() {
        let v = fixed_verdict();
        let signer = signer4();
        let sig = signature_bytes(&sign_verdict(&signer, &v, CHAIN, contract()).unwrap());
        let base = verdict_digest(&v, CHAIN, contract());

        let mut variants: Vec<(&str, Verdict)> = Vec::new();
        let mut x = fixed_verdict();
        x.taskId += U256::from(1u8);
        variants.push(("taskId", x));
        let mut x = fixed_verdict();
        x.batchId += U256::from(1u8);
        variants.push(("batchId", x));
        let mut x = fixed_verdict();
        x.workerOutputHash = keccak256(b"other");
        variants.push(("workerOutputHash", x));
        let mut x = fixed_verdict();
        x.validatorOutputHash = keccak256(b"other");
        variants.push(("validatorOutputHash", x));
        let mut x = fixed_verdict();
        x.qualityPpm += 1;
        variants.push(("qualityPpm", x));
        let mut x = fixed_verdict();
        x.matches = !x.matches;
        variants.push(("matches", x));
        let mut x = fixed_verdict();
        x.deadline += 1;
        variants.push(("deadline", x));

        for (field, other) in &variants {
            assert_ne!(verdict_digest(other, CHAIN, contract()), base, "{field}");
            let who = recover_verdict_signer(other, CHAIN, contract(), &sig).unwrap();
            assert_ne!(who, signer.address(), "replay with another {field}");
        }
        let other_chain = 1;
        assert_ne!(verdict_digest(&v, other_chain, contract()), base);
        assert_ne!(
            recover_verdict_signer(&v, other_chain, contract(), &sig).unwrap(),
            signer.address()
        );
        let other_contract = Address::with_last_byte(2);
        assert_ne!(verdict_digest(&v, CHAIN, other_contract), base);
        assert_ne!(
            recover_verdict_signer(&v, CHAIN, other_contract, &sig).unwrap(),
            signer.address()
        );
    }

    #[test]
    fn malformed_signatures_are_rejected_like_openzeppelin() {
        let v = fixed_verdict();
        let signer = signer4();
        let sig = signature_bytes(&sign_verdict(&signer, &v, CHAIN, contract()).unwrap());
        let err = recover_verdict_signer(&v, CHAIN, contract(), &sig[..64]).unwrap_err();
        assert!(err.to_string().contains("expected 65 bytes"), "{err}");
        let mut bad_v = sig;
        bad_v[64] = 1;
        let err = recover_verdict_signer(&v, CHAIN, contract(), &bad_v).unwrap_err();
        assert!(err.to_string().contains("v must be 27 or 28"), "{err}");
        // the malleable twin (n - s, flipped v) recovers the same key but is refused
        let s = U256::from_be_slice(&sig[32..64]);
        let n = HALF_ORDER * U256::from(2u8) + U256::from(1u8);
        let mut twin = sig;
        twin[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
        twin[64] = if sig[64] == 27 { 28 } else { 27 };
        let err = recover_verdict_signer(&v, CHAIN, contract(), &twin).unwrap_err();
        assert!(err.to_string().contains("upper half"), "{err}");
        // forged bytes (valid shape) recover someone else
        let mut forged = [0u8; 65];
        forged[..32].copy_from_slice(keccak256(b"forged r").as_slice());
        forged[32..64].copy_from_slice(
            &(U256::from_be_slice(keccak256(b"forged s").as_slice()) >> 2usize).to_be_bytes::<32>(),
        );
        forged[64] = 27;
        match recover_verdict_signer(&v, CHAIN, contract(), &forged) {
            Ok(who) => assert_ne!(who, signer.address()),
            Err(e) => assert!(e.to_string().contains("recovery failed"), "{e}"),
        }
    }

    /// Seeds of test/Verdicts.t.sol: `auditSeed(keccak256("deepnode audit draw"), i)`, i < 10,000.
    fn count_audited(p_wad: u64) -> usize {
        let randomness = keccak256(b"deepnode audit draw");
        (0..10_000u64)
            .filter(|i| is_audited(audit_seed(randomness, U256::from(*i)), p_wad))
            .count()
    }

    #[test]
    fn audit_draw_frequency_and_vectors() {
        let seed = audit_seed(keccak256(b"deepnode audit draw"), U256::from(42u8));
        println!("seed(42) {seed}");
        assert_eq!(
            seed,
            b("0x12767e42e6369761ae52a630571bb2c987839f4bdca0ed11af34b77a4a34e3a7")
        );
        assert_eq!(draw_index(seed, 7).unwrap(), 4);
        let count = count_audited(WAD / 50);
        println!("audited at p=0.02: {count}");
        // expected 200, sd ~14: the band is +-4 sd; the exact count is pinned in Solidity too
        assert!((144..=256).contains(&count), "{count}");
        assert_eq!(count, 197);
        assert_eq!(count_audited(0), 0);
        assert_eq!(count_audited(WAD), 10_000);
        // the boundary: seed % 1e18 == p is not audited, one more is
        let s = B256::from(U256::from(5u8) * U256::from(WAD) + U256::from(123u8));
        assert!(!is_audited(s, 123));
        assert!(is_audited(s, 124));
    }

    #[test]
    fn draw_index_covers_the_range_and_rejects_empty() {
        assert!(matches!(
            draw_index(B256::ZERO, 0),
            Err(VerdictError::EmptyDraw)
        ));
        let randomness = keccak256(b"deepnode audit draw");
        let mut hits = [0u32; 5];
        for i in 0..1000u64 {
            let k = draw_index(audit_seed(randomness, U256::from(i)), 5).unwrap();
            hits[k as usize] += 1;
        }
        assert!(hits.iter().all(|h| (150..=250).contains(h)), "{hits:?}");
        assert_eq!(draw_index(B256::ZERO, 1).unwrap(), 0);
    }

    #[test]
    fn approving_verdicts_carry_at_least_the_contract_floor() {
        assert_eq!(verdict_quality(true, 0), MIN_MATCH_QUALITY_PPM);
        assert_eq!(verdict_quality(true, 990_000), 990_000);
        assert_eq!(verdict_quality(false, 0), 0);
        assert_eq!(verdict_quality(false, 700_000), 700_000);
    }
}
