//! (Binary only.) `chainsink new-sink`: writes a sink project from the
//! templates embedded in this binary (`templates/<lang>/` of the repo, see
//! `build.rs`), with what it needs that is on no registry: the current WIT
//! and, per language, the SDK (Rust: the `chainsink-sdk` and
//! `chainsink-format` crates' sources, pinned to this chainsink, with the
//! lock file this chainsink was built with).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// Arguments of `chainsink new-sink`.
#[derive(Args)]
pub(crate) struct NewSinkArgs {
    /// The language of the sink.
    #[arg(long, value_enum)]
    lang: Lang,
    /// Where to write the project: a directory that does not exist or is empty.
    dir: PathBuf,
    /// The sink's name (package name): letters, digits, `-` and `_`, starting
    /// with a letter. Default: the directory's name.
    #[arg(long)]
    name: Option<String>,
}

/// A language new-sink has a template for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Lang {
    /// Rust, with the chainsink-sdk crate.
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with componentize-js.
    Js,
}

impl Lang {
    fn dir(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }

    /// The one command that builds the project, as its README says.
    fn build_command(self) -> &'static str {
        match self {
            Lang::Rust => "cargo build --release --target wasm32-wasip2",
            Lang::Python => "componentize-py -d wit -w audit-sink componentize app -o sink.wasm",
            Lang::Js => "npm ci && npm run build",
        }
    }

    /// Files of the repo the project gets besides its template: repo path,
    /// project path.
    fn vendored(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Lang::Rust => &[],
            Lang::Python => &[("sdk/python/chainsink_sdk.py", "chainsink_sdk.py")],
            Lang::Js => &[("sdk/js/chainsink-sdk.js", "chainsink-sdk.js")],
        }
    }
}

/// Writes the project and says how to build it.
pub(crate) fn new_sink(args: &NewSinkArgs) -> Result<ExitCode> {
    let name = match &args.name {
        Some(n) => n.clone(),
        None => args
            .dir
            .canonicalize()
            .unwrap_or_else(|_| args.dir.clone())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .context("the directory has no name to use as the sink's name; give --name")?,
    };
    check_name(&name)?;
    check_dir(&args.dir)?;
    let files = project_files(args.lang, &name)?;
    for (path, bytes) in &files {
        let dest = args.dir.join(path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create directory {}", parent.display()))?;
        }
        std::fs::write(&dest, bytes).with_context(|| format!("cannot write {}", dest.display()))?;
    }
    println!(
        "wrote {} sink `{name}` to {} ({} files); build it with:\n  cd {} && {}\nthen check it with `chainsink test-sink` (see its README.md)",
        args.lang.dir(),
        args.dir.display(),
        files.len(),
        args.dir.display(),
        args.lang.build_command()
    );
    Ok(ExitCode::SUCCESS)
}

/// A name usable as a package name in every language.
fn check_name(name: &str) -> Result<()> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.len() <= 64;
    if !ok {
        bail!(
            "sink name {name:?} is not usable as a package name: use letters, digits, `-` and \
             `_`, starting with a letter (at most 64), with --name"
        );
    }
    Ok(())
}

/// `dir` must not exist, or be an empty directory.
fn check_dir(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty; new-sink writes only into a new or empty directory, so \
                     nothing of yours is overwritten: choose another DIR",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => bail!(
            "{} is a file; give new-sink a new or empty directory",
            dir.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot read directory {}", dir.display())),
    }
}

/// The embedded file at repo path `path`.
fn embedded(path: &str) -> Result<&'static [u8]> {
    EMBEDDED
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, b)| *b)
        .with_context(|| {
            format!("this chainsink was built without {path}; rebuild it from a full checkout")
        })
}

/// The embedded text file at repo path `path`.
fn embedded_text(path: &str) -> Result<&'static str> {
    std::str::from_utf8(embedded(path)?).with_context(|| format!("{path} is not UTF-8"))
}

