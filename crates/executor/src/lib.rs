//! chainsink's workflow side: the telemachy/v1 workflow model with strict,
//! positioned validation ([`workflow`]), and an executor that runs it on the
//! local machine while recording a telemachy-compatible audit trail through an
//! [`AuditSink`] ([`executor`], [`audit`]).
//!
//! Nothing here is global: the sink, options and cancel token are values the
//! caller passes in.
//!
//! ```no_run
//! use chainsink_executor::{MemorySink, RunOptions, Workflow, run};
//! use std::path::Path;
//!
//! let wf = Workflow::from_path(Path::new("workflows/example.yaml")).unwrap();
//! let sink = MemorySink::new();
//! let report = run(&wf, &sink, &RunOptions::default());
//! println!("{}", report.render_summary(Path::new("audit.jsonl"), None));
//! std::process::exit(report.exit_code());
//! ```

#![warn(missing_docs)]

pub mod audit;
pub mod cancel;
pub mod executor;
pub mod output;
pub mod summary;
pub mod workflow;

pub use audit::{AuditError, AuditPolicy, AuditReceipt, AuditSink, MemorySink, RecordedEvent};
pub use cancel::CancelToken;
pub use executor::{
    Outcome, RunOptions, RunReport, TaskReport, TaskStatus, run, task_output_paths,
};
pub use output::{LiveOutput, OutputDigest, OutputStream, TerminalOutput};
pub use workflow::{ValidationError, ValidationErrors, Workflow};
