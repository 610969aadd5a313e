//! The `chainsink` command: a thin layer over the `chainsink-host` and
//! `chainsink-executor` libraries. Each subcommand lives in
//! [`commands`]; flags shared between them in [`args`].

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod args;
mod audit;
mod commands;
mod config;
mod policy;

#[derive(Parser)]
#[command(
    name = "chainsink",
    version,
    about = "A workflow executor whose audit trail is a sandboxed wasm sink",
    long_about = "A workflow executor whose audit trail is a sandboxed wasm sink.\n\n\
                  Records form a SHA-256 hash chain, byte-compatible with the telemachy audit log."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What `chainsink emit --help` says first: one home for both parsers.
const EMIT_ABOUT: &str = "Write audit records: one from flags, or JSON lines from stdin.";

#[derive(Subcommand)]
enum Command {
    #[command(about = EMIT_ABOUT)]
    Emit(commands::emit::EmitArgs),
    /// Check every hash and link of an audit log.
    Verify(commands::verify::VerifyArgs),
    /// Run telemachy/v1 workflows, auditing every transition.
    Run(commands::run::RunArgs),
    /// Check a workflow file without running it.
    Validate(commands::validate::ValidateArgs),
    /// Show a sink component's world, size and whether it fits chainsink's.
    Inspect(commands::inspect::InspectArgs),
    /// Write the embedded default sink component to a file, for other hosts.
    ExportSink(commands::export_sink::ExportSinkArgs),
    /// Write a new sink project (Rust, Python or JavaScript) from a template.
    NewSink(commands::new_sink::NewSinkArgs),
    /// Check a sink component against the contract, call by call, in a scratch directory.
    TestSink(commands::test_sink::TestSinkArgs),
    /// Show a log's records, filtered, checking each as it is read.
    Show(commands::show::ShowArgs),
    /// Print a log's last records; with -f, each record as it is appended.
    Tail(commands::tail::TailArgs),
    /// Count a log's events per type and workflow, task outcomes, slowest tasks.
    Stats(commands::stats::StatsArgs),
    /// Make a log's signing key and verifier key (C2SP signed-note forms).
    Keygen(commands::keygen::KeygenArgs),
    /// Sign a checkpoint of a log now (LOG.checkpoint), holding its lock.
    Checkpoint(commands::checkpoint::CheckpointCmdArgs),
    /// Print an inclusion proof of a record, or a consistency proof, against a checkpoint.
    Prove(commands::prove::ProveArgs),
    /// Check an inclusion or consistency proof offline.
    VerifyProof(commands::verify_proof::VerifyProofArgs),
    /// Check from the log that a later checkpoint extends an earlier one.
    VerifyConsistency(commands::verify_consistency::VerifyConsistencyArgs),
    /// Send the log's checkpoint to a C2SP tlog-witness and keep its cosignature.
    Witness(commands::witness::WitnessArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(commands::completions::CompletionsArgs),
    /// Print the manual page (roff), or write all pages with --out DIR.
    Man(commands::completions::ManArgs),
}

/// The parser of `chainsink emit ...` alone. A one-shot `emit` is where a process's start-up is
/// the whole cost, and building all of [`Cli`]'s subcommands was a fifth of its instructions
/// (issue 15). Same name, same subcommand, same arguments: `emit_parses_alike` checks that both
/// parsers give the same matches, help and errors.
#[derive(Parser)]
#[command(name = "chainsink", version)]
struct EmitCli {
    #[command(subcommand)]
    command: EmitOnly,
}

#[derive(Subcommand)]
enum EmitOnly {
    #[command(about = EMIT_ABOUT)]
    Emit(commands::emit::EmitArgs),
}

/// The command line's subcommand, parsed by [`EmitCli`] when it is `emit`.
fn parse_command() -> Command {
    if std::env::args_os().nth(1).is_some_and(|a| a == "emit") {
        let EmitOnly::Emit(args) = EmitCli::parse().command;
        Command::Emit(args)
    } else {
        Cli::parse().command
    }
}

fn main() -> ExitCode {
    // Before any thread starts: the signing key leaves the environment.
    commands::checkpoint::take_env_key();
    // Colour only on a terminal, and never with NO_COLOR set.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CHAINSINK_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_target(false)
        .init();
    let result = match parse_command() {
        Command::Emit(args) => commands::emit::emit(args),
        Command::Verify(args) => Ok(commands::verify::verify(&args)),
        Command::Run(args) => commands::run::run(args),
        Command::Validate(args) => Ok(commands::validate::validate(&args)),
        Command::Inspect(args) => commands::inspect::inspect(&args),
        Command::ExportSink(args) => commands::export_sink::export_sink(&args),
        Command::NewSink(args) => commands::new_sink::new_sink(&args),
        Command::TestSink(args) => commands::test_sink::test_sink(&args),
        Command::Show(args) => commands::show::show(&args),
        Command::Tail(args) => commands::tail::tail(&args),
        Command::Stats(args) => commands::stats::stats(&args),
        Command::Keygen(args) => commands::keygen::keygen(&args),
        Command::Checkpoint(args) => commands::checkpoint::checkpoint(&args),
        Command::Prove(args) => commands::prove::prove(&args),
        Command::VerifyProof(args) => commands::verify_proof::verify_proof(&args),
        Command::VerifyConsistency(args) => commands::verify_consistency::verify_consistency(&args),
        Command::Witness(args) => commands::witness::witness(&args),
        Command::Completions(args) => commands::completions::completions(&args),
        Command::Man(args) => commands::completions::man(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("chainsink: error: {}", policy::one_line(&e));
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::{Cli, EmitCli};

    /// What a parser makes of `argv`: the `emit` subcommand's matches, or the rendered error
    /// (help and version output are errors of their own kinds in clap).
    fn parsed(cmd: clap::Command, argv: &[&str]) -> Result<clap::ArgMatches, (String, String)> {
        cmd.try_get_matches_from(argv)
            .map(|m| m.subcommand_matches("emit").expect("emit").clone())
            .map_err(|e| (format!("{:?}", e.kind()), e.render().to_string()))
    }

    #[test]
    fn emit_parses_alike() {
        let cases: &[&[&str]] = &[
            &["chainsink", "emit", "--type", "t"],
            &[
                "chainsink",
                "emit",
                "--log",
                "a.jsonl",
                "--type",
                "t",
                "--workflow-id",
                "w",
            ],
            &[
                "chainsink",
                "emit",
                "--type",
                "t",
                "--payload",
                r#"{"a": 1}"#,
            ],
            &[
                "chainsink",
                "emit",
                "--stdin",
                "--durability",
                "none",
                "--log",
                "x",
            ],
            &["chainsink", "emit", "--help"],
            &["chainsink", "emit", "-h"],
            &["chainsink", "emit", "--version"],
            &["chainsink", "emit"],
            &["chainsink", "emit", "--bogus"],
            &["chainsink", "emit", "--type"],
            &["chainsink", "emit", "--stdin", "--type", "t"],
            &["chainsink", "emit", "--type", "t", "extra"],
            &[
                "chainsink",
                "emit",
                "--durability",
                "sometimes",
                "--type",
                "t",
            ],
        ];
        for argv in cases {
            let full = parsed(Cli::command(), argv);
            let alone = parsed(EmitCli::command(), argv);
            assert_eq!(full, alone, "{argv:?}");
        }
        // The cases above include both outcomes, so the comparison is not of two errors only.
        assert!(parsed(Cli::command(), &["chainsink", "emit", "--type", "t"]).is_ok());
        assert!(parsed(Cli::command(), &["chainsink", "emit", "--bogus"]).is_err());
    }
}
