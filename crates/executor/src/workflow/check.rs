//! Cross-reference checks on a parsed draft: duplicate names, agent
//! references, team membership, `blocked_by` resolution and cycles.

use std::collections::{HashMap, HashSet};

use super::parse::{DTask, Draft, Sp};
use super::{ErrorKind, Errors, Pos, did_you_mean, list_names};

/// Subject lookup implementing the dependency scope rule (own team first,
/// then a subject that exactly one other team has).
pub(crate) struct SubjectIndex<'a> {
    own: HashMap<(usize, &'a str), usize>,
    by_subject: HashMap<&'a str, Vec<usize>>,
    team_of: Vec<usize>,
}

impl<'a> SubjectIndex<'a> {
    /// Index tasks given as (team index, subject) in global order.
    pub(crate) fn new(tasks: impl IntoIterator<Item = (usize, &'a str)>) -> Self {
        let mut idx = SubjectIndex {
            own: HashMap::new(),
            by_subject: HashMap::new(),
            team_of: Vec::new(),
        };
        for (g, (team, subject)) in tasks.into_iter().enumerate() {
            idx.own.entry((team, subject)).or_insert(g);
            idx.by_subject.entry(subject).or_default().push(g);
            idx.team_of.push(team);
        }
        idx
    }

    /// The task `subject` names from a task of `team`: `Ok(global index)`,
    /// `Err(empty)` if unknown, `Err(candidates)` if ambiguous.
    pub(crate) fn resolve(&self, team: usize, subject: &str) -> Result<usize, Vec<usize>> {
        if let Some(g) = self.own.get(&(team, subject)) {
            return Ok(*g);
        }
        let mut seen_teams = HashSet::new();
        let others: Vec<usize> = self
            .by_subject
            .get(subject)
            .into_iter()
            .flatten()
            .copied()
            .filter(|g| self.team_of[*g] != team && seen_teams.insert(self.team_of[*g]))
            .collect();
        match others.as_slice() {
            [one] => Ok(*one),
            _ => Err(others),
        }
    }
}

/// Run every cross-check, recording errors.
pub(crate) fn check(d: &Draft, errs: &mut Errors) {
    // Agents: unique names.
    let mut agents: HashMap<&str, Pos> = HashMap::new();
    for a in &d.agents {
        if let Some(n) = &a.name {
            unique(
                &mut agents,
                n,
                "agent name",
                "agent names must be unique",
                errs,
            );
        }
    }
    let agent_names: Vec<&str> = d
        .agents
        .iter()
        .filter_map(|a| a.name.as_ref().map(|n| n.v.as_str()))
        .collect();

    // Teams: unique names, known and unique members, unique subjects, assign_to.
    let mut teams: HashMap<&str, Pos> = HashMap::new();
    for t in &d.teams {
        let team_name = t.name.as_ref().map_or("?", |n| n.v.as_str());
        if let Some(n) = &t.name {
            unique(
                &mut teams,
                n,
                "team name",
                "team names must be unique",
                errs,
            );
        }
        let mut members: HashMap<&str, Pos> = HashMap::new();
        for m in t.agents.iter().flatten() {
            if !agent_names.contains(&m.v.as_str()) {
                let hint = did_you_mean(&m.v, agent_names.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                errs.push(
                    m.at,
                    ErrorKind::UnknownAgent,
                    format!(
                        "team `{team_name}` lists unknown agent `{}`{hint}; define it under the \
                         top-level `agents:` or use one of: {}",
                        m.v,
                        list_names(agent_names.iter().copied())
                    ),
                );
            }
            unique(
                &mut members,
                m,
                &format!("member of team `{team_name}`"),
                "list each agent once",
                errs,
            );
        }
        let mut subjects: HashMap<&str, Pos> = HashMap::new();
        for k in &t.tasks {
            if let Some(s) = &k.subject {
                unique(
                    &mut subjects,
                    s,
                    &format!("task subject in team `{team_name}`"),
                    "subjects must be unique within a team because blocked_by refers to them",
                    errs,
                );
            }
            let Some(a) = &k.assign_to else { continue };
            let subject = k.subject.as_ref().map_or("?", |s| s.v.as_str());
            if !agent_names.contains(&a.v.as_str()) {
                let hint = did_you_mean(&a.v, agent_names.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                errs.push(
                    a.at,
                    ErrorKind::UnknownAgent,
                    format!(
                        "task \"{subject}\" is assigned to unknown agent `{}`{hint}; assign it to \
                         a member of team `{team_name}`: {}",
                        a.v,
                        list_names(t.agents.iter().flatten().map(|m| m.v.as_str()))
                    ),
                );
            } else if let Some(members) = &t.agents
                && !members.iter().any(|m| m.v == a.v)
            {
                errs.push(
                    a.at,
                    ErrorKind::NotTeamMember,
                    format!(
                        "task \"{subject}\" is assigned to `{}`, which is not a member of team \
                         `{team_name}`; add `{}` to the team's `agents` or assign the task to one \
                         of: {}",
                        a.v,
                        a.v,
                        list_names(t.agents.iter().flatten().map(|m| m.v.as_str()))
                    ),
                );
            }
        }
    }

    check_dependencies(d, errs);
}

/// Record a duplicate-name error if `name` was seen before.
fn unique<'a>(
    seen: &mut HashMap<&'a str, Pos>,
    name: &'a Sp<String>,
    what: &str,
    rule: &str,
    errs: &mut Errors,
) {
    if let Some(first) = seen.get(name.v.as_str()) {
        errs.push(
            name.at,
            ErrorKind::Duplicate,
            format!(
                "duplicate {what} `{}` (first at line {}, column {}); {rule}, so rename or \
                 remove one",
                name.v, first.line, first.col
            ),
        );
    } else {
        seen.insert(name.v.as_str(), name.at);
    }
}

/// A task with a subject, as a dependency-graph node.
struct Node<'a> {
    team: usize,
    team_name: &'a str,
    task: &'a DTask,
    subject: &'a Sp<String>,
    /// Resolved dependencies: (node index, position of the blocked_by entry).
    deps: Vec<(usize, Pos)>,
}

fn check_dependencies(d: &Draft, errs: &mut Errors) {
    let mut nodes: Vec<Node> = Vec::new();
    for (ti, t) in d.teams.iter().enumerate() {
        for k in &t.tasks {
            if let Some(s) = &k.subject {
                nodes.push(Node {
                    team: ti,
                    team_name: t.name.as_ref().map_or("?", |n| n.v.as_str()),
                    task: k,
                    subject: s,
                    deps: Vec::new(),
                });
            }
        }
    }
    let index = SubjectIndex::new(nodes.iter().map(|n| (n.team, n.subject.v.as_str())));
    let all_subjects: Vec<&str> = nodes.iter().map(|n| n.subject.v.as_str()).collect();

    for i in 0..nodes.len() {
        let mut listed: HashMap<&str, Pos> = HashMap::new();
        let node = &nodes[i];
        let mut deps = Vec::new();
        for b in &node.task.blocked_by {
            let subject = &node.subject.v;
            if listed.contains_key(b.v.as_str()) {
                unique(
                    &mut listed,
                    b,
                    &format!("blocked_by entry of task \"{subject}\""),
                    "list each dependency once",
                    errs,
                );
                continue;
            }
            listed.insert(b.v.as_str(), b.at);
            match index.resolve(node.team, &b.v) {
                Ok(g) if g == i => errs.push(
                    b.at,
                    ErrorKind::Cycle,
                    format!(
                        "dependency cycle: \"{subject}\" -> \"{subject}\" (a task cannot be \
                         blocked by itself); remove this blocked_by entry"
                    ),
                ),
                Ok(g) => deps.push((g, b.at)),
                Err(c) if c.is_empty() => {
                    let hint = did_you_mean(&b.v, all_subjects.iter().copied())
                        .map(|s| format!(" (did you mean \"{s}\"?)"))
                        .unwrap_or_default();
                    errs.push(
                        b.at,
                        ErrorKind::UnknownDependency,
                        format!(
                            "task \"{subject}\" is blocked by unknown task \"{}\"{hint}; \
                             blocked_by must name the subject of a task in team `{}` (or a \
                             subject used by exactly one other team)",
                            b.v, node.team_name
                        ),
                    );
                }
                Err(c) => errs.push(
                    b.at,
                    ErrorKind::AmbiguousDependency,
                    format!(
                        "task \"{subject}\" is blocked by \"{}\", which is not in team `{}` and \
                         exists in several other teams ({}); rename the subjects so the one you \
                         mean is unique",
                        b.v,
                        node.team_name,
                        list_names(c.iter().map(|g| nodes[*g].team_name))
                    ),
                ),
            }
        }
        nodes[i].deps = deps;
    }

    report_cycles(&nodes, errs);
}

/// Find dependency cycles and report each one once, naming its tasks.
fn report_cycles(nodes: &[Node], errs: &mut Errors) {
    // Kahn: peel off tasks whose dependencies can all complete.
    let n = nodes.len();
    let mut remaining: Vec<usize> = nodes.iter().map(|x| x.deps.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, x) in nodes.iter().enumerate() {
        for (d, _) in &x.deps {
            dependents[*d].push(i);
        }
    }
    let mut done = vec![false; n];
    let mut queue: Vec<usize> = (0..n).filter(|i| remaining[*i] == 0).collect();
    while let Some(i) = queue.pop() {
        done[i] = true;
        for &j in &dependents[i] {
            remaining[j] -= 1;
            if remaining[j] == 0 {
                queue.push(j);
            }
        }
    }
    // Every task left has a dependency that is also left; walking those
    // dependencies must revisit a task, which closes a cycle.
    let mut visited = vec![false; n];
    for start in 0..n {
        if done[start] || visited[start] {
            continue;
        }
        let mut path: Vec<usize> = Vec::new();
        let mut on_path: HashMap<usize, usize> = HashMap::new();
        let mut cur = start;
        loop {
            if let Some(&at) = on_path.get(&cur) {
                let cycle = &path[at..];
                let names: Vec<String> = cycle
                    .iter()
                    .chain(std::iter::once(&cycle[0]))
                    .map(|i| format!("\"{}\"", nodes[*i].subject.v))
                    .collect();
                let first = cycle[0];
                let next = cycle.get(1).copied().unwrap_or(first);
                let at = nodes[first]
                    .deps
                    .iter()
                    .find(|(d, _)| *d == next)
                    .map_or(nodes[first].subject.at, |(_, p)| *p);
                errs.push(
                    at,
                    ErrorKind::Cycle,
                    format!(
                        "dependency cycle: {} (each task is blocked by the next); remove one of \
                         these blocked_by entries",
                        names.join(" -> ")
                    ),
                );
                break;
            }
            if visited[cur] {
                break; // leads into a cycle already reported
            }
            visited[cur] = true;
            on_path.insert(cur, path.len());
            path.push(cur);
            match nodes[cur].deps.iter().find(|(d, _)| !done[*d]) {
                Some((d, _)) => cur = *d,
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_team_first_then_unique_other_team() {
        let idx = SubjectIndex::new([(0, "a"), (0, "b"), (1, "a"), (1, "c"), (2, "c")]);
        assert_eq!(idx.resolve(0, "a"), Ok(0));
        assert_eq!(idx.resolve(1, "a"), Ok(2));
        assert_eq!(idx.resolve(1, "b"), Ok(1)); // only team 0 has "b"
        assert_eq!(idx.resolve(0, "c"), Err(vec![3, 4])); // teams 1 and 2 both have "c"
        assert_eq!(idx.resolve(2, "c"), Ok(4));
        assert_eq!(idx.resolve(0, "zzz"), Err(vec![]));
    }
}
