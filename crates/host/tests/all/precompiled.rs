//! The default sink precompiled at build time (issue 15): loaded without
//! compiling by an engine it fits, mapped from a copy kept in the disk cache
//! once one holds exactly its bytes; refused by wasmtime in an engine it does
//! not fit (fuel on), which then compiles it, caches it, and runs it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chainsink_format::Hash;
use chainsink_host::runtime::cache::{CacheOutcome, ComponentCache};
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
        // Nothing compiled into the cache; the artifact itself is kept there,
        // for the next process to map.
        let kept = embedded_file(&runtime);
        assert_eq!(files_in(&cache), vec![kept.clone()], "pooling {pooling}");
        assert_eq!(std::fs::read(&kept).unwrap(), DEFAULT_SINK_PRECOMPILED);
        assert_eq!(
            std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(
            !mapped(&kept),
            "the first process copies it out of the binary"
        );

        // The next runtime maps the file instead of copying.
        let next = self::runtime(Some(&cache), pooling, false);
        let c = next.default_component().unwrap();
        assert_eq!(c.origin(), &Origin::Embedded);
        assert!(mapped(&kept), "{} is not mapped", kept.display());
        let logs = dir.path().join("next");
        std::fs::create_dir(&logs).unwrap();
        writes_a_log_that_verifies(&next, &c, &SinkLimits::default(), &logs);
        assert_eq!(files_in(&cache), vec![kept], "pooling {pooling}");
    }
}

/// Where `runtime` keeps the embedded artifact in its cache.
fn embedded_file(runtime: &SinkRuntime) -> PathBuf {
    let cache = runtime.cache().expect("a cache");
    cache.embedded_path(
        &ComponentCache::engine_key(runtime.engine()),
        &DEFAULT_SINK_SHA256,
    )
}

/// Whether this process has `path` mapped (its current file: a replaced one
/// shows as deleted).
fn mapped(path: &Path) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let path = path.to_str().unwrap();
    maps.lines().any(|l| l.ends_with(path))
}

/// A kept artifact that is not exactly the binary's (a flipped byte, the
/// wrong size), or that others could have written, is not mapped: the
/// binary's own copy is used, the sink still works, and the file is
/// replaced by the right bytes.
#[test]
fn a_kept_artifact_that_is_not_the_binarys_is_not_mapped_and_is_replaced() {
    type Spoil = fn(&Path);
    let spoils: [(&str, Spoil); 4] = [
        ("a flipped byte", |p| {
            let mut b = std::fs::read(p).unwrap();
            let mid = b.len() / 2;
            b[mid] ^= 0x40;
            std::fs::write(p, b).unwrap();
        }),
        ("a flipped byte in the ELF header", |p| {
            let mut b = std::fs::read(p).unwrap();
            b[20] ^= 1;
            std::fs::write(p, b).unwrap();
        }),
        ("truncated", |p| {
            let b = std::fs::read(p).unwrap();
            std::fs::write(p, &b[..b.len() - 1]).unwrap();
        }),
        ("group-writable", |p| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o620)).unwrap();
        }),
    ];
    for (what, spoil) in spoils {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let first = runtime(Some(&cache), false, false);
        first.default_component().unwrap();
        let kept = embedded_file(&first);
        spoil(&kept);

        let next = runtime(Some(&cache), false, false);
        let c = next.default_component().unwrap();
        assert_eq!(c.origin(), &Origin::Embedded, "{what}");
        assert!(!mapped(&kept), "{what}: the spoiled file was mapped");
        writes_a_log_that_verifies(&next, &c, &SinkLimits::default(), dir.path());
        assert_eq!(
            std::fs::read(&kept).unwrap(),
            DEFAULT_SINK_PRECOMPILED,
            "{what}: replaced"
        );
        assert_eq!(
            std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
            0o600,
            "{what}"
        );
        // And the one after maps the good copy.
        let third = runtime(Some(&cache), false, false);
        third.default_component().unwrap();
        assert!(mapped(&kept), "{what}: the replaced file is mapped");
    }
}

#[test]
fn without_a_cache_the_embedded_sink_is_copied_out_of_the_binary() {
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
