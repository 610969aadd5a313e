//! Validation: every error kind, with its message and its position.

use std::path::Path;

use chainsink_executor::workflow::{ErrorKind, Runtime, Teardown, Workflow};

/// A valid workflow; tests edit single lines of it. Line numbers:
///  1 apiVersion, 2 metadata, 3 name, 4 agents, 5 `- name: a`, 6 program,
///  7 `- name: b`, 8 teams, 9 `- name: t`, 10 agents, 11 tasks,
/// 12 `- subject: one`, 13 description, 14 assign_to, 15 `- subject: two`,
/// 16 description, 17 assign_to, 18 blocked_by.
const BASE: &str = "\
apiVersion: telemachy/v1
metadata:
  name: demo
agents:
  - name: a
    program: \"true\"
  - name: b
teams:
  - name: t
    agents: [a, b]
    tasks:
      - subject: one
        description: first
        assign_to: a
      - subject: two
        description: second
        assign_to: b
        blocked_by: [one]
";

/// BASE with line `n` (1-based) replaced.
fn edit(n: usize, line: &str) -> String {
    BASE.lines()
        .enumerate()
        .map(|(i, l)| if i + 1 == n { line } else { l })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The errors for `text`, as (line, column, kind, message).
fn errors(text: &str) -> Vec<(usize, usize, ErrorKind, String)> {
    Workflow::from_str(text, "w.yaml")
        .expect_err("expected validation errors")
        .errors
        .into_iter()
        .map(|e| {
            assert_eq!(e.file, "w.yaml");
            (e.line, e.column, e.kind, e.message)
        })
        .collect()
}

/// Exactly one error, at (line, col), of `kind`, whose message contains all of `parts`.
fn one(text: &str, line: usize, col: usize, kind: ErrorKind, parts: &[&str]) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    let (l, c, k, m) = &errs[0];
    assert_eq!((*l, *c, *k), (line, col, kind), "message: {m}");
    for p in parts {
        assert!(m.contains(p), "message {m:?} lacks {p:?}");
    }
}

#[test]
fn base_is_valid_and_defaults_apply() {
    let wf = Workflow::from_str(BASE, "w.yaml").unwrap();
    assert_eq!(wf.name(), "demo");
    assert_eq!(wf.api_version, "telemachy/v1");
    let b = &wf.agents[1];
    assert_eq!(b.program, "claude-code");
    assert_eq!(b.working_dir, "/tmp");
    assert_eq!(b.runtime, Runtime::Local);
    assert_eq!((b.cpus, b.memory.as_str()), (2, "4g"));
    assert_eq!(
        (b.model.as_deref(), b.docker_image.as_deref()),
        (None, None)
    );
    assert_eq!(wf.teardown, Teardown::OnCompletion);
    assert_eq!(wf.timeout_seconds, None);
    assert_eq!(wf.teams[0].tasks[0].blocked_by, Vec::<String>::new());
    assert_eq!(wf.teams[0].tasks[1].blocked_by, vec!["one"]);
}

#[test]
fn unknown_field_lists_allowed_fields() {
    one(
        &edit(6, "    progam: \"true\""),
        6,
        5,
        ErrorKind::UnknownField,
        &[
            "unknown field `progam` in agent (did you mean `program`?)",
            "allowed fields are: `name`, `program`, `model`, `working_dir`, `runtime`, \
             `docker_image`, `cpus`, `memory`",
        ],
    );
    one(
        &format!("{BASE}owner: me\n"),
        19,
        1,
        ErrorKind::UnknownField,
        &["unknown field `owner` in the workflow", "`timeout_seconds`"],
    );
    one(
        &edit(18, "        blocked: [one]"),
        18,
        9,
        ErrorKind::UnknownField,
        &["unknown field `blocked` in task", "`blocked_by`"],
    );
}

#[test]
fn missing_required_fields_point_at_the_mapping() {
    // Remove assign_to entirely: the error is at the task mapping (its first key).
    let text = BASE.replace("        assign_to: a\n", "");
    one(
        &text,
        12,
        9,
        ErrorKind::MissingField,
        &["task is missing required field `assign_to`; add `assign_to: <agent name>`"],
    );
    one(
        &edit(3, "  title: demo"),
        3,
        3,
        ErrorKind::MissingField,
        &["`metadata` is missing required field `name`; add `name: <workflow name>`"],
    );
    let text = BASE.replace("teams:", "teamz:");
    let errs = errors(&text);
    assert!(
        errs.iter().any(
            |(l, c, k, m)| (*l, *c, *k) == (1, 1, ErrorKind::MissingField)
                && m.contains("the workflow is missing required field `teams`")
        ),
        "{errs:#?}"
    );
    assert!(
        errs.iter().any(
            |(l, c, k, m)| (*l, *c, *k) == (8, 1, ErrorKind::UnknownField)
                && m.contains("did you mean `teams`?")
        ),
        "{errs:#?}"
    );
}

