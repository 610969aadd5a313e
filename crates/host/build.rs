//! Builds the default sink (`guests/sink`), which the host embeds, and reads
//! the WIT package version from `wit/audit.wit` (its one home) into
//! `CHAINSINK_WIT_VERSION`. Nothing else: the hostile test sinks are built
//! by `crates/test-programs`, a dev-dependency, so `cargo install` and the
//! quick start never build them.

use chainsink_guest_build::{Guest, build, rerun_if_changed, workspace_root};

fn main() {
    let root = workspace_root();
    rerun_if_changed(&root, &["guests/sink"]);
    let wit = std::fs::read_to_string(root.join("wit/audit.wit")).expect("wit/audit.wit");
    let version = wit
        .lines()
        .find_map(|l| l.trim().strip_prefix("package chainsink:audit@"))
        .and_then(|v| v.strip_suffix(';'))
        .expect("wit/audit.wit declares `package chainsink:audit@VERSION;`");
    println!("cargo:rustc-env=CHAINSINK_WIT_VERSION={version}");
    build(
        &root,
        &Guest {
            package: "chainsink-guest-sink",
            target: "wasm32-unknown-unknown",
        },
    );
}
