//! Integration tests of the format crate: one test binary for the package.

mod batch;
mod canonical_oracle;
mod common;
mod log_fuzz;
mod oracle;
mod payload_text;
mod python_oracle;
mod verify_lines;
