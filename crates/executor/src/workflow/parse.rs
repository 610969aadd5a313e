//! YAML text -> draft model, with a position for everything that later checks
//! may need to point at. Field-level problems are recorded as they are found
//! and parsing carries on, so one pass reports every local error.

use std::collections::HashMap;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use saphyr_parser::{Event, Marker, Parser};

use super::{
    API_VERSION, Agent, ErrorKind, Errors, MAX_YAML_DEPTH, Metadata, Pos, Runtime, Task, Team,
    Teardown, Workflow, did_you_mean, list_names,
};

/// A value and where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Sp<T> {
    pub v: T,
    pub at: Pos,
}

/// The whole file, possibly incomplete (fields left `None` had errors).
pub(crate) struct Draft {
    pub metadata: Option<Metadata>,
    pub agents: Vec<DAgent>,
    pub teams: Vec<DTeam>,
    pub teardown: Teardown,
    pub timeout_seconds: Option<f64>,
}

/// One agent entry.
pub(crate) struct DAgent {
    pub name: Option<Sp<String>>,
    pub agent: Agent,
}

/// One team entry.
pub(crate) struct DTeam {
    pub name: Option<Sp<String>>,
    /// `None` when the list itself was invalid (membership is then not checked).
    pub agents: Option<Vec<Sp<String>>>,
    pub tasks: Vec<DTask>,
}

/// One task entry.
pub(crate) struct DTask {
    pub subject: Option<Sp<String>>,
    pub description: Option<String>,
    pub assign_to: Option<Sp<String>>,
    pub blocked_by: Vec<Sp<String>>,
}

impl Draft {
    /// Build the public model; only called when no error was recorded, so
    /// every required field is present.
    pub(crate) fn into_workflow(self, file_name: &str) -> Workflow {
        let take = |s: Option<Sp<String>>| s.map(|s| s.v).unwrap_or_default();
        Workflow {
            source: file_name.to_string(),
            api_version: API_VERSION.to_string(),
            metadata: self.metadata.unwrap_or(Metadata {
                name: String::new(),
                description: None,
                extra: Vec::new(),
            }),
            agents: self.agents.into_iter().map(|a| a.agent).collect(),
            teams: self
                .teams
                .into_iter()
                .map(|t| Team {
                    name: take(t.name),
                    agents: t.agents.into_iter().flatten().map(|a| a.v).collect(),
                    tasks: t
                        .tasks
                        .into_iter()
                        .map(|k| Task {
                            subject: take(k.subject),
                            description: k.description.unwrap_or_default(),
                            assign_to: take(k.assign_to),
                            blocked_by: k.blocked_by.into_iter().map(|b| b.v).collect(),
                        })
                        .collect(),
                })
                .collect(),
            teardown: self.teardown,
            timeout_seconds: self.timeout_seconds,
        }
    }
}

const TOP_FIELDS: &[&str] = &[
    "apiVersion",
    "metadata",
    "agents",
    "teams",
    "teardown",
    "timeout_seconds",
];
const AGENT_FIELDS: &[&str] = &[
    "name",
    "program",
    "model",
    "working_dir",
    "runtime",
    "docker_image",
    "cpus",
    "memory",
];
const TEAM_FIELDS: &[&str] = &["name", "agents", "tasks"];
const TASK_FIELDS: &[&str] = &["subject", "description", "assign_to", "blocked_by"];

