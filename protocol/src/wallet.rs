//! Loading the operator's key (`--private-key`, `--keystore` + `--password-file`) and refusing
//! anvil's public development keys anywhere but a local devnet.

use crate::{ProtocolError, DEVNET_CHAIN_ID};
use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use std::path::PathBuf;

/// Key flags, named as in foundry.
#[derive(Clone, clap::Args)]
pub struct KeyArgs {
    /// Hex private key of the node's wallet (prefer --keystore; a key on the command line is
    /// visible to other local users).
    #[arg(
        long = "private-key",
        env = "DN_PRIVATE_KEY",
        value_name = "HEX",
        hide_env_values = true
    )]
    pub private_key: Option<String>,
    /// Encrypted JSON keystore (as written by `cast wallet new`).
    #[arg(
        long = "keystore",
        env = "ETH_KEYSTORE",
        value_name = "FILE",
        conflicts_with = "private_key"
    )]
    pub keystore: Option<PathBuf>,
    /// File holding the keystore password.
    #[arg(
        long = "password-file",
        env = "ETH_PASSWORD_FILE",
        value_name = "FILE",
        requires = "keystore"
    )]
    pub password_file: Option<PathBuf>,
}

impl std::fmt::Debug for KeyArgs {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyArgs")
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "<redacted>"),
            )
            .field("keystore", &self.keystore)
            .field("password_file", &self.password_file)
            .finish()
    }
}

impl KeyArgs {
    /// Key args for a raw key (tests, the demo).
    pub fn from_key(key: &str) -> Self {
        Self {
            private_key: Some(key.to_string()),
            keystore: None,
            password_file: None,
        }
    }

    /// The signer these flags describe.
    pub fn signer(&self) -> Result<PrivateKeySigner, ProtocolError> {
        if let Some(key) = &self.private_key {
            return key.trim().parse::<PrivateKeySigner>().map_err(|_| {
                ProtocolError::Key(
                    "--private-key / DN_PRIVATE_KEY: not a 32-byte hex private key".into(),
                )
            });
        }
        if let Some(path) = &self.keystore {
            let pw_path = self.password_file.as_ref().ok_or_else(|| {
                ProtocolError::Key(format!(
                    "--keystore {}: also pass --password-file",
                    path.display()
                ))
            })?;
            let password = std::fs::read_to_string(pw_path).map_err(|e| {
                ProtocolError::Key(format!("--password-file {}: {e}", pw_path.display()))
            })?;
            return PrivateKeySigner::decrypt_keystore(
                path,
                password.trim_end_matches(['\n', '\r']),
            )
            .map_err(|e| ProtocolError::Key(format!("--keystore {}: {e}", path.display())));
        }
        Err(ProtocolError::Key("no wallet key: pass --private-key (or DN_PRIVATE_KEY) or --keystore with --password-file".into()))
    }
}

/// anvil's first twenty private keys (mnemonic "test test ... junk", indices 0..19; anvil prints
/// the first ten by default, the devnet starts it with `--accounts 20`): public knowledge, so any
/// funds behind them on a real chain are lost at once.
pub const ANVIL_DEV_KEYS: [&str; 20] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
    "0xf214f2b2cd398c806f84e317254e0f0b801d0643303237d97a22a48e01628897",
    "0x701b615bbdfb9de65240bc28bd21bbc0d996645a3dd57e7b12bc2bdf6f192c82",
    "0xa267530f49f8280200edf313ee7af6b827f2a8bce2897751d06a843f644967b1",
    "0x47c99abed3324a2707c28affff1267e45918ec8c3f20b8aa892e8b065d2942dd",
    "0xc526ee95bf44d8fc405a158bb884d9d1238d99f0612e9f33d006bb0789009aaa",
    "0x8166f546bab6da521a8369cab06c5d2b9e46670292d85c875ee9ec20e84ffb61",
    "0xea6c44ac03bff858b476bba40716402b03e41b8e97e276d1baec7c37d42484a0",
    "0x689af8efa8c651a91ad287602527f3af2fe9f6501a7ac4b061667b5a93e037fd",
    "0xde9be858da4a475276426320d5e9262ecfc3ba460bfac56360bfa6c4c28b4ee0",
    "0xdf57089febbacf7ba0bc227dafbffa9fc08a93fdc68e1e42411a14efcf23656e",
];

