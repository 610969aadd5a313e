//! Embeds what `chainsink new-sink` writes, so the binary works outside a
//! checkout: every file under `templates/` (a project skeleton per
//! language) and what the projects vendor: `wit/audit.wit`, the Rust SDK
//! and format crates' sources, the workspace manifest and lock file they
//! are resolved against, and the Python and JS SDK modules under `sdk/`.
//! Writes `OUT_DIR/embedded.rs`: `EMBEDDED`, a table of repo-relative
//! paths and their bytes.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// Directories whose files are embedded, relative to the workspace root.
const DIRS: &[&str] = &["templates", "sdk", "crates/sdk/src", "crates/format/src"];
/// Single files embedded.
const FILES: &[&str] = &[
    "wit/audit.wit",
    "Cargo.toml",
    "Cargo.lock",
    "crates/sdk/Cargo.toml",
    "crates/format/Cargo.toml",
];
/// Directory names never embedded: build outputs, installed packages, tests.
const SKIP_DIRS: &[&str] = &[
    "target",
    "node_modules",
    "__pycache__",
    ".venv",
    "venv",
    "dist",
    "build",
    "test",
    "tests",
];
/// File extensions never embedded (build outputs).
const SKIP_EXTS: &[&str] = &["wasm", "pyc", "jsonl"];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let root = manifest
        .join("../..")
        .canonicalize()
        .expect("workspace root");
    let mut files = Vec::new();
    for dir in DIRS {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
        walk(&root.join(dir), &mut files);
    }
    for file in FILES {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
        files.push(root.join(file));
    }
    files.sort();
    let mut out = String::from(
        "/// Files `new-sink` can write: repo-relative path and bytes.\n\
         pub(crate) static EMBEDDED: &[(&str, &[u8])] = &[\n",
    );
    for file in &files {
        let rel = file.strip_prefix(&root).expect("under the root");
        let rel = rel.to_str().expect("UTF-8 path").replace('\\', "/");
        writeln!(out, "    ({rel:?}, include_bytes!({:?})),", file.display()).unwrap();
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("embedded.rs");
    fs::write(dest, out).expect("writing embedded.rs");
}

/// Every file under `dir`, skipping build outputs.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !SKIP_DIRS.contains(&name.as_ref()) {
                walk(&path, files);
            }
        } else if !path
            .extension()
            .is_some_and(|e| SKIP_EXTS.contains(&e.to_string_lossy().as_ref()))
        {
            files.push(path);
        }
    }
}