#[test]
fn wrong_types_say_what_was_found_and_how_to_fix() {
    one(
        &edit(7, "  - name: b\n    cpus: two"),
        8,
        11,
        ErrorKind::WrongType,
        &["`cpus` must be an integer, found a string (\"two\"); write e.g. `cpus: 2`"],
    );
    one(
        &edit(7, "  - name: b\n    memory: 4"),
        8,
        13,
        ErrorKind::WrongType,
        &["`memory` must be a string, found an integer (4); quote it: `memory: \"4\"`"],
    );
    one(
        &edit(10, "    agents: a"),
        10,
        13,
        ErrorKind::WrongType,
        &["`agents` must be a list of strings, found a string (\"a\")"],
    );
    one(
        &edit(18, "        blocked_by: [one, 7]"),
        18,
        27,
        ErrorKind::WrongType,
        &["entries of `blocked_by` must be strings, found an integer (7); quote it: \"7\""],
    );
    one(
        &format!("{BASE}timeout_seconds: soon\n"),
        19,
        18,
        ErrorKind::WrongType,
        &["`timeout_seconds` must be a number of seconds or null"],
    );
    one(
        "apiVersion: telemachy/v1\nmetadata: demo\nagents: []\nteams: []\n",
        2,
        11,
        ErrorKind::WrongType,
        &["`metadata` must be a mapping of strings, found a string (\"demo\")"],
    );
    one(
        "- a\n- b\n",
        1,
        1,
        ErrorKind::WrongType,
        &["the workflow must be a mapping", "found a list"],
    );
}

#[test]
fn invalid_values() {
    one(
        &edit(1, "apiVersion: telemachy/v2"),
        1,
        13,
        ErrorKind::InvalidValue,
        &["`apiVersion` must be \"telemachy/v1\", found \"telemachy/v2\""],
    );
    one(
        &edit(7, "  - name: b\n    runtime: podman"),
        8,
        14,
        ErrorKind::InvalidValue,
        &["`runtime` must be one of `local`, `docker`, found \"podman\""],
    );
    one(
        &format!("{BASE}teardown: on_complete\n"),
        19,
        11,
        ErrorKind::InvalidValue,
        &["(did you mean `on_completion`?)"],
    );
    one(
        &format!("{BASE}timeout_seconds: 0\n"),
        19,
        18,
        ErrorKind::InvalidValue,
        &["`timeout_seconds` must be greater than 0"],
    );
    one(
        &edit(7, "  - name: b\n    cpus: 0"),
        8,
        11,
        ErrorKind::InvalidValue,
        &["`cpus` must be a positive integer, found 0"],
    );
    one(
        &edit(15, "      - subject: \"\""),
        15,
        18,
        ErrorKind::InvalidValue,
        &["task subject must not be empty"],
    );
}

#[test]
fn unknown_agents_in_teams_and_assign_to() {
    one(
        &edit(10, "    agents: [a, b, c]"),
        10,
        20,
        ErrorKind::UnknownAgent,
        &[
            "team `t` lists unknown agent `c`",
            "define it under the top-level `agents:`",
        ],
    );
    one(
        &edit(17, "        assign_to: bb"),
        17,
        20,
        ErrorKind::UnknownAgent,
        &["task \"two\" is assigned to unknown agent `bb` (did you mean `b`?)"],
    );
}

#[test]
fn assign_to_must_be_a_team_member() {
    one(
        &edit(10, "    agents: [a]"),
        17,
        20,
        ErrorKind::NotTeamMember,
        &[
            "task \"two\" is assigned to `b`, which is not a member of team `t`",
            "add `b` to the team's `agents` or assign the task to one of: `a`",
        ],
    );
}

#[test]
fn unknown_blocked_by() {
    one(
        &edit(18, "        blocked_by: [onee]"),
        18,
        22,
        ErrorKind::UnknownDependency,
        &["task \"two\" is blocked by unknown task \"onee\" (did you mean \"one\"?)"],
    );
}

#[test]
fn duplicates() {
    one(
        &edit(7, "  - name: b\n  - name: a"),
        8,
        11,
        ErrorKind::Duplicate,
        &["duplicate agent name `a` (first at line 5, column 11)"],
    );
    one(
        &edit(15, "      - subject: one"),
        15,
        18,
        ErrorKind::Duplicate,
        &["duplicate task subject in team `t` `one` (first at line 12, column 18)"],
    );
    one(
        &edit(10, "    agents: [a, b, a]"),
        10,
        20,
        ErrorKind::Duplicate,
        &["duplicate member of team `t` `a`"],
    );
    let two_teams = format!(
        "{BASE}  - name: t\n    agents: [a]\n    tasks:\n      - subject: x\n        \
         description: y\n        assign_to: a\n"
    );
    one(
        &two_teams,
        19,
        11,
        ErrorKind::Duplicate,
        &["duplicate team name `t` (first at line 9, column 11)"],
    );
}