/// Addresses of [`ANVIL_DEV_KEYS`].
pub fn anvil_dev_addresses() -> Vec<Address> {
    ANVIL_DEV_KEYS
        .iter()
        .filter_map(|k| k.parse::<PrivateKeySigner>().ok())
        .map(|s| s.address())
        .collect()
}

/// Refuses a well-known development key on any chain but the local devnet.
pub fn refuse_dev_key_off_devnet(
    signer: &PrivateKeySigner,
    chain_id: u64,
) -> Result<(), ProtocolError> {
    if chain_id != DEVNET_CHAIN_ID && anvil_dev_addresses().contains(&signer.address()) {
        return Err(ProtocolError::DevKeyOnPublicChain {
            address: signer.address(),
            chain_id,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_keys_are_the_anvil_accounts() {
        let addrs = anvil_dev_addresses();
        assert_eq!(addrs.len(), 20);
        let distinct: std::collections::BTreeSet<_> = addrs.iter().collect();
        assert_eq!(distinct.len(), 20);
        // indices 10 and 19 of the mnemonic (`cast wallet address --mnemonic ... --mnemonic-index N`)
        assert_eq!(
            addrs[10],
            "0xBcd4042DE499D14e55001CcbB24a551F3b954096"
                .parse::<Address>()
                .unwrap()
        );
        assert_eq!(
            addrs[19],
            "0x8626f6940E2eb28930eFb4CeF49B2d1F2C9C1199"
                .parse::<Address>()
                .unwrap()
        );
        assert_eq!(
            addrs[0],
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
                .parse::<Address>()
                .unwrap()
        );
        assert_eq!(
            addrs[9],
            "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"
                .parse::<Address>()
                .unwrap()
        );
    }

    #[test]
    fn dev_key_refused_off_devnet_only() {
        let s: PrivateKeySigner = ANVIL_DEV_KEYS[1].parse().unwrap();
        assert!(refuse_dev_key_off_devnet(&s, DEVNET_CHAIN_ID).is_ok());
        let e = refuse_dev_key_off_devnet(&s, 5151).unwrap_err().to_string();
        assert!(e.contains("5151") && e.contains("development key"), "{e}");
        let own = PrivateKeySigner::random();
        assert!(refuse_dev_key_off_devnet(&own, 1).is_ok());
    }

    #[test]
    fn bad_key_and_missing_key_errors_name_the_flag() {
        let e = KeyArgs::from_key("0x1234")
            .signer()
            .unwrap_err()
            .to_string();
        assert!(e.contains("--private-key"), "{e}");
        assert!(!e.contains("0x1234"), "the key must not be echoed: {e}");
        let none = KeyArgs {
            private_key: None,
            keystore: None,
            password_file: None,
        };
        assert!(none
            .signer()
            .unwrap_err()
            .to_string()
            .contains("--keystore"));
        assert!(!format!("{:?}", KeyArgs::from_key(ANVIL_DEV_KEYS[0])).contains("ac0974"));
    }

    #[test]
    fn keystore_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rand::thread_rng();
        let (signer, name) =
            PrivateKeySigner::new_keystore(dir.path(), &mut rng, "pw", None).unwrap();
        let pw = dir.path().join("pw.txt");
        std::fs::write(&pw, "pw\n").unwrap();
        let args = KeyArgs {
            private_key: None,
            keystore: Some(dir.path().join(name)),
            password_file: Some(pw.clone()),
        };
        assert_eq!(args.signer().unwrap().address(), signer.address());
        std::fs::write(&pw, "wrong").unwrap();
        assert!(args
            .signer()
            .unwrap_err()
            .to_string()
            .contains("--keystore"));
    }
}
