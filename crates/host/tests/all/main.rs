//! Integration tests of the host library: one test binary for the package.

mod library;
mod precompiled;
mod stream;
