//! The allocator sized to the process, and components the pool cannot hold
//! (issue 12 item 4, issue 15 item 2).
//!
//! componentize-py and componentize-js make components with more core
//! instances than a pool slot holds (14 against 8). These tests make such a
//! component from a Rust one by appending core instances of an empty module,
//! so they need no Python or JavaScript toolchain.

use std::path::Path;

use chainsink_host::runtime::cache::CacheOutcome;
use chainsink_host::verify::{VerifyOptions, verify_file};
use chainsink_host::{
    Allocator, LogFile, Origin, RuntimeConfig, SinkComponent, SinkLimits, SinkRuntime,
};
use chainsink_test_programs as guests;

use crate::common::{run, stderr};
use crate::sandbox::{event, options, trap};

/// Reads an unsigned LEB128 at `*at`, moving past it.
fn leb(bytes: &[u8], at: &mut usize) -> u64 {
    let (mut value, mut shift) = (0u64, 0);
    loop {
        let b = bytes[*at];
        *at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

fn push_leb(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let b = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn push_section(out: &mut Vec<u8>, id: u8, payload: &[u8]) {
    out.push(id);
    push_leb(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// `component` with `extra` more core instances, each of an empty core
/// module, appended at its top level (a core module section, then a core
/// instance section instantiating it `extra` times). Nothing refers to them:
/// the component's imports and exports are unchanged, but wasmtime counts
/// every core instance against the pool's per-component limit.
fn with_extra_core_instances(component: &[u8], extra: u64) -> Vec<u8> {
    assert_eq!(&component[..4], b"\0asm");
    assert_eq!(&component[4..8], &[0x0d, 0x00, 0x01, 0x00], "a component");
    // Core modules defined at the top level so far: the new one's index.
    let (mut at, mut modules) = (8, 0u64);
    while at < component.len() {
        let id = component[at];
        at += 1;
        let size = leb(component, &mut at) as usize;
        modules += u64::from(id == 1);
        at += size;
    }
    let mut out = component.to_vec();
    push_section(&mut out, 1, b"\0asm\x01\0\0\0");
    let mut instances = Vec::new();
    push_leb(&mut instances, extra);
    for _ in 0..extra {
        instances.push(0x00); // instantiate
        push_leb(&mut instances, modules);
        push_leb(&mut instances, 0); // no arguments
    }
    push_section(&mut out, 2, &instances);
    out
}

fn pooled_runtime(limits: SinkLimits, cache_dir: Option<&Path>) -> SinkRuntime {
    let runtime = SinkRuntime::with_config(RuntimeConfig {
        max_sinks: 4,
        limits,
        cache_dir: cache_dir.map(Path::to_path_buf),
        ..RuntimeConfig::default()
    })
    .unwrap();
    assert_eq!(runtime.allocator(), &Allocator::Pooling { max_sinks: 4 });
    runtime
}

/// The default sink with 12 more core instances: 15 in all, over the
/// pool's 8 per component, as a componentize-py sink is.
fn big_default() -> Vec<u8> {
    with_extra_core_instances(chainsink_host::runtime::DEFAULT_SINK_WASM, 12)
}

#[test]
fn a_component_the_pool_cannot_hold_loads_on_demand_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let load = || {
        let runtime = pooled_runtime(SinkLimits::default(), Some(&cache));
        let c = runtime.load_bytes("big.wasm", &big_default()).unwrap();
        (c, runtime)
    };
    let (big, runtime) = load();
    assert!(
        !big.pooled(),
        "15 core instances do not fit a pool slot of 8"
    );
    assert_eq!(
        big.origin(),
        &Origin::Cache(CacheOutcome::Compiled { stored: true })
    );
    // The embedded default (3 core instances) still comes from the pool.
    assert!(runtime.default_component().unwrap().pooled());

    let log = dir.path().join("big.jsonl");
    let sink = runtime
        .open(&big, LogFile::open(&log).unwrap(), &options())
        .unwrap();
    for i in 0..3 {
        sink.emit(&event("big", i)).unwrap();
    }
    sink.close().unwrap();
    drop(sink);
    let report = verify_file(&log, &VerifyOptions::default()).unwrap();
    assert_eq!(report.records, 3);

    // The next process loads it from the cache, into the on-demand engine
    // again, without compiling.
    let (again, runtime) = load();
    assert_eq!(again.origin(), &Origin::Cache(CacheOutcome::Hit));
    assert!(!again.pooled());
    let sink = runtime
        .open(&again, LogFile::open(&log).unwrap(), &options())
        .unwrap();
    sink.emit(&event("big", 3)).unwrap();
    sink.close().unwrap();
    assert_eq!(
        verify_file(&log, &VerifyOptions::default())
            .unwrap()
            .records,
        4
    );
}

#[test]
fn limits_hold_for_a_component_loaded_on_demand() {
    let limits = SinkLimits {
        memory_bytes: 32 << 20,
        ..SinkLimits::default()
    };
    let runtime = pooled_runtime(limits, None);
    let bomb = std::fs::read(guests::CHAINSINK_GUEST_MEMORY_BOMB).unwrap();
    let bomb: SinkComponent = runtime
        .load_bytes("big-bomb.wasm", &with_extra_core_instances(&bomb, 12))
        .unwrap();
    assert!(!bomb.pooled());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("bomb.jsonl");
    let sink = runtime
        .open(&bomb, LogFile::open(&log).unwrap(), &options())
        .unwrap();
    let err = sink.emit(&event("bomb", 0)).unwrap_err();
    let (name, call, reason) = trap(&err);
    assert_eq!((name, call), ("big-bomb.wasm", "emit"));
    assert!(reason.starts_with("out of memory"), "{reason}");
    assert!(reason.contains("over its limit of 32.0 MiB"), "{reason}");

    // The instance limit holds too, and its error says what to change.
    let few = SinkLimits {
        instances: 10,
        ..SinkLimits::default()
    };
    let big = runtime.load_bytes("big.wasm", &big_default()).unwrap();
    let err = runtime
        .open_with_limits(
            &big,
            LogFile::open(&dir.path().join("few.jsonl")).unwrap(),
            &options(),
            &few,
        )
        .unwrap_err();
    let (name, call, reason) = trap(&err);
    assert_eq!((name, call), ("big.wasm", "instantiate"));
    assert!(reason.contains("instance"), "{reason}");
    assert!(reason.contains("--sink-instances"), "{reason}");
}

#[test]
fn the_cli_runs_a_sink_with_many_core_instances() {
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("big.wasm");
    std::fs::write(&sink, big_default()).unwrap();
    let log = dir.path().join("audit.jsonl");
    let cache = dir.path().join("cache");
    for _ in 0..2 {
        let out = run(
            &[
                "emit",
                "--sink",
                sink.to_str().unwrap(),
                "--log",
                log.to_str().unwrap(),
                "--cache-dir",
                cache.to_str().unwrap(),
                "--type",
                "big.event",
            ],
            "",
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = run(&["verify", log.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", stderr(&out));
    // Over the instance limit: one line naming the sink and the flag.
    let out = run(
        &[
            "emit",
            "--sink",
            sink.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "--no-cache",
            "--sink-instances",
            "8",
            "--type",
            "big.event",
        ],
        "",
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("big.wasm"), "{err}");
    assert!(err.contains("--sink-instances"), "{err}");
}

#[test]
fn a_pool_that_cannot_be_reserved_falls_back_to_on_demand() {
    const CHILD: &str = "CHAINSINK_TEST_RESERVATION_CHILD";
    if std::env::var_os(CHILD).is_some() {
        // In the child, under `ulimit -v`: a pool for 2 sinks needs 8 GiB
        // of address space, one on-demand instance 4 GiB.
        let runtime = SinkRuntime::with_config(RuntimeConfig {
            max_sinks: 2,
            ..RuntimeConfig::default()
        })
        .unwrap();
        match runtime.allocator() {
            Allocator::OnDemand { reason } => {
                assert!(
                    reason.contains("reservation for 2 sinks failed"),
                    "{reason}"
                )
            }
            other => panic!("expected on-demand allocation, got {other:?}"),
        }
        let dir = tempfile::tempdir().unwrap();
        let default = runtime.default_component().unwrap();
        assert!(!default.pooled());
        let sink = runtime
            .open(
                &default,
                LogFile::open(&dir.path().join("a.jsonl")).unwrap(),
                &options(),
            )
            .unwrap();
        sink.emit(&event("child", 0)).unwrap();
        return;
    }
    let script = format!(
        "ulimit -v 6000000 && exec {} --exact \
         allocator::a_pool_that_cannot_be_reserved_falls_back_to_on_demand --nocapture",
        std::env::current_exe().unwrap().display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text = format!("{}{}", crate::common::stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}
