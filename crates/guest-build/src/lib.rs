//! Builds guest crates into wasm components, from a build script.
//!
//! Follows wasmtime's `crates/test-programs/artifacts`: a nested cargo build
//! for the wasm target with its own target dir under `OUT_DIR` (sharing the
//! outer one would deadlock on its lock), then `wit-component` turns a core
//! module into a component. Used by `chainsink-host` (the default sink) and
//! `chainsink-test-programs` (the hostile test sinks), so the recipe lives in
//! one place.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A guest crate to build.
#[derive(Clone, Copy, Debug)]
pub struct Guest {
    /// Its cargo package name.
    pub package: &'static str,
    /// `wasm32-unknown-unknown` (componentized here) or `wasm32-wasip2`
    /// (already a component).
    pub target: &'static str,
}

impl Guest {
    /// The Rust constant name for this guest's path: `CHAINSINK_GUEST_X`.
    pub fn const_name(&self) -> String {
        self.package.to_uppercase().replace('-', "_")
    }
}

/// The workspace root, from the build script's `CARGO_MANIFEST_DIR`
/// (`crates/<name>`).
pub fn workspace_root() -> PathBuf {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("a crate under crates/")
        .to_path_buf()
}

/// Tells cargo to rerun the build script when any of `dirs` (relative to the
/// workspace root) or the lock file changes.
pub fn rerun_if_changed(root: &Path, dirs: &[&str]) {
    for dir in dirs
        .iter()
        .copied()
        .chain(["wit", "crates/format", "Cargo.lock"])
    {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
}

/// Builds `guest` with the `guest` profile and returns the path of its
/// component, written to `OUT_DIR/<crate>.component.wasm`.
///
/// # Panics
///
/// When the build fails (with the advice to add the target), as a build
/// script should.
pub fn build(root: &Path, guest: &Guest) -> PathBuf {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let target_dir = out_dir.join("guest-target");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["rustc", "--locked", "--profile", "guest", "-p"])
        .arg(guest.package)
        .args(["--target", guest.target, "--crate-type", "cdylib"])
        .env("CARGO_TARGET_DIR", &target_dir);
    for var in [
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ] {
        cmd.env_remove(var);
    }
    // wasm SIMD (every runtime chainsink targets has it: wasmtime, V8 for jco,
    // wasmtime-py): the format crate's byte classifier uses it, four times
    // the bytes a step of its portable one (issue 15). Set, not inherited, so
    // the guest builds the same whatever the environment holds.
    cmd.env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+simd128");
    let status = cmd.status().expect("failed to run cargo for a guest");
    assert!(
        status.success(),
        "building guest {} for {} failed; run `rustup target add {}` if the target is missing",
        guest.package,
        guest.target,
        guest.target
    );
    let stem = guest.package.replace('-', "_");
    let core = target_dir
        .join(guest.target)
        .join("guest")
        .join(format!("{stem}.wasm"));
    let bytes = fs::read(&core).unwrap_or_else(|e| panic!("reading {}: {e}", core.display()));
    let component = if guest.target == "wasm32-wasip2" {
        bytes
    } else {
        wit_component::ComponentEncoder::default()
            .module(&bytes)
            .expect("guest module lacks its component-type section")
            .validate(true)
            .encode()
            .expect("componentizing the guest failed")
    };
    let out = out_dir.join(format!("{stem}.component.wasm"));
    fs::write(&out, component).unwrap();
    out
}
