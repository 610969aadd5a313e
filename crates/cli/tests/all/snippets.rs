//! Code in the docs runs as written. Every fenced block in `README.md`,
//! `docs/*.md` and `examples/*/README.md` is checked by the rule in
//! `spec/TEAM.md` ("Docs snippets"):
//!
//! - ```` ```sh ```` / ```` ```bash ```` blocks run with `bash -euo pipefail`
//!   in a fresh temp directory, with the freshly built `chainsink` first on
//!   `PATH` and `$REPO` set to the repo root;
//! - a shell block preceded by `<!-- snippet: ci NAME -->` is not run here:
//!   NAME must be a `#[test]` fn in `crates/*/tests` or a line of `.ci/run`;
//! - a block in any other known language is preceded by
//!   `<!-- snippet: file PATH -->` and its text must appear verbatim in the
//!   repo file PATH (which a test builds or runs);
//! - ```` ```text ```` is output, not checked;
//! - a block with no language or an unknown one fails, saying how to fix it.
//!
//! Every block is checked (and reported on its own line, `file:line`), then
//! the test fails listing every bad block.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{emit_n, run, stderr};

/// Longest a shell block may run; a slower one belongs in a test (`ci`).
const SHELL_TIMEOUT: Duration = Duration::from_secs(120);

/// Languages a `file` block may be in (anything else is a typo or needs
/// adding here).
const CODE_LANGUAGES: &[&str] = &[
    "rust",
    "python",
    "py",
    "js",
    "javascript",
    "mjs",
    "ts",
    "typescript",
    "toml",
    "wit",
    "yaml",
    "yml",
    "json",
    "jsonl",
    "c",
    "go",
    "ini",
    "dockerfile",
    "make",
    "makefile",
    "diff",
];

/// The repo root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The documents whose blocks are checked, repo-relative and sorted:
/// `README.md`, `docs/*.md`, `examples/*/README.md`.
fn documents(repo: &Path) -> Vec<String> {
    let mut docs = vec!["README.md".to_string()];
    let listed = |dir: &str| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(repo.join(dir))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    for name in listed("docs") {
        if name.ends_with(".md") && repo.join("docs").join(&name).is_file() {
            docs.push(format!("docs/{name}"));
        }
    }
    for name in listed("examples") {
        let readme = format!("examples/{name}/README.md");
        if repo.join(&readme).is_file() {
            docs.push(readme);
        }
    }
    docs
}

/// What the line before a block says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Marker {
    /// `<!-- snippet: ci NAME -->`: a test fn or a `.ci/run` line runs it.
    Ci(String),
    /// `<!-- snippet: file PATH -->`: the text is verbatim in PATH.
    File(String),
}

/// One fenced block of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    /// The info string's first word, lowercased ("" for none).
    lang: String,
    /// The marker on the last non-blank line before the fence.
    marker: Option<Marker>,
    /// The lines inside the fences (the fence's indentation removed), each
    /// ending in `\n`.
    text: String,
}

/// A marker line's meaning: `None` if the line is no marker, `Some(Err)` if
/// it is a malformed one.
fn parse_marker(line: &str) -> Option<Result<Marker, String>> {
    let inner = line
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim();
    let rest = inner.strip_prefix("snippet:")?.trim();
    let (kind, arg) = rest.split_once(' ').unwrap_or((rest, ""));
    let arg = arg.trim().to_string();
    Some(match (kind, arg.is_empty()) {
        (_, true) => Err(format!(
            "the marker `{}` names nothing: write `<!-- snippet: ci TEST_FN -->` or \
             `<!-- snippet: file PATH -->`",
            line.trim()
        )),
        ("ci", false) => Ok(Marker::Ci(arg)),
        ("file", false) => Ok(Marker::File(arg)),
        _ => Err(format!(
            "unknown marker `{}`: the kinds are `ci NAME` and `file PATH`",
            line.trim()
        )),
    })
}