/// Every file of the project: its path in the project and its bytes.
fn project_files(lang: Lang, name: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let prefix = format!("templates/{}/", lang.dir());
    let crate_name = name.replace('-', "_");
    let mut files = Vec::new();
    for (path, bytes) in EMBEDDED.iter().filter(|(p, _)| p.starts_with(&prefix)) {
        let rel = &path[prefix.len()..];
        let bytes = match std::str::from_utf8(bytes) {
            Ok(text) => text
                .replace("{{name}}", name)
                .replace("{{crate}}", &crate_name)
                .into_bytes(),
            Err(_) => bytes.to_vec(),
        };
        files.push((rel.to_string(), bytes));
    }
    if files.is_empty() {
        bail!("this chainsink was built without templates/{}/", lang.dir());
    }
    files.push(("wit/audit.wit".into(), embedded("wit/audit.wit")?.to_vec()));
    for (from, to) in lang.vendored() {
        files.push(((*to).into(), embedded(from)?.to_vec()));
    }
    if lang == Lang::Rust {
        files.extend(rust_vendor()?);
    }
    Ok(files)
}

/// The Rust SDK and format crates as standalone crates under `vendor/`, and
/// the lock file chainsink was built with (cargo keeps the versions of what
/// the project uses and drops the rest).
fn rust_vendor() -> Result<Vec<(String, Vec<u8>)>> {
    let workspace = embedded_text("Cargo.toml")?;
    let mut files = vec![("Cargo.lock".to_string(), embedded("Cargo.lock")?.to_vec())];
    for (krate, vendored) in [
        ("crates/sdk", "chainsink-sdk"),
        ("crates/format", "chainsink-format"),
    ] {
        let manifest = embedded_text(&format!("{krate}/Cargo.toml"))?;
        files.push((
            format!("vendor/{vendored}/Cargo.toml"),
            standalone_manifest(manifest, workspace)?.into_bytes(),
        ));
        let src = format!("{krate}/src/");
        for (path, bytes) in EMBEDDED.iter().filter(|(p, _)| p.starts_with(&src)) {
            files.push((
                format!("vendor/{vendored}/src/{}", &path[src.len()..]),
                bytes.to_vec(),
            ));
        }
    }
    Ok(files)
}

/// Where a workspace path dependency lives once vendored.
const VENDORED_PATHS: &[(&str, &str)] = &[
    ("crates/sdk", "../chainsink-sdk"),
    ("crates/format", "../chainsink-format"),
];

/// Sections of a member manifest a vendored crate does without.
const DROPPED_SECTIONS: &[&str] = &[
    "[dev-dependencies]",
    "[lints]",
    "[[test]]",
    "[[bench]]",
    "[build-dependencies]",
];

/// `member` (a workspace member's Cargo.toml) with everything it inherits
/// from `workspace` written out, so it builds outside the workspace; its
/// tests, benchmarks and lints are left out. Handles the forms our
/// manifests use: `key.workspace = true` in `[package]` and one-line
/// `name = { workspace = true[, features = [..]] }` dependencies.
fn standalone_manifest(member: &str, workspace: &str) -> Result<String> {
    let package = section_entries(workspace, "[workspace.package]");
    let deps = section_entries(workspace, "[workspace.dependencies]");
    let mut out = String::new();
    let mut section = String::new();
    for line in member.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            section = trimmed.to_string();
        }
        if DROPPED_SECTIONS.contains(&section.as_str()) {
            continue;
        }
        if let Some(key) = trimmed.strip_suffix(".workspace = true") {
            let value = lookup(&package, key).with_context(|| {
                format!("the workspace Cargo.toml has no [workspace.package] {key}")
            })?;
            out.push_str(&format!("{key} = {value}\n"));
        } else if let Some((name, spec)) = trimmed.split_once(" = ")
            && spec.starts_with('{')
            && spec.contains("workspace = true")
        {
            let base = lookup(&deps, name).with_context(|| {
                format!("the workspace Cargo.toml has no [workspace.dependencies] {name}")
            })?;
            out.push_str(&format!("{name} = {}\n", merge_dependency(base, spec)));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

/// `key = value` lines of one section of `toml`.
fn section_entries<'a>(toml: &'a str, header: &str) -> Vec<(&'a str, &'a str)> {
    let mut inside = false;
    let mut entries = Vec::new();
    for line in toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == header;
        } else if inside && let Some((k, v)) = line.split_once(" = ") {
            entries.push((k.trim(), v.trim()));
        }
    }
    entries
}

