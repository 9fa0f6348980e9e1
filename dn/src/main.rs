//! `dn`: the DeepNode command line (see `dn --help`).

mod chain;
mod cli;
mod indexer;
mod model;
mod output;
mod rewards;
mod stake;
mod task;
mod units;

use clap::Parser;
use cli::{Cli, Cmd, ModelCmd, RewardsCmd, TaskCmd};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(cli.cmd));
    let mut stdout = std::io::stdout().lock();
    match result {
        Ok(report) => {
            let written = if json {
                writeln!(stdout, "{}", report.json)
            } else if report.text.ends_with('\n') {
                write!(stdout, "{}", report.text)
            } else {
                writeln!(stdout, "{}", report.text)
            };
            match written.and_then(|_| stdout.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: writing the result: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            let message = chain::one_line(&format!("{e:#}"));
            if json {
                let _ = writeln!(stdout, "{}", output::error_json(&e, &message));
            }
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A command-line mistake as one line (and `{"error"}` with --json), exit status 2; help and
/// version print as clap prints them.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let message = usage_message(&e.to_string());
    if std::env::args().any(|a| a == "--json") {
        println!("{}", serde_json::json!({ "error": message }));
    }
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// clap's message on one line: its lines up to the usage, without the `error: ` prefix.
fn usage_message(rendered: &str) -> String {
    let lines: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect();
    let text = lines.join(" ");
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    format!("{text} (see --help)")
}

async fn dispatch(cmd: Cmd) -> anyhow::Result<output::Report> {
    match cmd {
        Cmd::Model(ModelCmd::Publish(a)) => model::publish(a).await,
        Cmd::Model(ModelCmd::List(a)) => model::list(a).await,
        Cmd::Model(ModelCmd::Price(a)) => model::price(a).await,
        Cmd::Run(a) => task::run(a).await,
        Cmd::Task(TaskCmd::Get(a)) => task::get(a).await,
        Cmd::Task(TaskCmd::Rate(a)) => task::rate(a).await,
        Cmd::Task(TaskCmd::Challenge(a)) => task::challenge(a).await,
        Cmd::Rewards(RewardsCmd::Claim(a)) => rewards::claim(a).await,
        Cmd::Stake(a) => stake::stake(a).await,
        Cmd::Unstake(a) => stake::unstake(a).await,
        Cmd::Withdraw(a) => stake::withdraw(a).await,
        Cmd::Balance(a) => stake::balance(a).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_fit_on_one_line() {
        let e = Cli::try_parse_from(["dn", "model", "publish", "dir"]).unwrap_err();
        let m = usage_message(&e.to_string());
        assert!(!m.contains('\n'), "{m}");
        assert!(m.contains("--blob-store") && m.contains("--price"), "{m}");
        let e = Cli::try_parse_from(["dn", "stake", "1.5.1"]).unwrap_err();
        let m = usage_message(&e.to_string());
        assert!(m.starts_with("invalid value '1.5.1'"), "{m}");
    }
}