/// The fenced blocks of a markdown text, and problems with its structure
/// (an unclosed fence, a malformed or stray marker), each with its line.
fn extract(markdown: &str) -> (Vec<Block>, Vec<(usize, String)>) {
    struct Open {
        line: usize,
        fence: char,
        len: usize,
        indent: usize,
        lang: String,
        marker: Option<Marker>,
        text: String,
    }
    let mut blocks = Vec::new();
    let mut problems = Vec::new();
    let mut open: Option<Open> = None;
    // The last non-blank line outside a block: its marker, if it was one.
    let mut pending: Option<(usize, Marker)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let no = i + 1;
        let stripped = line.trim_start_matches(' ');
        let indent = line.len() - stripped.len();
        let fence_char = stripped.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = fence_char.map_or(0, |c| stripped.chars().take_while(|x| *x == c).count());
        if let Some(o) = &mut open {
            if fence_char == Some(o.fence) && run >= o.len && stripped[run..].trim().is_empty() {
                let o = open.take().expect("open");
                blocks.push(Block {
                    line: o.line,
                    lang: o.lang,
                    marker: o.marker,
                    text: o.text,
                });
            } else {
                let cut = line.len() - line.trim_start_matches(' ').len();
                o.text.push_str(&line[cut.min(o.indent)..]);
                o.text.push('\n');
            }
            continue;
        }
        if let Some(c) = fence_char.filter(|_| run >= 3) {
            let info = stripped[run..].trim();
            if !(c == '`' && info.contains('`')) {
                let lang = info
                    .split(|ch: char| ch.is_whitespace() || ch == ',' || ch == '{')
                    .next()
                    .unwrap_or("")
                    .to_lowercase();
                open = Some(Open {
                    line: no,
                    fence: c,
                    len: run,
                    indent,
                    lang,
                    marker: pending.take().map(|(_, m)| m),
                    text: String::new(),
                });
                continue;
            }
        }
        if line.trim().is_empty() {
            continue;
        }
        if let Some((at, _)) = pending.take() {
            problems.push((
                at,
                "a snippet marker must be followed by a fenced block (blank lines allowed)"
                    .to_string(),
            ));
        }
        match parse_marker(line) {
            Some(Ok(m)) => pending = Some((no, m)),
            Some(Err(e)) => problems.push((no, e)),
            None => {}
        }
    }
    if let Some(o) = open {
        problems.push((
            o.line,
            format!(
                "the block opened here is never closed: end it with a line of {} {}",
                o.len, o.fence
            ),
        ));
    }
    if let Some((at, _)) = pending {
        problems.push((
            at,
            "a snippet marker must be followed by a fenced block".to_string(),
        ));
    }
    (blocks, problems)
}

/// Where the checks look and what they run.
struct Checker {
    /// The repo root (`$REPO`; `file` paths and `.ci/run` are relative to it).
    repo: PathBuf,
    /// The directory holding the freshly built `chainsink`.
    bin_dir: PathBuf,
}

impl Checker {
    fn new(repo: PathBuf) -> Checker {
        let bin = Path::new(env!("CARGO_BIN_EXE_chainsink"));
        Checker {
            repo,
            bin_dir: bin.parent().unwrap().to_path_buf(),
        }
    }

    /// Checks every block of the markdown `text` of `doc`; prints one line
    /// per block and returns one message per failure, each naming `doc:line`.
    fn check_markdown(&self, doc: &str, text: &str) -> (usize, Vec<String>) {
        let (blocks, problems) = extract(text);
        let mut failures: Vec<String> = problems
            .into_iter()
            .map(|(line, p)| format!("{doc}:{line}: {p}"))
            .collect();
        for block in &blocks {
            let started = Instant::now();
            let result = self.check(block);
            let what = match &block.marker {
                Some(Marker::Ci(n)) => format!("```{} (ci: {n})", block.lang),
                Some(Marker::File(p)) => format!("```{} (file: {p})", block.lang),
                None => format!("```{}", block.lang),
            };
            match result {
                Ok(()) => println!(
                    "ok   {doc}:{} {what} ({:.1} s)",
                    block.line,
                    started.elapsed().as_secs_f64()
                ),
                Err(e) => {
                    println!("FAIL {doc}:{} {what}", block.line);
                    failures.push(format!("{doc}:{}: {e}", block.line));
                }
            }
        }
        (blocks.len(), failures)
    }

