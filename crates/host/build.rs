//! Builds the default sink (`guests/sink`), which the host embeds, and reads
//! the WIT package versions from `wit/` into the environment: the current
//! one from `wit/audit.wit` (its one home) into `CHAINSINK_WIT_VERSION`, and
//! the frozen 0.1 one from `wit/since_v0.1.0/audit.wit` into
//! `CHAINSINK_WIT_V0_1_VERSION`. Nothing else: the hostile test sinks are
//! built by `crates/test-programs`, a dev-dependency, so `cargo install` and
//! the quick start never build them.

use std::path::Path;

use chainsink_guest_build::{Guest, build, rerun_if_changed, workspace_root};

/// The `VERSION` of the `package chainsink:audit@VERSION;` line in `file`.
fn package_version(file: &Path) -> String {
    let wit = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    wit.lines()
        .find_map(|l| l.trim().strip_prefix("package chainsink:audit@"))
        .and_then(|v| v.strip_suffix(';'))
        .unwrap_or_else(|| {
            panic!(
                "{} declares no `package chainsink:audit@VERSION;`",
                file.display()
            )
        })
        .to_string()
}

fn main() {
    let root = workspace_root();
    rerun_if_changed(&root, &["guests/sink", "crates/sdk"]);
    let current = package_version(&root.join("wit/audit.wit"));
    let v0_1 = package_version(&root.join("wit/since_v0.1.0/audit.wit"));
    println!("cargo:rustc-env=CHAINSINK_WIT_VERSION={current}");
    println!("cargo:rustc-env=CHAINSINK_WIT_V0_1_VERSION={v0_1}");
    build(
        &root,
        &Guest {
            package: "chainsink-guest-sink",
            target: "wasm32-unknown-unknown",
        },
    );
}
