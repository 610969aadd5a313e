//! The telemachy/v1 workflow model and its strict validation.
//!
//! A workflow file is parsed with positions for every node, checked field by
//! field, then cross-checked (agent references, team membership, dependencies,
//! duplicates, cycles). All problems are collected; each one carries the file,
//! line and column (1-based) of the offending node and says how to fix it.
//!
//! # Dependency scope
//!
//! `blocked_by` names task *subjects*. A subject is looked up first in the
//! task's own team (telemachy's scope). If the team has no such task, a task of
//! that subject in another team is used, provided exactly one other team has
//! it; if several do, the reference is ambiguous and rejected. Subjects must be
//! unique within a team.

mod check;
mod parse;

use std::fmt;
use std::path::Path;

/// The only `apiVersion` this crate understands.
pub const API_VERSION: &str = "telemachy/v1";

/// Deepest nesting of YAML collections (mappings and sequences) a workflow
/// file may have, counting the top-level mapping as level 1 and aliases at
/// the depth they expand to.
///
/// A telemachy/v1 workflow needs 6 (workflow, `teams`, a team, `tasks`, a
/// task, `blocked_by`); 64 leaves room for nested values in fields we do not
/// interpret while keeping every later pass over the tree (the loader, drop)
/// shallow. Deeper input is refused by an iterative pre-scan of the YAML
/// event stream, before any tree is built.
pub const MAX_YAML_DEPTH: usize = 64;

/// A validated telemachy/v1 workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// File name the workflow was read from (used in messages).
    pub source: String,
    /// Always [`API_VERSION`] (the default when the file omits it).
    pub api_version: String,
    /// The `metadata` section.
    pub metadata: Metadata,
    /// Agents, in file order.
    pub agents: Vec<Agent>,
    /// Teams, in file order.
    pub teams: Vec<Team>,
    /// What to tear down when the run ends.
    pub teardown: Teardown,
    /// Whole-run time limit in seconds; `None` means no limit.
    pub timeout_seconds: Option<f64>,
}

/// The `metadata` section of a workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Workflow name (`metadata.name`, required).
    pub name: String,
    /// Optional free-text description.
    pub description: Option<String>,
    /// Every other `metadata` entry, in file order.
    pub extra: Vec<(String, String)>,
}

/// One agent: a program that performs the tasks assigned to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Unique agent name.
    pub name: String,
    /// Command line run with `sh -c` for each task (default `claude-code`).
    pub program: String,
    /// Model name, passed through to the audit log only.
    pub model: Option<String>,
    /// Directory the program runs in (default `/tmp`); it must exist.
    pub working_dir: String,
    /// Where the program runs.
    pub runtime: Runtime,
    /// Image for the docker runtime (recorded, not used here).
    pub docker_image: Option<String>,
    /// CPU count for the docker runtime (default 2).
    pub cpus: u32,
    /// Memory limit for the docker runtime (default `4g`).
    pub memory: String,
}

/// Where an agent's program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// On this machine, via `sh -c`.
    Local,
    /// In a container: accepted by the model, but tasks of such agents fail
    /// at run time because this executor has no docker runtime.
    Docker,
}

impl Runtime {
    /// The YAML spelling (`local` / `docker`).
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Local => "local",
            Runtime::Docker => "docker",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A team: a set of agents and the tasks they perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    /// Unique team name.
    pub name: String,
    /// Member agent names.
    pub agents: Vec<String>,
    /// Tasks, in file order.
    pub tasks: Vec<Task>,
}

/// One task, performed by one team member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Subject, unique within the team; `blocked_by` refers to it.
    pub subject: String,
    /// Instructions, given to the program on stdin.
    pub description: String,
    /// The member agent that performs the task.
    pub assign_to: String,
    /// Subjects of the tasks that must complete first (see module docs for scope).
    pub blocked_by: Vec<String>,
}

