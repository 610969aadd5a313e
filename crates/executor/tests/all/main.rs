//! Integration tests of the executor: one test binary for the package.

mod common;
mod dry_run;
mod output;
mod run;
mod validation;
mod yaml_depth;
