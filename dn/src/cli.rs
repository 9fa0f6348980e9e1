//! The command line: subcommands and flags, named as in foundry's cast (`--rpc-url`,
//! `--private-key`, `--keystore`, `--password-file`, `--json`).

use alloy::primitives::{Address, U256};
use clap::{Parser, Subcommand, ValueEnum};
use protocol::rpc::RpcArgs;
use protocol::wallet::KeyArgs;
use std::path::PathBuf;

/// `dn`: the DeepNode command line for users and model developers.
///
/// Publish a model bundle and set its price, run a task and get its verified output, rate or
/// challenge a result, stake, unstake and withdraw, and claim epoch rewards. Amounts are in DN
/// with up to 18 decimals (`1.5`). Every command prints text for people, or one JSON object with
/// --json (errors too: `{"error": ...}`); progress goes to stderr. The chain is --rpc-url
/// (ETH_RPC_URL), its contracts come from deployments/<chainId>.json or --deployment, and the
/// wallet is --private-key (DN_PRIVATE_KEY) or --keystore with --password-file.
#[derive(Debug, Parser)]
#[command(name = "dn", version, about, long_about)]
pub struct Cli {
    /// Print one JSON object on stdout instead of text (an error prints {"error": "..."}).
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Publish models, list the registry, set a model's price.
    #[command(subcommand)]
    Model(ModelCmd),
    /// Submit a task, wait for its worker's answer, check it against the committed hash and
    /// print it.
    Run(RunArgs),
    /// Inspect, rate or challenge a task.
    #[command(subcommand)]
    Task(TaskCmd),
    /// Claim epoch rewards.
    #[command(subcommand)]
    Rewards(RewardsCmd),
    /// Stake DN as a worker or validator (approves the Staking contract first when needed).
    Stake(StakeArgs),
    /// Start unbonding staked DN (withdrawable after the unbonding period, slashable until then).
    Unstake(UnstakeArgs),
    /// Withdraw every unbonding entry whose release time has passed.
    Withdraw(WalletArgs),
    /// DN balance, stake, unbonding entries and TaskManager payout of an address.
    Balance(BalanceArgs),
}

/// Chain flags of commands that only read.
#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    #[command(flatten)]
    pub rpc: RpcArgs,
}

/// Chain and wallet flags of commands that send transactions.
#[derive(Debug, clap::Args)]
pub struct WalletArgs {
    #[command(flatten)]
    pub rpc: RpcArgs,
    #[command(flatten)]
    pub key: KeyArgs,
}

/// `dn model ...`
#[derive(Debug, Subcommand)]
pub enum ModelCmd {
    /// Publish a model bundle: check every part against the manifest, upload the parts and a
    /// store-layout manifest to a blob store, and register the manifest in the ModelRegistry
    /// (paying the listing bond). Prints the new model id.
    Publish(PublishArgs),
    /// The registry's models: id, kind, price, status, workers, developer and URI (with
    /// --indexer-url also measured quality and latency).
    List(ListArgs),
    /// Set the price per call of your model (its developer only; applies to later tasks).
    Price(PriceArgs),
}

/// `dn model publish`
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// Bundle directory: manifest.json and the part files it names.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Blob store service (the `blobstore` binary's base URL) that will serve the bundle to
    /// workers.
    #[arg(long, value_name = "URL", env = "DN_BLOB_STORE")]
    pub blob_store: String,
    /// Price per call in DN (e.g. 0.5).
    #[arg(long, value_name = "DN", value_parser = crate::units::parse_dn)]
    pub price: U256,
    /// Compute units charged per call [default: the manifest's compute_units].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub compute_units: Option<u32>,
    /// Seconds one upload may take.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub upload_timeout: u64,
    #[command(flatten)]
    pub wallet: WalletArgs,
}

/// `dn model list`
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The indexer's REST API (e.g. http://127.0.0.1:8080), for measured quality and latency.
    #[arg(long, value_name = "URL", env = "DN_INDEXER_URL")]
    pub indexer_url: Option<String>,
    #[command(flatten)]
    pub chain: ReadArgs,
}

/// `dn model price`
#[derive(Debug, clap::Args)]
pub struct PriceArgs {
    /// The model id.
    #[arg(value_name = "ID")]
    pub id: u32,
    /// New price per call in DN.
    #[arg(value_name = "PRICE", value_parser = crate::units::parse_dn)]
    pub price: U256,
    #[command(flatten)]
    pub wallet: WalletArgs,
}

/// `dn run`
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The model id (see `dn model list`).
    #[arg(value_name = "MODEL")]
    pub model: u32,
    /// The input: a string (its UTF-8 bytes), `@PATH` for a file's bytes, `-` for stdin
    /// (`@@...` for a string that starts with `@`).
    #[arg(value_name = "INPUT")]
    pub input: String,
    /// Most DN to pay for the task [default: the model's current price].
    #[arg(long, value_name = "DN", value_parser = crate::units::parse_dn)]
    pub max_fee: Option<U256>,
    /// Seconds to wait for the worker's answer (the task stays on-chain afterwards; its fee is
    /// refunded if the worker misses its deadline).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub timeout: u64,
    /// Blob store service for inputs too large to submit inline, and for outputs whose
    /// reference names no URL.
    #[arg(long, value_name = "URL", env = "DN_BLOB_STORE")]
    pub blob_store: Option<String>,
    /// Write the output bytes to FILE instead of printing them.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub wallet: WalletArgs,
}