    /// One block's check: `Err` says what is wrong and how to fix it.
    fn check(&self, block: &Block) -> Result<(), String> {
        let lang = block.lang.as_str();
        match (lang, &block.marker) {
            ("text", None) => Ok(()),
            ("text", Some(_)) => Err(
                "a ```text block is output and never checked: drop the snippet marker before it"
                    .to_string(),
            ),
            ("", _) => Err(
                "a block without a language: write ```sh (commands the snippet test runs), \
                 ```text (output, not checked), or the code's language preceded by \
                 `<!-- snippet: file PATH -->`"
                    .to_string(),
            ),
            ("sh" | "bash", None) => self.run_shell(&block.text),
            ("sh" | "bash", Some(Marker::Ci(name))) => self.check_ci(name),
            (_, Some(Marker::File(path))) if is_known(lang) => self.check_file(path, &block.text),
            (_, Some(Marker::Ci(_))) if is_known(lang) => Err(format!(
                "only shell blocks can be marked `ci`; a ```{lang} block needs \
                 `<!-- snippet: file PATH -->` naming the file that holds it verbatim"
            )),
            (_, None) if is_known(lang) => Err(format!(
                "a ```{lang} block must be preceded by `<!-- snippet: file PATH -->`, PATH being \
                 the repo file (built or run by a test) that holds this text verbatim; \
                 or make it ```text if it is output"
            )),
            _ => Err(format!(
                "unknown language `{lang}`: use ```sh or ```bash for commands the snippet test \
                 runs, ```text for output, or one of {} with `<!-- snippet: file PATH -->`",
                CODE_LANGUAGES.join(", ")
            )),
        }
    }