/// Teardown policy, as in telemachy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Teardown {
    /// Tear down only when the workflow completed.
    OnCompletion,
    /// Tear down only when the workflow failed (task failure, timeout or
    /// audit failure: every run that ends with `workflow.failed`).
    OnFailure,
    /// Never tear down.
    Never,
}

impl Teardown {
    /// The YAML spelling (`on_completion` / `on_failure` / `never`).
    pub fn as_str(self) -> &'static str {
        match self {
            Teardown::OnCompletion => "on_completion",
            Teardown::OnFailure => "on_failure",
            Teardown::Never => "never",
        }
    }
}

impl fmt::Display for Teardown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A task's position in a workflow: team index and task index within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskRef {
    /// Index into [`Workflow::teams`].
    pub team: usize,
    /// Index into that team's `tasks`.
    pub task: usize,
}

impl Workflow {
    /// Read and validate a workflow file.
    pub fn from_path(path: &Path) -> Result<Workflow, ValidationErrors> {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Workflow::from_str(&text, &file),
            Err(e) => Err(ValidationErrors {
                errors: vec![ValidationError {
                    file,
                    line: 1,
                    column: 1,
                    kind: ErrorKind::Io,
                    message: format!("cannot read workflow file: {e}; check the path"),
                }],
            }),
        }
    }

    /// Parse and validate workflow text; `file_name` is used in messages.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, file_name: &str) -> Result<Workflow, ValidationErrors> {
        let mut errors = Errors::new(file_name);
        let draft = parse::parse(text, &mut errors);
        if let Some(draft) = &draft {
            check::check(draft, &mut errors);
        }
        match draft {
            Some(draft) if errors.list.is_empty() => Ok(draft.into_workflow(file_name)),
            _ => Err(errors.finish()),
        }
    }

    /// The workflow name (`metadata.name`).
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// Look up an agent by name.
    pub fn agent(&self, name: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.name == name)
    }

    /// Total number of tasks over all teams.
    pub fn task_count(&self) -> usize {
        self.teams.iter().map(|t| t.tasks.len()).sum()
    }

    /// All tasks in file order (teams in order, tasks in order).
    pub fn task_refs(&self) -> Vec<TaskRef> {
        self.teams
            .iter()
            .enumerate()
            .flat_map(|(team, t)| (0..t.tasks.len()).map(move |task| TaskRef { team, task }))
            .collect()
    }

    /// The task a reference points at.
    pub fn task(&self, r: TaskRef) -> &Task {
        &self.teams[r.team].tasks[r.task]
    }

    /// Resolve the `blocked_by` entries of a task to the tasks they name,
    /// using the scope rule in the module docs.
    pub fn dependencies(&self, r: TaskRef) -> Vec<TaskRef> {
        let refs = self.task_refs();
        match refs.iter().position(|x| *x == r) {
            Some(g) => self
                .dependency_indices()
                .swap_remove(g)
                .into_iter()
                .map(|d| refs[d])
                .collect(),
            None => Vec::new(),
        }
    }

    /// For every task in file order (as [`task_refs`](Self::task_refs)), the
    /// file-order indices of the tasks it is blocked by.
    pub fn dependency_indices(&self) -> Vec<Vec<usize>> {
        let refs = self.task_refs();
        let index = check::SubjectIndex::new(
            refs.iter()
                .map(|r| (r.team, self.task(*r).subject.as_str())),
        );
        refs.iter()
            .map(|r| {
                self.task(*r)
                    .blocked_by
                    .iter()
                    .filter_map(|s| index.resolve(r.team, s).ok())
                    .collect()
            })
            .collect()
    }
}

