//! Builds the guest components this host embeds or tests with.
//!
//! Follows wasmtime's `crates/test-programs/artifacts`: a nested `cargo build`
//! for the wasm target, with its own target dir under OUT_DIR (sharing the
//! outer one would deadlock on its lock), then `wit-component` turns each
//! core module into a component. The paths land in `OUT_DIR/guests.rs`.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A guest crate to build: package name, target, and whether it needs
/// componentizing (wasm32-wasip2 output already is a component).
struct Guest {
    package: &'static str,
    target: &'static str,
}

const GUESTS: &[Guest] = &[
    // The default sink, embedded in the host.
    Guest {
        package: "chainsink-guest-sink",
        target: "wasm32-unknown-unknown",
    },
    // Hostile sinks for tests/sandbox.rs (sources in tests/guests/).
    Guest {
        package: "chainsink-guest-loop-forever",
        target: "wasm32-unknown-unknown",
    },
    Guest {
        package: "chainsink-guest-memory-bomb",
        target: "wasm32-unknown-unknown",
    },
    Guest {
        package: "chainsink-guest-wasi-snoop",
        target: "wasm32-wasip2",
    },
    Guest {
        package: "chainsink-guest-panicker",
        target: "wasm32-unknown-unknown",
    },
    Guest {
        package: "chainsink-guest-wrong-hash",
        target: "wasm32-unknown-unknown",
    },
    Guest {
        package: "chainsink-guest-garbage",
        target: "wasm32-unknown-unknown",
    },
];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    for dir in ["guest-sink", "format", "wit", "tests/guests"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.lock").display()
    );

    let mut generated = String::new();
    for guest in GUESTS {
        let component = build_guest(&root, &out_dir, guest);
        let const_name = guest.package.to_uppercase().replace('-', "_");
        writeln!(
            generated,
            "/// Path of the built `{}` component.\npub const {const_name}: &str = {:?};",
            guest.package,
            component.display()
        )
        .unwrap();
    }
    fs::write(out_dir.join("guests.rs"), generated).unwrap();
}

fn build_guest(root: &Path, out_dir: &Path, guest: &Guest) -> PathBuf {
    let target_dir = out_dir.join("guest-target");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["rustc", "--locked", "--profile", "guest", "-p"])
        .arg(guest.package)
        .args(["--target", guest.target, "--crate-type", "cdylib"])
        .env("CARGO_TARGET_DIR", &target_dir);
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ] {
        cmd.env_remove(var);
    }
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
