//! The one-screen summary printed after a run.

use std::fmt::Write as _;
use std::path::Path;

use crate::executor::{Outcome, RunReport, TaskReport, TaskStatus};
use crate::output::escaped;

/// At most this many task lines; beyond it only problems are listed.
const MAX_TASK_LINES: usize = 20;

impl RunReport {
    /// The run as one JSON object, for machines (`chainsink run --json`):
    /// the same facts as [`RunReport::render_summary`], every task included.
    /// `log` is the audit log (None: not audited); `head` the head hash, as
    /// there.
    pub fn to_json(&self, log: Option<&Path>, head: Option<&str>) -> serde_json::Value {
        use serde_json::json;
        let digest = |d: &Option<crate::output::OutputDigest>| {
            d.as_ref().map(|d| {
                json!({
                    "bytes": d.bytes,
                    "sha256": d.sha256,
                    "file": d.path.as_ref().map(|p| p.display().to_string()),
                })
            })
        };
        let tasks: Vec<serde_json::Value> = self
            .tasks
            .iter()
            .map(|t| {
                json!({
                    "team": t.team,
                    "subject": t.subject,
                    "task_id": t.task_id,
                    "agent": t.agent,
                    "status": t.status.as_str(),
                    "duration_seconds": t.duration.map(|d| d.as_secs_f64()),
                    "exit_code": t.exit_code,
                    "error": t.error,
                    "stdout": digest(&t.stdout),
                    "stderr": digest(&t.stderr),
                })
            })
            .collect();
        let head = head.or_else(|| self.last_receipt.as_ref().and_then(|r| r.hash.as_deref()));
        json!({
            "workflow": self.spec_name,
            "workflow_id": self.workflow_id,
            "dry_run": self.dry_run,
            "outcome": self.outcome.as_str(),
            "exit_code": self.exit_code(),
            "duration_seconds": self.duration.as_secs_f64(),
            "error": self.error,
            "tasks": {
                "total": self.tasks.len(),
                "completed": self.count(TaskStatus::Completed),
                "failed": self.count(TaskStatus::Failed),
                "skipped": self.count(TaskStatus::Skipped),
                "each": tasks,
            },
            "audit": {
                "log": log.map(|p| p.display().to_string()),
                "head": head,
                "last_seq": self.last_receipt.as_ref().map(|r| r.seq),
                "degraded": self.audit_degraded,
                "events_not_recorded": self.audit_lost,
                "errors": self.audit_errors,
            },
        })
    }

    /// A one-screen summary: outcome, task counts and lines, durations, the
    /// audit log path and head hash, and a DEGRADED banner when events were
    /// lost. `head` defaults to the last receipt's hash.
    pub fn render_summary(&self, log_path: &Path, head: Option<&str>) -> String {
        let mut s = String::new();
        let w = &mut s;
        if self.audit_degraded {
            banner(w, self);
        }
        let what = if self.dry_run {
            "dry run of"
        } else {
            "workflow"
        };
        let _ = writeln!(
            w,
            "chainsink: {what} \"{}\" (id {}) {} in {:.2}s",
            escaped(&self.spec_name),
            self.workflow_id,
            self.outcome.as_str().to_uppercase(),
            self.duration.as_secs_f64()
        );
        if let Some(e) = &self.error {
            let _ = writeln!(w, "  reason: {}", escaped(e));
        }
        let _ = writeln!(
            w,
            "tasks: {} completed, {} failed, {} skipped (of {})",
            self.count(TaskStatus::Completed),
            self.count(TaskStatus::Failed),
            self.count(TaskStatus::Skipped),
            self.tasks.len()
        );
        let shown: Vec<&TaskReport> = if self.tasks.len() <= MAX_TASK_LINES {
            self.tasks.iter().collect()
        } else {
            self.tasks
                .iter()
                .filter(|t| t.status != TaskStatus::Completed)
                .take(MAX_TASK_LINES)
                .collect()
        };
        for t in &shown {
            task_line(w, t);
        }
        if shown.len() < self.tasks.len() {
            let _ = writeln!(w, "  ... {} more not shown", self.tasks.len() - shown.len());
        }
        let _ = writeln!(w, "audit log: {}", log_path.display());
        let head = head.or_else(|| self.last_receipt.as_ref().and_then(|r| r.hash.as_deref()));
        match (head, &self.last_receipt) {
            (Some(h), Some(r)) => {
                let _ = writeln!(w, "head: {h} (seq {})", r.seq);
            }
            (Some(h), None) => {
                let _ = writeln!(w, "head: {h}");
            }
            (None, _) => {
                let _ = writeln!(w, "head: (none)");
            }
        }
        if self.audit_degraded {
            banner(w, self);
        }
        let _ = write!(w, "exit code: {}", self.exit_code());
        s
    }
}