    /// `name` is a `#[test]` fn in `crates/*/tests` or a line of `.ci/run`.
    fn check_ci(&self, name: &str) -> Result<(), String> {
        let ci = fs::read_to_string(self.repo.join(".ci/run")).unwrap_or_default();
        if ci.lines().any(|l| l.trim() == name) {
            return Ok(());
        }
        let is_ident = name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric());
        if is_ident {
            let mut files = Vec::new();
            for krate in fs::read_dir(self.repo.join("crates"))
                .into_iter()
                .flatten()
                .flatten()
            {
                rust_files(&krate.path().join("tests"), &mut files);
            }
            for file in files {
                let text = fs::read_to_string(&file).unwrap_or_default();
                if is_test_fn(&text, name) {
                    return Ok(());
                }
            }
        }
        Err(format!(
            "`<!-- snippet: ci {name} -->` names neither a #[test] fn in crates/*/tests nor a \
             line of .ci/run: name the test that runs these commands (or write one)"
        ))
    }

    /// The block's text appears verbatim in the repo file `path`.
    fn check_file(&self, path: &str, text: &str) -> Result<(), String> {
        if path.ends_with(".md") {
            return Err(format!(
                "`{path}` is a document; name the source file a test builds or runs"
            ));
        }
        let full = self.repo.join(path);
        let content = fs::read_to_string(&full).map_err(|e| {
            format!(
                "cannot read `{path}` named by the snippet marker ({e}): create it or fix the path"
            )
        })?;
        if content.contains(text) {
            return Ok(());
        }
        let first_missing = text
            .lines()
            .enumerate()
            .find(|(_, l)| !content.lines().any(|c| c == *l));
        Err(match first_missing {
            Some((i, l)) => format!(
                "the block is not verbatim in `{path}`: its line {} (`{}`) is not there; copy \
                 the block from the file (or the file from the block)",
                i + 1,
                l.trim()
            ),
            None => format!(
                "the block is not verbatim in `{path}`: each line is there, but not in this \
                 order; copy the block from the file (or the file from the block)"
            ),
        })
    }

    /// Runs a shell block as the rule says; `Err` has its exit and output.
    fn run_shell(&self, text: &str) -> Result<(), String> {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("snippet.sh");
        let work = dir.path().join("work");
        fs::create_dir(&work).unwrap();
        fs::write(&script, text).unwrap();
        let out_path = dir.path().join("out");
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![self.bin_dir.clone()];
        paths.extend(std::env::split_paths(&path));
        let mut cmd = Command::new("bash");
        cmd.arg("-euo")
            .arg("pipefail")
            .arg(&script)
            .current_dir(&work)
            .env("PATH", std::env::join_paths(paths).unwrap())
            .env("REPO", &self.repo)
            .env(
                "CHAINSINK_CACHE_DIR",
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("sink-cache"),
            )
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out_path).unwrap())
            .stderr(fs::File::create(dir.path().join("err")).unwrap())
            .process_group(0);
        for var in [
            "AUDIT_LOG_PATH",
            "AUDIT_HASH_CHAIN",
            "AUDIT_SINK",
            "AUDIT_DURABILITY",
            "AUDIT_POLICY",
        ] {
            cmd.env_remove(var);
        }
        let mut child = cmd.spawn().map_err(|e| format!("cannot run bash: {e}"))?;
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() > SHELL_TIMEOUT {
                // The whole group: the block's commands too, not only bash.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let tail = |name: &str| {
            let text = fs::read_to_string(dir.path().join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(15)..].join("\n    ")
        };
        let status = match status {
            None => {
                return Err(format!(
                    "the ```sh block ran longer than {} s and was killed: keep snippets fast, \
                     or precede it with `<!-- snippet: ci TEST_FN -->`",
                    SHELL_TIMEOUT.as_secs()
                ));
            }
            Some(s) if s.success() => return Ok(()),
            Some(s) => s,
        };
        Err(format!(
            "the ```sh block failed under `bash -euo pipefail` ({status}): fix it, or if it \
             must not run here precede it with `<!-- snippet: ci TEST_FN -->`\n  stderr:\n    \
             {}\n  stdout:\n    {}",
            tail("err"),
            tail("out")
        ))
    }
}

