// The settings every sink engine shares: their ONE home, compiled twice.
// `runtime/engine.rs` includes this file for the engines the host runs, and
// `crates/host/build.rs` includes it for the engine that precompiles the
// embedded default sink at build time, so that artifact is compiled for
// exactly the configuration that loads it (and wasmtime checks that again
// when it loads it: `SinkRuntime::default_component`). A setting that
// changes compiled code goes here, never beside it in engine.rs or build.rs.
// (Plain comments only: the file is `include!`d, where `//!` is not allowed.)

/// The settings every sink engine shares, whatever its allocator: epoch
/// interruption, fuel metering when `fuel` is set, copy-on-write memory
/// images, parallel compilation. Everything else is wasmtime's default for
/// the host it runs on (the CPU's features are detected by Cranelift).
fn base(fuel: bool) -> wasmtime::Config {
    let mut c = wasmtime::Config::new();
    c.epoch_interruption(true)
        .consume_fuel(fuel)
        .memory_init_cow(true)
        .parallel_compilation(true);
    c
}