/// Parse `text`; `None` when it is not even a YAML mapping document.
pub(crate) fn parse(text: &str, errs: &mut Errors) -> Option<Draft> {
    // saphyr's loader (and dropping its tree) recurses once per level, so
    // deep input must be refused before it runs.
    if let Err((at, message)) = check_depth(text) {
        errs.push(at, ErrorKind::Syntax, message);
        return None;
    }
    let docs = match MarkedYaml::load_from_str(text) {
        Ok(d) => d,
        Err(e) => {
            let m = e.marker();
            errs.push(
                Pos {
                    line: m.line().max(1),
                    col: m.col() + 1,
                },
                ErrorKind::Syntax,
                format!(
                    "invalid YAML: {}; fix the syntax at this position",
                    e.info()
                ),
            );
            return None;
        }
    };
    if docs.len() > 1 {
        errs.push(
            pos(&docs[1]),
            ErrorKind::Syntax,
            "a workflow file holds exactly one YAML document; remove the `---` and what follows, \
             or move it to its own file",
        );
    }
    let Some(root) = docs.first().filter(|d| !is_empty(d)) else {
        errs.push(
            Pos { line: 1, col: 1 },
            ErrorKind::Syntax,
            "workflow file is empty; expected a mapping with `apiVersion`, `metadata`, `agents` \
             and `teams`",
        );
        return None;
    };
    let root = untag(root, "the workflow", errs)?;
    let top = Fields::read(root, "the workflow", TOP_FIELDS, errs)?;

    if let Some(v) = top.get("apiVersion")
        && let Some(s) = string(v, "apiVersion", errs)
        && s != API_VERSION
    {
        errs.push(
            pos(v),
            ErrorKind::InvalidValue,
            format!(
                "`apiVersion` must be \"{API_VERSION}\", found \"{s}\"; this executor only \
                 understands {API_VERSION} workflows"
            ),
        );
    }

    let metadata = top
        .require(
            "metadata",
            "the workflow",
            "metadata: {name: <workflow name>}",
            errs,
        )
        .and_then(|m| metadata(m, errs));
    let agents = top
        .require(
            "agents",
            "the workflow",
            "agents: [{name: <agent name>}]",
            errs,
        )
        .and_then(|n| sequence(n, "agents", "a list of agent mappings", errs))
        .map(|items| items.iter().filter_map(|a| agent(a, errs)).collect())
        .unwrap_or_default();
    let teams = top
        .require(
            "teams",
            "the workflow",
            "teams: [{name: <team name>, agents: [...], tasks: [...]}]",
            errs,
        )
        .and_then(|n| sequence(n, "teams", "a list of team mappings", errs))
        .map(|items| items.iter().filter_map(|t| team(t, errs)).collect())
        .unwrap_or_default();

    let teardown = top
        .get("teardown")
        .and_then(|n| {
            choice(
                n,
                "teardown",
                &["on_completion", "on_failure", "never"],
                errs,
            )
        })
        .map(|s| match s {
            "on_failure" => Teardown::OnFailure,
            "never" => Teardown::Never,
            _ => Teardown::OnCompletion,
        })
        .unwrap_or(Teardown::OnCompletion);

    let timeout_seconds = top.get("timeout_seconds").and_then(|n| timeout(n, errs));

    Some(Draft {
        metadata,
        agents,
        teams,
        teardown,
        timeout_seconds,
    })
}

fn metadata(node: &MarkedYaml, errs: &mut Errors) -> Option<Metadata> {
    let node = untag(node, "metadata", errs)?;
    let YamlData::Mapping(map) = &node.data else {
        errs.push(
            pos(node),
            ErrorKind::WrongType,
            format!(
                "`metadata` must be a mapping of strings, found {}; write `metadata:` followed by \
                 indented `name: <workflow name>`",
                describe(node)
            ),
        );
        return None;
    };
    let mut name = None;
    let mut description = None;
    let mut extra = Vec::new();
    for (k, v) in map.iter() {
        let Some(key) = key_str(k, "metadata", errs) else {
            continue;
        };
        let field = format!("metadata.{key}");
        let Some(value) = string(v, &field, errs) else {
            continue;
        };
        match key {
            "name" => {
                name = Some(Sp {
                    v: value,
                    at: pos(v),
                })
            }
            "description" => description = Some(value),
            _ => extra.push((key.to_string(), value)),
        }
    }
    let Some(name) = name else {
        errs.push(
            pos(node),
            ErrorKind::MissingField,
            "`metadata` is missing required field `name`; add `name: <workflow name>`",
        );
        return None;
    };
    non_empty(&name, "metadata.name", errs);
    Some(Metadata {
        name: name.v,
        description,
        extra,
    })
}