/// `dn task ...`
#[derive(Debug, Subcommand)]
pub enum TaskCmd {
    /// A task's status, model, submitter, worker, fee, code, deadline and audit state.
    Get(TaskGetArgs),
    /// Rate a task's result 0..100 (its submitter only, once; feeds the model's quality).
    Rate(TaskRateArgs),
    /// Challenge a committed result (its submitter only, inside the challenge window): proves
    /// the commitment with a Merkle proof of its batch and pays the challenge bond; a validator
    /// quorum then decides (bond back and fee refunded on fraud, bond to the worker otherwise).
    Challenge(TaskChallengeArgs),
}

/// `dn task get`
#[derive(Debug, clap::Args)]
pub struct TaskGetArgs {
    /// The task id.
    #[arg(value_name = "ID")]
    pub id: U256,
    #[command(flatten)]
    pub chain: ReadArgs,
}

/// `dn task rate`
#[derive(Debug, clap::Args)]
pub struct TaskRateArgs {
    /// The task id.
    #[arg(value_name = "ID")]
    pub id: U256,
    /// Score from 0 (useless) to 100 (perfect).
    #[arg(value_name = "SCORE", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub score: u8,
    #[command(flatten)]
    pub wallet: WalletArgs,
}

/// `dn task challenge`
#[derive(Debug, clap::Args)]
pub struct TaskChallengeArgs {
    /// The task id.
    #[arg(value_name = "ID")]
    pub id: U256,
    #[command(flatten)]
    pub wallet: WalletArgs,
}

/// `dn rewards ...`
#[derive(Debug, Subcommand)]
pub enum RewardsCmd {
    /// Claim this wallet's reward of every reported epoch not claimed yet, with the indexer's
    /// Merkle proofs (Settlement.claim); prints each epoch's amount and transaction.
    Claim(ClaimArgs),
}

/// `dn rewards claim`
#[derive(Debug, clap::Args)]
pub struct ClaimArgs {
    /// The indexer's REST API (e.g. http://127.0.0.1:8080), which serves the reward proofs.
    #[arg(long, value_name = "URL", env = "DN_INDEXER_URL")]
    pub indexer_url: String,
    /// Only this epoch [default: every reported epoch].
    #[arg(long, value_name = "N")]
    pub epoch: Option<u64>,
    #[command(flatten)]
    pub wallet: WalletArgs,
}

/// A staking role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Runs tasks (drawn by stake x trust).
    Worker,
    /// Audits results and signs epoch reports.
    Validator,
}

impl Role {
    /// The on-chain role number.
    pub fn id(self) -> u8 {
        match self {
            Role::Worker => protocol::bindings::ROLE_WORKER,
            Role::Validator => protocol::bindings::ROLE_VALIDATOR,
        }
    }

    /// The role's name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Validator => "validator",
        }
    }
}

/// `dn stake`
#[derive(Debug, clap::Args)]
pub struct StakeArgs {
    /// DN to add to the stake.
    #[arg(value_name = "AMOUNT", value_parser = crate::units::parse_dn)]
    pub amount: U256,
    /// The role to stake for.
    #[arg(long, value_enum, default_value_t = Role::Worker)]
    pub role: Role,
    #[command(flatten)]
    pub wallet: WalletArgs,
}

/// `dn unstake`
#[derive(Debug, clap::Args)]
pub struct UnstakeArgs {
    /// DN to unbond.
    #[arg(value_name = "AMOUNT", value_parser = crate::units::parse_dn)]
    pub amount: U256,
    /// The role to unstake from.
    #[arg(long, value_enum, default_value_t = Role::Worker)]
    pub role: Role,
    #[command(flatten)]
    pub wallet: WalletArgs,
}

/// `dn balance`
#[derive(Debug, clap::Args)]
pub struct BalanceArgs {
    /// The address [default: the wallet's, from --private-key or --keystore].
    #[arg(value_name = "ADDRESS")]
    pub address: Option<Address>,
    #[command(flatten)]
    pub wallet: WalletArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_amounts_and_global_json() {
        let cli = Cli::try_parse_from(["dn", "run", "3", "@in.bin", "--max-fee", "1.5", "--json"])
            .unwrap();
        assert!(cli.json);
        let Cmd::Run(r) = cli.cmd else { panic!() };
        assert_eq!(r.model, 3);
        assert_eq!(r.input, "@in.bin");
        assert_eq!(r.max_fee, Some(U256::from(1_500_000_000_000_000_000u128)));
        let e = Cli::try_parse_from(["dn", "model", "price", "1", "0.1234567890123456789"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("19 decimals"), "{e}");
        let e = Cli::try_parse_from(["dn", "task", "rate", "1", "101"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("101"), "{e}");
        let cli = Cli::try_parse_from(["dn", "run", "1", "-"]).unwrap();
        let Cmd::Run(r) = cli.cmd else { panic!() };
        assert_eq!(r.input, "-");
        let cli =
            Cli::try_parse_from(["dn", "--json", "stake", "100", "--role", "validator"]).unwrap();
        let Cmd::Stake(s) = cli.cmd else { panic!() };
        assert_eq!(s.role, Role::Validator);
    }
}