fn lookup<'a>(entries: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    entries.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// The workspace's spec for a dependency (`base`, a string or inline table),
/// with the member's extra `features` added and workspace paths made
/// vendor paths.
fn merge_dependency(base: &str, member: &str) -> String {
    let mut fields: Vec<String> = match base.strip_prefix('{').and_then(|b| b.strip_suffix('}')) {
        Some(inner) => split_fields(inner),
        None => vec![format!("version = {base}")],
    };
    for (from, to) in VENDORED_PATHS {
        for f in &mut fields {
            if *f == format!("path = \"{from}\"") {
                *f = format!("path = \"{to}\"");
            }
        }
    }
    let member_inner = member.trim().trim_start_matches('{').trim_end_matches('}');
    for field in split_fields(member_inner) {
        if field == "workspace = true" {
            continue;
        }
        if let Some(extra) = field
            .strip_prefix("features = [")
            .and_then(|f| f.strip_suffix(']'))
            && let Some(existing) = fields.iter_mut().find(|f| f.starts_with("features = ["))
        {
            let kept = existing
                .trim_start_matches("features = [")
                .trim_end_matches(']')
                .to_string();
            *existing = format!("features = [{kept}, {extra}]");
            continue;
        }
        fields.push(field);
    }
    format!("{{ {} }}", fields.join(", "))
}

/// The `key = value` fields of an inline table's inside, split at the
/// commas that are not inside brackets.
fn split_fields(inner: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in inner.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                fields.push(current.trim().to_string());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        fields.push(current.trim().to_string());
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_become_standalone() {
        let workspace = embedded_text("Cargo.toml").unwrap();
        for krate in ["crates/sdk", "crates/format"] {
            let manifest = embedded_text(&format!("{krate}/Cargo.toml")).unwrap();
            let out = standalone_manifest(manifest, workspace).unwrap();
            assert!(!out.contains("workspace"), "{krate}: {out}");
            assert!(!out.contains("[dev-dependencies]"), "{out}");
            assert!(out.contains("version = \"0.1.0\""), "{out}");
        }
        let sdk = standalone_manifest(embedded_text("crates/sdk/Cargo.toml").unwrap(), workspace)
            .unwrap();
        assert!(
            sdk.contains(
                "chainsink-format = { path = \"../chainsink-format\", default-features = false }"
            ),
            "{sdk}"
        );
    }

    #[test]
    fn member_features_are_added_to_the_workspace_ones() {
        assert_eq!(
            merge_dependency(
                r#"{ version = "1", default-features = false, features = ["alloc"] }"#,
                r#"{ workspace = true, features = ["std"] }"#
            ),
            r#"{ version = "1", default-features = false, features = ["alloc", "std"] }"#
        );
        assert_eq!(
            merge_dependency(r#""1""#, r#"{ workspace = true, features = ["std"] }"#),
            r#"{ version = "1", features = ["std"] }"#
        );
    }

    #[test]
    fn names_and_dirs_are_checked() {
        assert!(check_name("my-sink_2").is_ok());
        for bad in ["", "2sink", "my sink", "../x", "sïnk"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        let dir = std::env::temp_dir().join(format!("new-sink-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(check_dir(&dir).is_ok(), "an empty directory is fine");
        std::fs::write(dir.join("mine.txt"), "keep me").unwrap();
        let err = check_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("not empty"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