fn agent(node: &MarkedYaml, errs: &mut Errors) -> Option<DAgent> {
    let f = Fields::read(node, "agent", AGENT_FIELDS, errs)?;
    let name = f
        .require("name", "agent", "name: <agent name>", errs)
        .and_then(|n| spanned_string(n, "name", errs));
    if let Some(n) = &name {
        non_empty(n, "agent name", errs);
    }
    let mut agent = Agent {
        name: name.as_ref().map(|n| n.v.clone()).unwrap_or_default(),
        program: "claude-code".to_string(),
        model: None,
        working_dir: "/tmp".to_string(),
        runtime: Runtime::Local,
        docker_image: None,
        cpus: 2,
        memory: "4g".to_string(),
    };
    if let Some(n) = f.get("program")
        && let Some(s) = spanned_string(n, "program", errs)
    {
        non_empty(&s, "program", errs);
        agent.program = s.v;
    }
    if let Some(n) = f.get("model") {
        agent.model = nullable_string(n, "model", errs);
    }
    if let Some(n) = f.get("working_dir")
        && let Some(s) = spanned_string(n, "working_dir", errs)
    {
        non_empty(&s, "working_dir", errs);
        agent.working_dir = s.v;
    }
    if let Some(n) = f.get("runtime")
        && let Some(s) = choice(n, "runtime", &["local", "docker"], errs)
    {
        agent.runtime = if s == "docker" {
            Runtime::Docker
        } else {
            Runtime::Local
        };
    }
    if let Some(n) = f.get("docker_image") {
        agent.docker_image = nullable_string(n, "docker_image", errs);
    }
    if let Some(n) = f.get("cpus")
        && let Some(c) = cpus(n, errs)
    {
        agent.cpus = c;
    }
    if let Some(n) = f.get("memory")
        && let Some(s) = spanned_string(n, "memory", errs)
    {
        non_empty(&s, "memory", errs);
        agent.memory = s.v;
    }
    Some(DAgent { name, agent })
}

fn team(node: &MarkedYaml, errs: &mut Errors) -> Option<DTeam> {
    let f = Fields::read(node, "team", TEAM_FIELDS, errs)?;
    let name = f
        .require("name", "team", "name: <team name>", errs)
        .and_then(|n| spanned_string(n, "name", errs));
    if let Some(n) = &name {
        non_empty(n, "team name", errs);
    }
    let agents = f
        .require("agents", "team", "agents: [<agent name>, ...]", errs)
        .and_then(|n| string_list(n, "agents", errs));
    let tasks = f
        .require(
            "tasks",
            "team",
            "tasks: [{subject: ..., description: ..., assign_to: ...}]",
            errs,
        )
        .and_then(|n| sequence(n, "tasks", "a list of task mappings", errs))
        .map(|items| items.iter().filter_map(|t| task(t, errs)).collect())
        .unwrap_or_default();
    Some(DTeam {
        name,
        agents,
        tasks,
    })
}

fn task(node: &MarkedYaml, errs: &mut Errors) -> Option<DTask> {
    let f = Fields::read(node, "task", TASK_FIELDS, errs)?;
    let subject = f
        .require("subject", "task", "subject: <short title>", errs)
        .and_then(|n| spanned_string(n, "subject", errs));
    if let Some(s) = &subject {
        non_empty(s, "task subject", errs);
    }
    let description = f
        .require("description", "task", "description: <instructions>", errs)
        .and_then(|n| string(n, "description", errs));
    let assign_to = f
        .require("assign_to", "task", "assign_to: <agent name>", errs)
        .and_then(|n| spanned_string(n, "assign_to", errs));
    let blocked_by = f
        .get("blocked_by")
        .and_then(|n| string_list(n, "blocked_by", errs))
        .unwrap_or_default();
    Some(DTask {
        subject,
        description,
        assign_to,
        blocked_by,
    })
}

/// The string-keyed entries of a mapping node, with unknown keys reported.
struct Fields<'n> {
    at: Pos,
    entries: Vec<(&'n str, &'n MarkedYaml<'n>)>,
}

impl<'n> Fields<'n> {
    fn read(
        node: &'n MarkedYaml<'n>,
        what: &str,
        allowed: &[&str],
        errs: &mut Errors,
    ) -> Option<Fields<'n>> {
        let node = untag(node, what, errs)?;
        let YamlData::Mapping(map) = &node.data else {
            errs.push(
                pos(node),
                ErrorKind::WrongType,
                format!(
                    "{what} must be a mapping with fields {}, found {}",
                    list_names(allowed.iter().copied()),
                    describe(node)
                ),
            );
            return None;
        };
        let mut entries = Vec::new();
        for (k, v) in map.iter() {
            let Some(key) = key_str(k, what, errs) else {
                continue;
            };
            if allowed.contains(&key) {
                entries.push((key, v));
            } else {
                let hint = did_you_mean(key, allowed.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                errs.push(
                    pos(k),
                    ErrorKind::UnknownField,
                    format!(
                        "unknown field `{key}` in {what}{hint}; allowed fields are: {}",
                        list_names(allowed.iter().copied())
                    ),
                );
            }
        }
        Some(Fields {
            at: pos(node),
            entries,
        })
    }