fn is_known(lang: &str) -> bool {
    CODE_LANGUAGES.contains(&lang)
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether `source` defines `fn name(` under a `#[test]` attribute.
fn is_test_fn(source: &str, name: &str) -> bool {
    let lines: Vec<&str> = source.lines().collect();
    let head = format!("fn {name}(");
    lines.iter().enumerate().any(|(i, l)| {
        let l = l.trim_start();
        let l = l.strip_prefix("pub ").unwrap_or(l);
        l.starts_with(&head)
            && lines[..i]
                .iter()
                .rev()
                .map(|a| a.trim())
                .take_while(|a| a.starts_with("#[") || a.starts_with("//"))
                .any(|a| a == "#[test]")
    })
}

/// The rule, over every document in the repo.
#[test]
fn every_fenced_block_in_the_docs_passes_its_check() {
    let checker = Checker::new(repo());
    let mut failures = Vec::new();
    let mut blocks = 0;
    for doc in documents(&checker.repo) {
        let text = fs::read_to_string(checker.repo.join(&doc)).unwrap();
        let (n, bad) = checker.check_markdown(&doc, &text);
        blocks += n;
        failures.extend(bad);
    }
    assert!(blocks > 0, "no fenced blocks found");
    assert!(
        failures.is_empty(),
        "{} of {blocks} doc blocks fail the snippet rule (spec/TEAM.md, \"Docs snippets\"):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_extractor_finds_every_block_with_its_line_language_and_marker() {
    let md = "# Doc\n\
              \n\
              ```sh\n\
              echo one\n\
              ```\n\
              <!-- snippet: file src/lib.rs -->\n\
              \n\
              ```rust,ignore\n\
              fn f() {}\n\
              ```\n\
              \n\
              - a list item:\n\
              \n\
              \x20 ~~~text\n\
              \x20 indented output\n\
              \x20 ```\n\
              \x20 ~~~\n\
              <!-- snippet: ci some_test -->\n\
              ````bash\n\
              ```\n\
              ````\n\
              Inline ```code``` is no fence.\n";
    let (blocks, problems) = extract(md);
    assert!(problems.is_empty(), "{problems:?}");
    let got: Vec<(usize, &str, Option<Marker>, &str)> = blocks
        .iter()
        .map(|b| (b.line, b.lang.as_str(), b.marker.clone(), b.text.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, "sh", None, "echo one\n"),
            (
                8,
                "rust",
                Some(Marker::File("src/lib.rs".into())),
                "fn f() {}\n"
            ),
            (14, "text", None, "indented output\n```\n"),
            (19, "bash", Some(Marker::Ci("some_test".into())), "```\n"),
        ]
    );
}

#[test]
fn structural_mistakes_are_reported_with_their_lines() {
    let md = "<!-- snippet: file a.rs -->\nSome prose.\n<!-- snippet: run x -->\n```sh\necho\n";
    let (_, problems) = extract(md);
    let lines: Vec<usize> = problems.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![1, 3, 4], "{problems:?}");
    assert!(problems[0].1.contains("must be followed by a fenced block"));
    assert!(problems[1].1.contains("unknown marker"));
    assert!(problems[2].1.contains("never closed"));
}

/// The checker on a small repo of its own: each kind of bad block fails,
/// naming its file and line, and the good ones pass.
#[test]
fn a_broken_snippet_fails_naming_its_file_and_line() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    fs::create_dir_all(root.join(".ci")).unwrap();
    fs::write(root.join(".ci/run"), "set -e\ncargo test --workspace\n").unwrap();
    fs::create_dir_all(root.join("crates/a/tests/all")).unwrap();
    fs::write(
        root.join("crates/a/tests/all/t.rs"),
        "#[test]\n#[ignore]\nfn real_test() {}\n\nfn helper_not_a_test() {}\n",
    )
    .unwrap();
    fs::write(root.join("lib.rs"), "// head\nlet x = 1;\nlet y = 2;\n").unwrap();
    fs::write(root.join("marker.txt"), "in the repo\n").unwrap();
    let md = [
        "# A doc",                                     // 1
        "```sh",                                       // 2: runs and passes
        "chainsink --version",                         // 3
        "grep -q 'in the repo' \"$REPO/marker.txt\"",  // 4
        "touch here && test -f ./here",                // 5
        "```",                                         // 6
        "```sh",                                       // 7: fails
        "echo about to fail",                          // 8
        "false",                                       // 9
        "echo never",                                  // 10
        "```",                                         // 11
        "```bash",                                     // 12: unset variable
        "echo \"$NOT_SET_ANYWHERE\"",                  // 13
        "```",                                         // 14
        "```",                                         // 15: no language
        "chainsink verify x",                          // 16
        "```",                                         // 17
        "```console",                                  // 18: unknown language
        "$ chainsink verify x",                        // 19
        "```",                                         // 20
        "```rust",                                     // 21: no marker
        "let x = 1;",                                  // 22
        "```",                                         // 23
        "<!-- snippet: file lib.rs -->",               // 24
        "```rust",                                     // 25: verbatim: passes
        "let x = 1;",                                  // 26
        "let y = 2;",                                  // 27
        "```",                                         // 28
        "<!-- snippet: file lib.rs -->",               // 29
        "```rust",                                     // 30: not verbatim
        "let x = 1;",                                  // 31
        "let z = 3;",                                  // 32
        "```",                                         // 33
        "<!-- snippet: file missing.py -->",           // 34
        "```python",                                   // 35: missing file
        "print(1)",                                    // 36
        "```",                                         // 37
        "<!-- snippet: ci real_test -->",              // 38
        "```sh",                                       // 39: a real test: passes
        "cargo test",                                  // 40
        "```",                                         // 41
        "<!-- snippet: ci cargo test --workspace -->", // 42
        "```sh",                                       // 43: a .ci/run line: passes
        "cargo test --workspace",                      // 44
        "```",                                         // 45
        "<!-- snippet: ci helper_not_a_test -->",      // 46
        "```sh",                                       // 47: not a #[test]
        "cargo test",                                  // 48
        "```",                                         // 49
        "```text",                                     // 50: output: unchecked
        "anything at all",                             // 51
        "```",                                         // 52
    ]
    .join("\n");
    let checker = Checker::new(root.to_path_buf());
    let (n, failures) = checker.check_markdown("doc.md", &md);
    assert_eq!(n, 13);
    let lines: Vec<&str> = failures
        .iter()
        .map(|f| f.split(": ").next().unwrap())
        .collect();
    assert_eq!(
        lines,
        vec![
            "doc.md:7",
            "doc.md:12",
            "doc.md:15",
            "doc.md:18",
            "doc.md:21",
            "doc.md:30",
            "doc.md:35",
            "doc.md:47"
        ],
        "{failures:#?}"
    );
    assert!(failures[0].contains("exit status: 1") && failures[0].contains("about to fail"));
    assert!(failures[1].contains("NOT_SET_ANYWHERE: unbound variable"));
    assert!(failures[2].contains("without a language") && failures[2].contains("```text"));
    assert!(failures[3].contains("unknown language `console`"));
    assert!(failures[4].contains("<!-- snippet: file PATH -->"));
    assert!(failures[5].contains("`let z = 3;`"));
    assert!(failures[6].contains("cannot read `missing.py`"));
    assert!(failures[7].contains("names neither a #[test] fn"));
}