#[test]
fn cycles_are_named() {
    let two = edit(14, "        assign_to: a\n        blocked_by: [two]");
    // Lines after 14 shift by one: "blocked_by: [one]" is now line 19.
    one(
        &two,
        15,
        22,
        ErrorKind::Cycle,
        &[
            "dependency cycle: \"one\" -> \"two\" -> \"one\"",
            "remove one of these blocked_by entries",
        ],
    );
    one(
        &edit(18, "        blocked_by: [two]"),
        18,
        22,
        ErrorKind::Cycle,
        &["dependency cycle: \"two\" -> \"two\""],
    );
    let three = "\
apiVersion: telemachy/v1
metadata: {name: c}
agents: [{name: a}]
teams:
  - name: t
    agents: [a]
    tasks:
      - {subject: x, description: d, assign_to: a, blocked_by: [z]}
      - {subject: y, description: d, assign_to: a, blocked_by: [x]}
      - {subject: z, description: d, assign_to: a, blocked_by: [y]}
      - {subject: w, description: d, assign_to: a, blocked_by: [x]}
";
    one(
        three,
        8,
        65,
        ErrorKind::Cycle,
        &["dependency cycle: \"x\" -> \"z\" -> \"y\" -> \"x\""],
    );
}

#[test]
fn blocked_by_may_cross_teams_by_unique_subject() {
    let text = "\
apiVersion: telemachy/v1
metadata: {name: x}
agents: [{name: a}]
teams:
  - name: t1
    agents: [a]
    tasks:
      - {subject: build, description: d, assign_to: a}
  - name: t2
    agents: [a]
    tasks:
      - {subject: test, description: d, assign_to: a, blocked_by: [build]}
";
    let wf = Workflow::from_str(text, "x.yaml").unwrap();
    let refs = wf.task_refs();
    assert_eq!(wf.dependencies(refs[1]), vec![refs[0]]);

    // The same subject in two other teams is ambiguous...
    let ambiguous = text.replace(
        "  - name: t2\n",
        "  - name: t3\n    agents: [a]\n    tasks:\n      - {subject: build, description: d, \
         assign_to: a}\n  - name: t2\n",
    );
    one(
        &ambiguous,
        16,
        68,
        ErrorKind::AmbiguousDependency,
        &[
            "task \"test\" is blocked by \"build\", which is not in team `t2` and exists in \
           several other teams (`t1`, `t3`)",
        ],
    );
    // ...but a task in the own team wins.
    let own = ambiguous.replace(
        "      - {subject: test",
        "      - {subject: build, description: d, assign_to: a}\n      - {subject: test",
    );
    let wf = Workflow::from_str(&own, "x.yaml").unwrap();
    let refs = wf.task_refs();
    assert_eq!(wf.dependencies(refs[3]), vec![refs[2]]);
}

#[test]
fn all_errors_are_collected_in_file_order() {
    let text = BASE
        .replace(
            "    program: \"true\"",
            "    program: \"true\"\n    cpus: many",
        )
        .replace("agents: [a, b]", "agents: [a, b, ghost]")
        .replace("blocked_by: [one]", "blocked_by: [nothing]")
        .replace("  name: demo", "  name: demo\n  owner: 5");
    let errs = errors(&text);
    let kinds: Vec<_> = errs.iter().map(|e| (e.0, e.1, e.2)).collect();
    assert_eq!(
        kinds,
        vec![
            (4, 10, ErrorKind::WrongType),
            (8, 11, ErrorKind::WrongType),
            (12, 20, ErrorKind::UnknownAgent),
            (20, 22, ErrorKind::UnknownDependency),
        ],
        "{errs:#?}"
    );
    let shown = Workflow::from_str(&text, "w.yaml").unwrap_err().to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("w.yaml:4:10: `metadata.owner` must be a string"));
    assert!(lines[3].starts_with("w.yaml:20:22: task \"two\" is blocked by unknown task"));
}

#[test]
fn syntax_errors_have_positions() {
    one(
        "apiVersion: telemachy/v1\nmetadata:\n  name: [unclosed\n",
        4,
        1,
        ErrorKind::Syntax,
        &["invalid YAML"],
    );
    one(
        "metadata: {name: a}\nmetadata: {name: b}\nagents: []\nteams: []\n",
        2,
        1,
        ErrorKind::Syntax,
        &["duplicated key"],
    );
    one("", 1, 1, ErrorKind::Syntax, &["workflow file is empty"]);
    one(
        "metadata: {name: a}\nagents: []\nteams: []\n---\nfoo: 1\n",
        5,
        1,
        ErrorKind::Syntax,
        &["exactly one YAML document"],
    );
}

#[test]
fn example_workflows_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    for name in ["example.yaml", "hello-world.yaml", "fanout.yaml"] {
        let wf = Workflow::from_path(&dir.join(name))
            .unwrap_or_else(|e| panic!("{name} is invalid:\n{e}"));
        assert!(wf.task_count() > 0, "{name}");
    }
    let ex = Workflow::from_path(&dir.join("example.yaml")).unwrap();
    assert_eq!(ex.name(), "codebase-audit");
    assert_eq!(ex.agents.len(), 2);
    assert_eq!(ex.task_count(), 3);
}