    fn get(&self, key: &str) -> Option<&'n MarkedYaml<'n>> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// The field, or a "missing required field" error at the mapping.
    fn require(
        &self,
        key: &str,
        what: &str,
        example: &str,
        errs: &mut Errors,
    ) -> Option<&'n MarkedYaml<'n>> {
        let v = self.get(key);
        if v.is_none() {
            errs.push(
                self.at,
                ErrorKind::MissingField,
                format!("{what} is missing required field `{key}`; add `{example}`"),
            );
        }
        v
    }
}

/// Refuses YAML nested more than [`MAX_YAML_DEPTH`] levels deep, with the
/// position of the first collection (or alias) past the limit.
///
/// Walks saphyr's event stream with an explicit stack, so it never recurses,
/// and stops at the first level too deep without reading further. An alias
/// counts at the depth it expands to (the loader copies the anchored node),
/// so a chain of anchors cannot build a deep tree from shallow text. Syntax
/// errors are left to the loader, which reports them; it only gets that far
/// when everything before the error is within the limit.
fn check_depth(text: &str) -> Result<(), (Pos, String)> {
    match scan_depth(text) {
        DepthScan::Within => Ok(()),
        DepthScan::TooDeep(at, message) => Err((at, message)),
        // saphyr's scanner stops at 256 nested flow collections (`[[[...`),
        // and on one line it reads that far ahead before the parser emits
        // any event. Scan the text up to that point again: it ends there, so
        // the events come out and the first level too deep is found.
        DepthScan::SyntaxError(m, info) if info.contains("recursion limit") => {
            let cut = text
                .char_indices()
                .nth(m.index())
                .map_or(text.len(), |(i, _)| i);
            match scan_depth(&text[..cut]) {
                DepthScan::TooDeep(at, message) => Err((at, message)),
                _ => Err((marker_pos(m), too_deep_message())),
            }
        }
        DepthScan::SyntaxError(..) => Ok(()),
    }
}

/// What [`scan_depth`] found.
enum DepthScan {
    /// Nothing deeper than the limit (up to the end or a syntax error the
    /// loader will report).
    Within,
    /// The first node past the limit, and the message.
    TooDeep(Pos, String),
    /// The parser stopped with this error before any node past the limit.
    SyntaxError(Marker, String),
}

fn scan_depth(text: &str) -> DepthScan {
    let limit = MAX_YAML_DEPTH;
    let mut parser = Parser::new_from_str(text);
    // Per open collection: its anchor id (0: none) and the height of its
    // deepest child so far (a scalar is height 0, a collection 1 + children).
    let mut open: Vec<(usize, usize)> = Vec::new();
    // Height of each anchored node, by anchor id.
    let mut heights: HashMap<usize, usize> = HashMap::new();
    while let Some(next) = parser.next_event() {
        let (event, span) = match next {
            Ok(next) => next,
            Err(e) => return DepthScan::SyntaxError(*e.marker(), e.info().to_string()),
        };
        let (anchor, height) = match event {
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if open.len() >= limit {
                    return DepthScan::TooDeep(marker_pos(span.start), too_deep_message());
                }
                open.push((anchor, 0));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match open.pop() {
                Some((anchor, children)) => (anchor, children + 1),
                None => continue,
            },
            Event::Scalar(_, _, anchor, _) => (anchor, 0),
            Event::Alias(id) => {
                let height = heights.get(&id).copied().unwrap_or(0);
                if open.len() + height > limit {
                    return DepthScan::TooDeep(
                        marker_pos(span.start),
                        format!(
                            "this alias expands to a value {height} levels deep, which makes the \
                             YAML nested more than {limit} levels deep here, the limit for a \
                             workflow file (a workflow needs about 6); write the value out with \
                             less nesting"
                        ),
                    );
                }
                (0, height)
            }
            _ => continue,
        };
        if anchor != 0 {
            heights.insert(anchor, height);
        }
        if let Some((_, children)) = open.last_mut() {
            *children = (*children).max(height);
        }
    }
    DepthScan::Within
}

