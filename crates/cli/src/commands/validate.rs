//! `chainsink validate`: check a workflow file without running it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use chainsink_executor::Workflow;

/// Arguments of `chainsink validate`.
#[derive(Args)]
pub(crate) struct ValidateArgs {
    /// The workflow file (telemachy/v1 YAML).
    workflow: PathBuf,
}

/// Loads a workflow, printing its problems (file:line:col) when it is invalid.
pub(crate) fn load_workflow(path: &Path) -> Result<Workflow, ExitCode> {
    Workflow::from_path(path).map_err(|errors| {
        eprintln!("{errors}");
        eprintln!(
            "chainsink: {} is not a valid workflow ({} problem(s)); nothing was run",
            path.display(),
            errors.errors.len()
        );
        ExitCode::from(2)
    })
}

/// Checks the workflow: exit 0 when valid, 2 when not.
pub(crate) fn validate(args: &ValidateArgs) -> ExitCode {
    match load_workflow(&args.workflow) {
        Ok(wf) => {
            println!(
                "OK {}: workflow \"{}\", {} agent(s), {} team(s), {} task(s)",
                args.workflow.display(),
                wf.name(),
                wf.agents.len(),
                wf.teams.len(),
                wf.task_count()
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}
