//! Integration tests of the format crate: one test binary for the package.

mod common;
mod python_oracle;
mod verify_lines;