/// What kind of problem a [`ValidationError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be read.
    Io,
    /// The text is not well-formed YAML (or not exactly one document).
    Syntax,
    /// A mapping has a key the schema does not allow.
    UnknownField,
    /// A required field is absent.
    MissingField,
    /// A value has the wrong YAML type.
    WrongType,
    /// A value has the right type but is not allowed (bad enum value, empty name, ...).
    InvalidValue,
    /// A team or `assign_to` names an agent that is not defined.
    UnknownAgent,
    /// `assign_to` names an agent that is not a member of the task's team.
    NotTeamMember,
    /// `blocked_by` names no known task.
    UnknownDependency,
    /// `blocked_by` names a subject found in several other teams.
    AmbiguousDependency,
    /// A name (agent, team, member, task subject, dependency) appears twice.
    Duplicate,
    /// Tasks depend on each other in a cycle.
    Cycle,
}

/// One validation problem at a position in the workflow file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ValidationError {
    /// The workflow file name.
    pub file: String,
    /// 1-based line of the offending node.
    pub line: usize,
    /// 1-based column (in characters) of the offending node.
    pub column: usize,
    /// The kind of problem.
    pub kind: ErrorKind,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Every problem found in a workflow file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors {
    /// The problems (never empty).
    pub errors: Vec<ValidationError>,
}

impl fmt::Display for ValidationErrors {
    /// One `file:line:col: message` line per error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A 1-based position in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Pos {
    pub line: usize,
    pub col: usize,
}

/// Error collector shared by parsing and checking.
pub(crate) struct Errors {
    file: String,
    list: Vec<ValidationError>,
}

impl Errors {
    fn new(file: &str) -> Self {
        Errors {
            file: file.to_string(),
            list: Vec::new(),
        }
    }

    /// Record one error.
    pub(crate) fn push(&mut self, at: Pos, kind: ErrorKind, message: impl Into<String>) {
        self.list.push(ValidationError {
            file: self.file.clone(),
            line: at.line,
            column: at.col,
            kind,
            message: message.into(),
        });
    }

    /// Sort by position (stable, so same-position errors keep their order).
    fn finish(mut self) -> ValidationErrors {
        self.list.sort_by_key(|e| (e.line, e.column));
        ValidationErrors { errors: self.list }
    }
}

/// "`a`, `b`, `c`" for messages.
pub(crate) fn list_names<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let v: Vec<String> = names.into_iter().map(|n| format!("`{n}`")).collect();
    if v.is_empty() {
        "(none)".to_string()
    } else {
        v.join(", ")
    }
}

/// A close match for a misspelt name, if any (edit distance <= 2).
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| {
            let len = word.chars().count();
            *d <= (len / 3).max(2) && *d < len
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("name", "name"), 0);
        assert_eq!(edit_distance("nmae", "name"), 2);
        assert_eq!(edit_distance("progam", "program"), 1);
        assert_eq!(did_you_mean("progam", ["name", "program"]), Some("program"));
        assert_eq!(did_you_mean("zzzzzz", ["name", "program"]), None);
    }

    #[test]
    fn display_is_one_line_per_error() {
        let errs = ValidationErrors {
            errors: vec![
                ValidationError {
                    file: "w.yaml".into(),
                    line: 2,
                    column: 3,
                    kind: ErrorKind::Syntax,
                    message: "first".into(),
                },
                ValidationError {
                    file: "w.yaml".into(),
                    line: 4,
                    column: 1,
                    kind: ErrorKind::Syntax,
                    message: "second".into(),
                },
            ],
        };
        assert_eq!(errs.to_string(), "w.yaml:2:3: first\nw.yaml:4:1: second");
    }

    #[test]
    fn unreadable_file_is_an_error_with_position() {
        let err = Workflow::from_path(Path::new("/nonexistent/chainsink/w.yaml")).unwrap_err();
        assert_eq!(err.errors.len(), 1);
        let e = &err.errors[0];
        assert_eq!((e.line, e.column, e.kind), (1, 1, ErrorKind::Io));
        assert!(
            e.to_string()
                .starts_with("/nonexistent/chainsink/w.yaml:1:1: cannot read")
        );
    }
}