/// The degraded-auditing banner.
fn banner(w: &mut String, r: &RunReport) {
    let closed = if r.outcome == Outcome::AuditFailed {
        "; the run was stopped (fail-closed)"
    } else {
        ""
    };
    let _ = writeln!(
        w,
        "!! AUDITING DEGRADED: {} event(s) could not be recorded{closed}: {}",
        r.audit_lost,
        escaped(&r.audit_errors.join("; "))
    );
}

fn task_line(w: &mut String, t: &TaskReport) {
    let status = match t.status {
        TaskStatus::Completed => "ok",
        TaskStatus::Failed => "FAILED",
        TaskStatus::Skipped => "skipped",
    };
    let dur = t
        .duration
        .map(|d| format!("{:.2}s", d.as_secs_f64()))
        .unwrap_or_default();
    // Names, errors and the stderr line come from the workflow file and the
    // task: escaped, so a task cannot rewrite the summary on a terminal.
    let _ = write!(
        w,
        "  {status:<7} {dur:>8}  {} / {}",
        escaped(&t.team),
        escaped(&t.subject)
    );
    if let Some(e) = &t.error {
        let _ = write!(w, ": {}", escaped(e));
    }
    if t.status == TaskStatus::Failed
        && let Some(line) = t.stderr_tail.lines().rev().find(|l| !l.trim().is_empty())
    {
        let _ = write!(w, " [stderr: {}]", escaped(line.trim()));
    }
    let _ = writeln!(w);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditReceipt;
    use std::time::Duration;

    fn task(subject: &str, status: TaskStatus) -> TaskReport {
        TaskReport {
            team: "t".into(),
            subject: subject.into(),
            task_id: "id".into(),
            agent: "a".into(),
            status,
            duration: Some(Duration::from_millis(1500)),
            exit_code: None,
            error: (status != TaskStatus::Completed).then(|| "boom".into()),
            stdout_tail: String::new(),
            stdout: None,
            stderr: None,
            stderr_tail: "line1\nlast words\n".into(),
        }
    }

    fn report(tasks: Vec<TaskReport>, degraded: bool) -> RunReport {
        RunReport {
            outcome: Outcome::Failed,
            tasks,
            audit_degraded: degraded,
            audit_errors: vec!["disk full".into()],
            audit_lost: 2,
            workflow_id: "abcd1234".into(),
            spec_name: "demo".into(),
            dry_run: false,
            duration: Duration::from_secs(3),
            last_receipt: Some(AuditReceipt {
                seq: 9,
                hash: Some("ff00".into()),
            }),
            error: Some("One or more tasks failed".into()),
            torn_down: false,
        }
    }

    #[test]
    fn summary_lists_counts_tasks_log_and_head() {
        let r = report(
            vec![
                task("A", TaskStatus::Completed),
                task("B", TaskStatus::Failed),
                task("C", TaskStatus::Skipped),
            ],
            false,
        );
        let s = r.render_summary(Path::new("/var/log/a.jsonl"), None);
        assert!(s.contains("\"demo\" (id abcd1234) FAILED in 3.00s"), "{s}");
        assert!(
            s.contains("tasks: 1 completed, 1 failed, 1 skipped (of 3)"),
            "{s}"
        );
        assert!(
            s.contains("FAILED     1.50s  t / B: boom [stderr: last words]"),
            "{s}"
        );
        assert!(s.contains("audit log: /var/log/a.jsonl"), "{s}");
        assert!(s.contains("head: ff00 (seq 9)"), "{s}");
        assert!(s.ends_with("exit code: 1"), "{s}");
        assert!(!s.contains("DEGRADED"), "{s}");
        let s = r.render_summary(Path::new("x"), Some("beef"));
        assert!(s.contains("head: beef (seq 9)"), "{s}");
    }

    #[test]
    fn degraded_banner_and_long_lists_are_bounded() {
        let mut tasks: Vec<TaskReport> = (0..100)
            .map(|i| task(&format!("T{i}"), TaskStatus::Completed))
            .collect();
        tasks[50].status = TaskStatus::Failed;
        let r = report(tasks, true);
        let s = r.render_summary(Path::new("x"), None);
        assert!(s.starts_with("!! AUDITING DEGRADED: 2 event(s)"), "{s}");
        assert!(s.contains("disk full"), "{s}");
        assert!(s.contains("T50"), "{s}");
        assert!(!s.contains("T49"), "{s}");
        assert!(s.contains("99 more not shown"), "{s}");
        assert!(s.lines().count() < 30, "{s}");
    }
}
