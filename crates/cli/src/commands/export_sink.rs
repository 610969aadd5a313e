//! `chainsink export-sink`: the embedded default sink, for other hosts.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use chainsink_host::runtime::DEFAULT_SINK_WASM;

/// Arguments of `chainsink export-sink`.
#[derive(Args)]
pub(crate) struct ExportSinkArgs {
    /// Where to write the component (.wasm).
    out: PathBuf,
}

/// Writes the embedded default sink component to a file.
pub(crate) fn export_sink(args: &ExportSinkArgs) -> Result<ExitCode> {
    std::fs::write(&args.out, DEFAULT_SINK_WASM)
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "chainsink: wrote the default sink component ({} bytes) to {}",
        DEFAULT_SINK_WASM.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
