//! Builds the default sink (`guests/sink`), which the host embeds, and
//! precompiles it for the host's own engine configuration; reads the WIT
//! package versions from `wit/` into the environment: the current one from
//! `wit/audit.wit` (its one home) into `CHAINSINK_WIT_VERSION`, and the frozen
//! 0.1 one from `wit/since_v0.1.0/audit.wit` into `CHAINSINK_WIT_V0_1_VERSION`.
//! Nothing else: the hostile test sinks are built by `crates/test-programs`, a
//! dev-dependency, so `cargo install` and the quick start never build them.
//!
//! # The precompiled default sink
//!
//! Compiling the default sink with Cranelift is nearly all of a cold (empty
//! cache) `chainsink emit`. So it is compiled here, once, by an engine built
//! from the same settings as the runtime's (`src/runtime/engine_base.rs`,
//! included by both) on this machine (Cranelift detects this CPU's features
//! as it would at run time), into `OUT_DIR/default_sink.cwasm`, which the
//! host embeds beside the component (`runtime::DEFAULT_SINK_PRECOMPILED`).
//! Wasmtime checks at load time that the artifact fits the loading engine
//! (its version, the Cranelift flags and CPU features, every setting that
//! changes code, fuel included); where it does not, the host falls back to
//! the disk cache and Cranelift as for any other component.
//!
//! The artifact is left empty (the host then always compiles, as before)
//! when cross-compiling (the build machine's CPU says nothing of the
//! target's) or when `CHAINSINK_PRECOMPILE=0` is set.
//!
//! Also written: `OUT_DIR/default_sink.sha256`, the component's SHA-256 (32
//! bytes), so the host need not hash its own embedded sink at every start.

use std::path::{Path, PathBuf};

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
    let component = build(
        &root,
        &Guest {
            package: "chainsink-guest-sink",
            target: "wasm32-unknown-unknown",
        },
    );
    precompile(&root, &component);
}

// `fn base(fuel) -> wasmtime::Config`: the runtime's engine settings, from
// their one home.
include!("src/runtime/engine_base.rs");

/// Writes `default_sink.sha256` and `default_sink.cwasm` (the component
/// precompiled for the default engine configuration, or empty when it must
/// not be; see the module docs) into `OUT_DIR`.
fn precompile(root: &Path, component: &Path) {
    use sha2::Digest;
    println!(
        "cargo:rerun-if-changed={}",
        root.join("crates/host/src/runtime/engine_base.rs")
            .display()
    );
    println!("cargo:rerun-if-env-changed=CHAINSINK_PRECOMPILE");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let wasm =
        std::fs::read(component).unwrap_or_else(|e| panic!("reading {}: {e}", component.display()));
    let sha256: [u8; 32] = sha2::Sha256::digest(&wasm).into();
    std::fs::write(out_dir.join("default_sink.sha256"), sha256).unwrap();

    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let skip = if env("TARGET") != env("HOST") {
        Some("cross-compiling")
    } else if env("CHAINSINK_PRECOMPILE") == "0" {
        Some("CHAINSINK_PRECOMPILE=0")
    } else {
        None
    };
    let artifact = match skip {
        Some(why) => {
            println!(
                "cargo:warning=the default sink is not precompiled ({why}): it is compiled at \
                 first use (and cached)"
            );
            Vec::new()
        }
        // Fuel off: the default configuration (`--sink-fuel` falls back).
        None => wasmtime::Engine::new(&base(false))
            .and_then(|engine| engine.precompile_component(&wasm))
            .unwrap_or_else(|e| panic!("precompiling the default sink: {e:#}")),
    };
    std::fs::write(out_dir.join("default_sink.cwasm"), artifact).unwrap();
}