/// The quick start's commands (README, "Quick start"), with the binary the
/// tests built instead of `cargo run --release --`: a dry run of the example
/// workflow into `quickstart.jsonl`, then `verify`.
#[test]
fn the_quick_start_runs_the_example_and_verifies_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("quickstart.jsonl");
    let example = repo().join("workflows/example.yaml");
    let out = run(
        &[
            "run",
            example.to_str().unwrap(),
            "--dry-run",
            "--log",
            log.to_str().unwrap(),
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["verify", log.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("OK 17 records, head "),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `examples/python-verifier/verify.py` (the Python check shown in
/// docs/audit-log.md) on a chained log, a chain-off log and a tampered one.
#[test]
fn the_python_verifier_runs_on_every_kind_of_log() {
    let dir = tempfile::tempdir().unwrap();
    let script = repo().join("examples/python-verifier/verify.py");
    let python = |log: &Path| {
        Command::new("python3")
            .arg(&script)
            .arg(log)
            .output()
            .expect("python3")
    };
    // A chained log.
    let chained = dir.path().join("chained.jsonl");
    emit_n(&chained, 5, "none");
    let out = python(&chained);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK 5 records, head "));
    // A log written with the chain off.
    let plain = dir.path().join("plain.jsonl");
    let out = run(
        &[
            "emit",
            "--type",
            "t",
            "--hash-chain",
            "false",
            "--log",
            plain.to_str().unwrap(),
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = python(&plain);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "OK 1 records, no hash chain"
    );
    // A tampered one fails.
    let text = fs::read_to_string(&chained)
        .unwrap()
        .replacen("\"i\": 2", "\"i\": 7", 1);
    fs::write(&chained, text).unwrap();
    let out = python(&chained);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("line 3: hash mismatch"),
        "{}",
        stderr(&out)
    );
}
