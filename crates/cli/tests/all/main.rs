//! End-to-end tests of the `chainsink` binary: one test binary for the
//! package, so wasmtime is linked once (wasmtime's `tests/all` pattern).

mod allocator;
mod cli_core;
mod cli_run;
mod common;
mod crash;
mod custom_format;
mod errors;
mod hostile;
mod new_sink;
mod polyglot;
mod polyglot_sinks;
mod recovery;
mod sandbox;
mod snippets;
mod startup;
mod stdin;
mod task_output;
mod tools;
mod trail;
mod transparency;
mod verify_stream;
