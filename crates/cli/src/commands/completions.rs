//! `chainsink completions` and `chainsink man`: shell completions and the
//! manual page, generated from the flags themselves.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};

/// Arguments of `chainsink completions`.
#[derive(Args)]
pub(crate) struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

/// Prints the completion script for the shell.
pub(crate) fn completions(args: &CompletionsArgs) -> Result<ExitCode> {
    let mut cmd = crate::Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "chainsink", &mut out);
    // A closed pipe (`chainsink completions bash | head`) is not an error.
    let _ = out.flush();
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `chainsink man`.
#[derive(Args)]
pub(crate) struct ManArgs {
    /// Write chainsink.1 and a page per subcommand (chainsink-show.1, ...)
    /// into this directory instead of printing chainsink.1.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Prints (or writes) the manual page(s) in roff.
pub(crate) fn man(args: &ManArgs) -> Result<ExitCode> {
    let cmd = crate::Cli::command();
    match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("cannot write the pages into {}", dir.display()))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            match clap_mangen::Man::new(cmd)
                .render(&mut out)
                .and_then(|()| out.flush())
            {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
                _ => {}
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