fn too_deep_message() -> String {
    format!(
        "YAML nested more than {MAX_YAML_DEPTH} levels deep, the limit for a workflow file (a \
         workflow needs about 6); remove the extra nesting"
    )
}

/// 1-based position of a parser marker.
fn marker_pos(m: Marker) -> Pos {
    Pos {
        line: m.line().max(1),
        col: m.col() + 1,
    }
}

/// 1-based position of a node.
fn pos(node: &MarkedYaml) -> Pos {
    Pos {
        line: node.span.start.line().max(1),
        col: node.span.start.col() + 1,
    }
}

fn is_empty(node: &MarkedYaml) -> bool {
    matches!(
        node.data,
        YamlData::BadValue | YamlData::Value(Scalar::Null)
    )
}

/// Reject custom tags (`!foo`); core-schema tags are already resolved by the loader.
fn untag<'n>(
    node: &'n MarkedYaml<'n>,
    what: &str,
    errs: &mut Errors,
) -> Option<&'n MarkedYaml<'n>> {
    if let YamlData::Tagged(tag, _) = &node.data {
        errs.push(
            pos(node),
            ErrorKind::WrongType,
            format!("{what} has the custom tag `{tag}`, which is not supported; remove the tag"),
        );
        return None;
    }
    Some(node)
}

fn key_str<'n>(k: &'n MarkedYaml<'n>, what: &str, errs: &mut Errors) -> Option<&'n str> {
    match &k.data {
        YamlData::Value(Scalar::String(s)) => Some(s.as_ref()),
        _ => {
            errs.push(
                pos(k),
                ErrorKind::WrongType,
                format!(
                    "keys in {what} must be field names, found {}; write the field name as plain \
                     text",
                    describe(k)
                ),
            );
            None
        }
    }
}

/// A short description of a node's type (and value, for scalars).
fn describe(node: &MarkedYaml) -> String {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => format!("a string (\"{s}\")"),
        YamlData::Value(Scalar::Integer(i)) => format!("an integer ({i})"),
        YamlData::Value(Scalar::FloatingPoint(f)) => format!("a number ({})", f.into_inner()),
        YamlData::Value(Scalar::Boolean(b)) => format!("a boolean ({b})"),
        YamlData::Value(Scalar::Null) => "null (an empty value)".to_string(),
        YamlData::Sequence(_) => "a list".to_string(),
        YamlData::Mapping(_) => "a mapping".to_string(),
        YamlData::Tagged(t, _) => format!("a value tagged `{t}`"),
        YamlData::Representation(s, _, _) => format!("\"{s}\""),
        YamlData::Alias(_) | YamlData::BadValue => "an invalid value".to_string(),
    }
}

/// The literal text of a scalar, to suggest quoting it.
fn scalar_text(node: &MarkedYaml) -> Option<String> {
    match &node.data {
        YamlData::Value(Scalar::Integer(i)) => Some(i.to_string()),
        YamlData::Value(Scalar::FloatingPoint(f)) => Some(f.into_inner().to_string()),
        YamlData::Value(Scalar::Boolean(b)) => Some(b.to_string()),
        _ => None,
    }
}

fn string(node: &MarkedYaml, field: &str, errs: &mut Errors) -> Option<String> {
    if let YamlData::Value(Scalar::String(s)) = &node.data {
        return Some(s.to_string());
    }
    let fix = match scalar_text(node) {
        Some(t) => format!("quote it: `{field}: \"{t}\"`"),
        None => format!("write `{field}: <text>`"),
    };
    errs.push(
        pos(node),
        ErrorKind::WrongType,
        format!(
            "`{field}` must be a string, found {}; {fix}",
            describe(node)
        ),
    );
    None
}

fn spanned_string(node: &MarkedYaml, field: &str, errs: &mut Errors) -> Option<Sp<String>> {
    string(node, field, errs).map(|v| Sp { v, at: pos(node) })
}

