//! Builds every guest under `guests/test-sinks/` (but the shared `common`
//! crate) and writes `OUT_DIR/guests.rs` with a path constant for each.
//!
//! A guest's target is `wasm32-unknown-unknown` unless its Cargo.toml says
//! `[package.metadata.chainsink] target = "wasm32-wasip2"`. A guest whose
//! constant no test under `crates/*/tests/` mentions fails the build: every
//! hostile guest has a test by construction.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use chainsink_guest_build::{Guest, build, rerun_if_changed, workspace_root};

fn main() {
    let root = workspace_root();
    rerun_if_changed(&root, &["guests/test-sinks"]);
    let tests = test_sources(&root);
    let mut generated = String::new();
    let mut dirs: Vec<_> = fs::read_dir(root.join("guests/test-sinks"))
        .expect("guests/test-sinks")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("Cargo.toml").is_file() && !p.ends_with("common"))
        .collect();
    dirs.sort();
    for dir in dirs {
        let manifest = fs::read_to_string(dir.join("Cargo.toml")).expect("guest Cargo.toml");
        let package: &'static str = manifest
            .lines()
            .find_map(|l| l.strip_prefix("name = \""))
            .and_then(|l| l.strip_suffix('"'))
            .unwrap_or_else(|| panic!("{}: no package name", dir.display()))
            .to_string()
            .leak();
        let target = if manifest.contains("target = \"wasm32-wasip2\"") {
            "wasm32-wasip2"
        } else {
            "wasm32-unknown-unknown"
        };
        let guest = Guest { package, target };
        let name = guest.const_name();
        assert!(
            tests.contains(&name),
            "test guest {package} ({}) has no test: name {name} in a test under crates/*/tests/",
            dir.display()
        );
        let path = build(&root, &guest);
        writeln!(
            generated,
            "/// Path of the built `{package}` component ({target}).\npub const {name}: &str = {:?};",
            path.display()
        )
        .unwrap();
    }
    let out = Path::new(&std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("guests.rs");
    fs::write(out, generated).unwrap();
}

/// The text of every integration test source in the workspace.
fn test_sources(root: &Path) -> String {
    let mut text = String::new();
    let mut stack = vec![root.join("crates")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if !path.ends_with("target") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.components().any(|c| c.as_os_str() == "tests")
            {
                println!("cargo:rerun-if-changed={}", path.display());
                text.push_str(&fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    text
}
