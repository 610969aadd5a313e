//! (Binary only.) `chainsink inspect`: what a sink component is and whether
//! it fits.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use chainsink_host::RuntimeConfig;
use chainsink_host::inspect;
use chainsink_host::runtime::{DEFAULT_SINK_NAME, DEFAULT_SINK_WASM};

use crate::args::CacheArgs;

/// Arguments of `chainsink inspect`.
#[derive(Args)]
pub(crate) struct InspectArgs {
    /// The component (.wasm) to inspect.
    #[arg(required_unless_present = "default", conflicts_with = "default")]
    component: Option<PathBuf>,
    /// Inspect the embedded default sink instead.
    #[arg(long)]
    default: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

/// Prints the component's world, size and fit: exit 0 when it fits the
/// `audit-sink` world, 1 when it does not, 2 when it cannot be read.
pub(crate) fn inspect(args: &InspectArgs) -> Result<ExitCode> {
    let (name, bytes) = match &args.component {
        Some(path) => (
            path.display().to_string(),
            std::fs::read(path)
                .with_context(|| format!("cannot read sink component {}", path.display()))?,
        ),
        None => (DEFAULT_SINK_NAME.to_string(), DEFAULT_SINK_WASM.to_vec()),
    };
    // Nothing is instantiated: no pool needed.
    let runtime = args.cache.runtime(RuntimeConfig {
        pooling: false,
        ..RuntimeConfig::default()
    })?;
    let report = inspect::inspect(&runtime, &name, &bytes);
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.render());
    }
    Ok(ExitCode::from(if report.fits() { 0 } else { 1 }))
}