/// A string or null (null means "not set").
fn nullable_string(node: &MarkedYaml, field: &str, errs: &mut Errors) -> Option<String> {
    if matches!(node.data, YamlData::Value(Scalar::Null)) {
        return None;
    }
    string(node, field, errs)
}

fn non_empty(s: &Sp<String>, what: &str, errs: &mut Errors) {
    if s.v.trim().is_empty() {
        errs.push(
            s.at,
            ErrorKind::InvalidValue,
            format!("{what} must not be empty; write some text"),
        );
    }
}

/// One of a fixed set of strings.
fn choice<'c>(
    node: &MarkedYaml,
    field: &str,
    options: &[&'c str],
    errs: &mut Errors,
) -> Option<&'c str> {
    let s = string(node, field, errs)?;
    let found = options.iter().find(|o| **o == s).copied();
    if found.is_none() {
        let hint = did_you_mean(&s, options.iter().copied())
            .map(|m| format!(" (did you mean `{m}`?)"))
            .unwrap_or_default();
        errs.push(
            pos(node),
            ErrorKind::InvalidValue,
            format!(
                "`{field}` must be one of {}, found \"{s}\"{hint}",
                list_names(options.iter().copied())
            ),
        );
    }
    found
}

fn cpus(node: &MarkedYaml, errs: &mut Errors) -> Option<u32> {
    match &node.data {
        YamlData::Value(Scalar::Integer(i)) => match u32::try_from(*i) {
            Ok(c) if c >= 1 => Some(c),
            _ => {
                errs.push(
                    pos(node),
                    ErrorKind::InvalidValue,
                    format!("`cpus` must be a positive integer, found {i}; write e.g. `cpus: 2`"),
                );
                None
            }
        },
        _ => {
            errs.push(
                pos(node),
                ErrorKind::WrongType,
                format!(
                    "`cpus` must be an integer, found {}; write e.g. `cpus: 2`",
                    describe(node)
                ),
            );
            None
        }
    }
}

fn timeout(node: &MarkedYaml, errs: &mut Errors) -> Option<f64> {
    let v = match &node.data {
        YamlData::Value(Scalar::Null) => return None,
        YamlData::Value(Scalar::Integer(i)) => *i as f64,
        YamlData::Value(Scalar::FloatingPoint(f)) => f.into_inner(),
        _ => {
            errs.push(
                pos(node),
                ErrorKind::WrongType,
                format!(
                    "`timeout_seconds` must be a number of seconds or null, found {}; write e.g. \
                     `timeout_seconds: 600`",
                    describe(node)
                ),
            );
            return None;
        }
    };
    if !(v.is_finite() && v > 0.0) {
        errs.push(
            pos(node),
            ErrorKind::InvalidValue,
            format!(
                "`timeout_seconds` must be greater than 0, found {v}; give a positive number of \
                 seconds, or null for no limit"
            ),
        );
        return None;
    }
    Some(v)
}

fn sequence<'n>(
    node: &'n MarkedYaml<'n>,
    field: &str,
    expected: &str,
    errs: &mut Errors,
) -> Option<&'n [MarkedYaml<'n>]> {
    let node = untag(node, field, errs)?;
    if let YamlData::Sequence(items) = &node.data {
        return Some(items.as_slice());
    }
    errs.push(
        pos(node),
        ErrorKind::WrongType,
        format!(
            "`{field}` must be {expected}, found {}; write each entry on its own line starting \
             with `- `",
            describe(node)
        ),
    );
    None
}

fn string_list(node: &MarkedYaml, field: &str, errs: &mut Errors) -> Option<Vec<Sp<String>>> {
    let items = sequence(node, field, "a list of strings", errs)?;
    let mut out = Vec::new();
    for item in items {
        if let YamlData::Value(Scalar::String(s)) = &item.data {
            out.push(Sp {
                v: s.to_string(),
                at: pos(item),
            });
        } else {
            let fix = match scalar_text(item) {
                Some(t) => format!("quote it: \"{t}\""),
                None => "write a plain name".to_string(),
            };
            errs.push(
                pos(item),
                ErrorKind::WrongType,
                format!(
                    "entries of `{field}` must be strings, found {}; {fix}",
                    describe(item)
                ),
            );
        }
    }
    Some(out)
}
