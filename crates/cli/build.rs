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
    pack_relative_relocations();
}

/// Links the binary with packed relative relocations (`DT_RELR`) where the
/// linker accepts them: the dynamic loader then applies the binary's 45,000
/// relative relocations from a 9 KB bitmap instead of a 1.1 MB table, which
/// took 0.35 ms off every `chainsink` process (issue 15). Linux with glibc
/// only (2.36 or later runs such a binary; a linker that knows the flag
/// leaves it out when the C library does not support it), not when
/// cross-compiling without a configured linker, and not with
/// `CHAINSINK_PACK_RELOCS=0` (for a binary meant for an older glibc than
/// the build machine's).
fn pack_relative_relocations() {
    println!("cargo:rerun-if-env-changed=CHAINSINK_PACK_RELOCS");
    let packed = linker_packs_relocations();
    if packed {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    // For the test that checks the flag reached the binary.
    println!(
        "cargo:rustc-env=CHAINSINK_PACKED_RELOCS={}",
        u8::from(packed)
    );
}

/// Whether to pass `-z pack-relative-relocs`, and whether the linker takes it.
fn linker_packs_relocations() -> bool {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || var("CHAINSINK_PACK_RELOCS") == "0"
    {
        return false;
    }
    let linker = match std::env::var("RUSTC_LINKER") {
        Ok(linker) => linker,
        Err(_) if var("TARGET") == var("HOST") => "cc".to_string(),
        Err(_) => return false,
    };
    // Ask the linker itself: link an empty C program with the flag. A linker
    // that does not know it fails or warns that it ignored it.
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let source = out.join("relr_probe.c");
    fs::write(&source, "int main(void) { return 0; }\n").expect("writing relr_probe.c");
    let probe = std::process::Command::new(&linker)
        .arg("-Wl,-z,pack-relative-relocs")
        .arg(&source)
        .arg("-o")
        .arg(out.join("relr_probe"))
        .output();
    probe.is_ok_and(|p| {
        p.status.success() && !String::from_utf8_lossy(&p.stderr).contains("pack-relative-relocs")
    })
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
