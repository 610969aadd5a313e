//! The default sink precompiled at build time (issue 15): loaded without
//! compiling by an engine it fits, on x86-64 in place (its code runs from the
//! binary's own pages, with no file read or written); refused by wasmtime in
//! an engine it does not fit (fuel on), which then compiles it, caches it,
//! and runs it.

use std::path::{Path, PathBuf};

use chainsink_format::Hash;
use chainsink_host::runtime::cache::CacheOutcome;
use chainsink_host::runtime::{DEFAULT_SINK_PRECOMPILED, DEFAULT_SINK_SHA256, DEFAULT_SINK_WASM};
use chainsink_host::verify::{VerifyOptions, verify_file};
use chainsink_host::{
    Actor, Durability, Event, LogFile, Origin, RuntimeConfig, SinkComponent, SinkLimits,
    SinkOptions, SinkRuntime,
};
use wasmtime::component::Component;

fn runtime(cache: Option<&Path>, pooling: bool, fuel: bool) -> SinkRuntime {
    SinkRuntime::with_config(RuntimeConfig {
        max_sinks: 2,
        pooling,
        cache_dir: cache.map(Path::to_path_buf),
        fuel,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// Every file under `dir` (none when it does not exist).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flat_map(|e| {
            let path = e.unwrap().path();
            if path.is_dir() {
                files_in(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

/// Emits three events through `component` into a new log in `dir` and
/// checks that the log verifies.
fn writes_a_log_that_verifies(
    runtime: &SinkRuntime,
    component: &SinkComponent,
    limits: &SinkLimits,
    dir: &Path,
) {
    let path = dir.join("log.jsonl");
    let options = SinkOptions {
        hash_chain: true,
        durability: Durability::None,
        actor: Actor {
            host_id: "host".into(),
            user: "user".into(),
        },
    };
    let sink = runtime
        .open_with_limits(component, LogFile::open(&path).unwrap(), &options, limits)
        .unwrap();
    for i in 0..3 {
        let receipt = sink
            .emit(&Event {
                event_type: "precompiled.emit".into(),
                payload: format!(r#"{{"i": {i}}}"#),
                ..Event::default()
            })
            .unwrap();
        assert_eq!(receipt.seq, i + 1);
    }
    sink.close().unwrap();
    drop(sink);
    assert_eq!(
        verify_file(&path, &VerifyOptions::default())
            .unwrap()
            .records,
        3
    );
}

#[test]
fn the_build_time_hash_is_the_embedded_sinks() {
    assert_eq!(Hash::of(DEFAULT_SINK_WASM), DEFAULT_SINK_SHA256);
}

#[test]
fn the_embedded_default_sink_is_loaded_without_compiling() {
    assert!(
        !DEFAULT_SINK_PRECOMPILED.is_empty(),
        "build.rs precompiles the default sink in a native build \
         (unless CHAINSINK_PRECOMPILE=0)"
    );
    // On demand (the CLI's one-sink commands) and pooled (`Tenants`).
    for pooling in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let runtime = runtime(Some(&cache), pooling, false);
        let c = runtime.default_component().unwrap();
        assert_eq!(c.origin(), &Origin::Embedded, "pooling {pooling}");
        assert_eq!(c.pooled(), pooling);
        assert_eq!(c.sha256(), Hash::of(DEFAULT_SINK_WASM).to_hex());
        // Once per runtime; the same bytes from elsewhere share the code.
        assert_eq!(
            runtime.default_component().unwrap().origin(),
            &Origin::Memory
        );
        assert_eq!(
            runtime
                .load_bytes("sink.wasm", DEFAULT_SINK_WASM)
                .unwrap()
                .origin(),
            &Origin::Memory
        );
        writes_a_log_that_verifies(&runtime, &c, &SinkLimits::default(), dir.path());
        // Nothing was compiled, and nothing read from or written to the cache.
        assert_eq!(files_in(&cache), Vec::<PathBuf>::new(), "pooling {pooling}");

        // A second runtime in the same process loads it too, without
        // compiling. At most one of the two runs from the binary's own pages
        // (wasmtime registers code by address; the other copies), and each
        // works with the other alive or dropped.
        let next = self::runtime(Some(&cache), pooling, false);
        let again = next.default_component().unwrap();
        assert_eq!(again.origin(), &Origin::Embedded);
        assert!(!(in_binary(c.component()) && in_binary(again.component())));
        let logs = dir.path().join("next");
        std::fs::create_dir(&logs).unwrap();
        writes_a_log_that_verifies(&next, &again, &SinkLimits::default(), &logs);
        drop((runtime, c));
        let more = dir.path().join("more");
        std::fs::create_dir(&more).unwrap();
        writes_a_log_that_verifies(&next, &again, &SinkLimits::default(), &more);
    }
}

/// Whether `component`'s machine code is the binary's own embedded artifact
/// (loaded in place), rather than a copy of it.
fn in_binary(component: &Component) -> bool {
    let image = component.image_range();
    let embedded = DEFAULT_SINK_PRECOMPILED.as_ptr_range();
    image.start == embedded.start && image.end == embedded.end
}

#[test]
fn without_a_cache_the_embedded_sink_loads_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(None, false, false);
    let c = runtime.default_component().unwrap();
    assert_eq!(c.origin(), &Origin::Embedded);
    writes_a_log_that_verifies(&runtime, &c, &SinkLimits::default(), dir.path());
}

#[test]
fn an_engine_the_artifact_does_not_fit_compiles_the_default_sink() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    // Fuel metering changes the compiled code: wasmtime itself refuses the
    // artifact in such an engine (the check the fallback relies on).
    let fueled = runtime(Some(&cache), false, true);
    // SAFETY: the embedded artifact is as trusted as this test binary (see
    // `SinkRuntime::default_component`); here wasmtime refuses it anyway.
    let refused = unsafe { Component::deserialize(fueled.engine(), DEFAULT_SINK_PRECOMPILED) };
    assert!(
        refused.is_err(),
        "a fuel engine accepted code compiled without fuel"
    );

    let c = fueled.default_component().unwrap();
    assert_eq!(
        c.origin(),
        &Origin::Cache(CacheOutcome::Compiled { stored: true })
    );
    assert_eq!(files_in(&cache).len(), 1, "the compiled sink is cached");
    let limits = SinkLimits {
        fuel: Some(1_000_000_000),
        ..SinkLimits::default()
    };
    writes_a_log_that_verifies(&fueled, &c, &limits, dir.path());

    // The next such process finds it in the cache; without a cache, it is
    // compiled.
    let again = runtime(Some(&cache), true, true)
        .default_component()
        .unwrap();
    assert_eq!(again.origin(), &Origin::Cache(CacheOutcome::Hit));
    let uncached = runtime(None, false, true).default_component().unwrap();
    assert_eq!(uncached.origin(), &Origin::Compiled);
}
