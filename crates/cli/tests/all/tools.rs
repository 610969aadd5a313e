//! Toolchains the tests install for themselves from the registries (PyPI and
//! npm), once per target dir, so the README's test command needs no set-up
//! beyond its own `rustup target add`.
//!
//! Each set of pinned requirements gets its own directory under
//! `target/tmp/test-tools/`, named by a hash of the requirements, so changing
//! a pin installs afresh and never mixes versions. A file lock serialises
//! installs between the test threads and processes that need the same set;
//! a `.done` marker is written only after an install succeeded, so a broken
//! install is retried, never half-used. A registry that cannot be reached is
//! a test failure with the installer's own output, never a silent skip.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// Where the sets live: `target/tmp/test-tools`.
fn tools_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test-tools")
}

/// The directory for one set of requirements, installed by `install` under
/// a lock unless a previous install finished.
fn installed(kind: &str, requirements: &[&str], install: impl FnOnce(&Path)) -> PathBuf {
    let mut hasher = Sha256::new();
    for r in requirements {
        hasher.update(r.as_bytes());
        hasher.update(b"\n");
    }
    let digest = hasher.finalize();
    let id: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let root = tools_root();
    fs::create_dir_all(&root).expect("create target/tmp/test-tools");
    let dir = root.join(format!("{kind}-{id}"));
    let lock = File::create(root.join(format!("{kind}-{id}.lock"))).expect("create the tools lock");
    lock.lock().expect("lock the tools directory");
    let done = dir.join(".done");
    if !done.exists() {
        if dir.exists() {
            fs::remove_dir_all(&dir).expect("remove a half-finished tools install");
        }
        fs::create_dir_all(&dir).expect("create the tools directory");
        install(&dir);
        fs::write(&done, requirements.join("\n")).expect("mark the tools install done");
    }
    dir
}

/// Run an installer, panicking with its output when it fails.
fn run_installer(mut cmd: Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): is the registry reachable?\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Python packages from PyPI, installed with `pip install --target`. Returns
/// the directory to put on `PYTHONPATH`; console scripts are in its `bin/`.
/// Pin every requirement (`name==version`).
pub fn python_packages(requirements: &[&str]) -> PathBuf {
    installed("python", requirements, |dir| {
        let mut cmd = Command::new("python3");
        cmd.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--target",
        ])
        .arg(dir)
        .args(requirements);
        run_installer(cmd, &format!("pip install {}", requirements.join(" ")));
    })
}

/// npm packages from the registry, installed with `npm install --prefix`.
/// Returns the prefix; tools are in its `node_modules/.bin`. Pin every
/// requirement (`name@version`).
pub fn npm_packages(requirements: &[&str]) -> PathBuf {
    installed("npm", requirements, |dir| {
        let mut cmd = Command::new("npm");
        cmd.args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(dir)
        .args(requirements);
        run_installer(cmd, &format!("npm install {}", requirements.join(" ")));
    })
}

/// A command that runs a Python console script installed by
/// [`python_packages`], with that directory on `PYTHONPATH`.
pub fn python_tool(packages: &Path, script: &str) -> Command {
    let mut cmd = Command::new(packages.join("bin").join(script));
    cmd.env("PYTHONPATH", packages);
    cmd
}

#[test]
fn python_packages_installs_once_and_is_importable() {
    // `six` is tiny and pure Python: this checks the mechanism, not a tool.
    let dir = python_packages(&["six==1.16.0"]);
    let again = python_packages(&["six==1.16.0"]);
    assert_eq!(dir, again, "the same pins share one install");
    assert!(dir.join(".done").exists(), "a finished install is marked");
    let out = Command::new("python3")
        .args(["-c", "import six; print(six.__version__)"])
        .env("PYTHONPATH", &dir)
        .output()
        .expect("python3");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.16.0");
}
