//! `deployments/<chainId>.json`, written by `script/Deploy.s.sol` and read by every service.

use crate::ProtocolError;
use alloy::primitives::Address;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Addresses of one DeepNode deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// Chain the contracts live on.
    pub chain_id: u64,
    /// Block the deployment started at (indexers backfill from here).
    pub start_block: u64,
    /// DN token.
    pub token: Address,
    /// Staking.
    pub staking: Address,
    /// ModelRegistry (marketplace + sortition).
    pub model_registry: Address,
    /// TaskManager (escrow, assignment, commits, finalization).
    pub task_manager: Address,
    /// Receives the protocol fee share.
    pub treasury: Address,
    /// Receives the validator fee share until validation settles it.
    pub validator_pool: Address,
    /// Settlement: epoch reports, emissions, reward claims, trust refresh.
    pub settlement: Address,
    /// AuditManager: audit draw, verdicts, disputes, slashing, challenges, canaries.
    pub audit_manager: Address,
    /// The OpenZeppelin TimelockController holding every admin role (zero in files written before
    /// the admin moved behind a timelock).
    #[serde(default)]
    pub admin_timelock: Address,
    /// ProbeRegistry: the probe emission switch and the probe wallets revealed after each epoch
    /// (zero in files written before it was deployed, so `load` accepts zero here).
    #[serde(default)]
    pub probe_registry: Address,
}

impl Deployment {
    /// `deployments/<chainId>.json` relative to the working directory.
    pub fn default_path(chain_id: u64) -> PathBuf {
        PathBuf::from("deployments").join(format!("{chain_id}.json"))
    }

    /// Reads and validates a deployment file: every contract address is non-zero, except the
    /// fields older files lack (`admin_timelock`, `probe_registry`), which read as zero.
    pub fn load(path: &Path) -> Result<Self, ProtocolError> {
        let err = |reason: String| ProtocolError::Deployment {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let d: Deployment =
            serde_json::from_str(&text).map_err(|e| err(format!("invalid JSON: {e}")))?;
        for (name, a) in [
            ("token", d.token),
            ("staking", d.staking),
            ("modelRegistry", d.model_registry),
            ("taskManager", d.task_manager),
            ("settlement", d.settlement),
            ("auditManager", d.audit_manager),
        ] {
            if a == Address::ZERO {
                return Err(err(format!("{name} is the zero address")));
            }
        }
        Ok(d)
    }

    /// Loads and checks that the file matches the chain the RPC serves.
    pub fn load_for_chain(path: &Path, rpc_chain: u64) -> Result<Self, ProtocolError> {
        let d = Self::load(path)?;
        if d.chain_id != rpc_chain {
            return Err(ProtocolError::ChainMismatch {
                path: path.to_path_buf(),
                file_chain: d.chain_id,
                rpc_chain,
            });
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"chainId":31337,"startBlock":3,
      "token":"0x5FbDB2315678afecb367f032d93F642f64180aa3",
      "staking":"0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
      "modelRegistry":"0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
      "taskManager":"0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9",
      "treasury":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
      "validatorPool":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
      "settlement":"0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9",
      "auditManager":"0x5FC8d32690cc91D4c39d9d3abcBD16989F875707",
      "adminTimelock":"0x0165878A594ca255338adfa4d48449f69242Eb8F"}"#;

    #[test]
    fn loads_and_checks_chain() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("31337.json");
        std::fs::write(&p, SAMPLE).unwrap();
        let d = Deployment::load_for_chain(&p, 31337).unwrap();
        assert_eq!(d.start_block, 3);
        assert_eq!(
            d.admin_timelock,
            "0x0165878A594ca255338adfa4d48449f69242Eb8F"
                .parse::<Address>()
                .unwrap()
        );
        let e = Deployment::load_for_chain(&p, 1).unwrap_err().to_string();
        assert!(e.contains("chain 31337") && e.contains("chain 1"), "{e}");
        // written before the ProbeRegistry: zero, and accepted
        assert_eq!(d.probe_registry, Address::ZERO);
        let probes = "0xa513E6E4b8f2a923D98304ec87F64353C4D5C853";
        std::fs::write(
            &p,
            SAMPLE.replace('}', &format!(r#","probeRegistry":"{probes}"}}"#)),
        )
        .unwrap();
        let d = Deployment::load(&p).unwrap();
        assert_eq!(d.probe_registry, probes.parse::<Address>().unwrap());
    }

    #[test]
    fn missing_and_bad_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope.json");
        let e = Deployment::load(&p).unwrap_err().to_string();
        assert!(e.contains("nope.json"), "{e}");
        std::fs::write(&p, "{").unwrap();
        let e = Deployment::load(&p).unwrap_err().to_string();
        assert!(e.contains("invalid JSON"), "{e}");
        std::fs::write(
            &p,
            SAMPLE.replace(
                "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                "0x0000000000000000000000000000000000000000",
            ),
        )
        .unwrap();
        let e = Deployment::load(&p).unwrap_err().to_string();
        assert!(e.contains("token is the zero address"), "{e}");
    }
}
