//! Hostile sinks: each of the components in `guests/test-sinks/` misbehaves in one
//! way. For each, the host must survive, the other tenants' logs must be
//! untouched and still verify, and the error must name the sink, the call
//! and the reason. Also: many tenants at once, the compiled-component cache,
//! `chainsink inspect`, and several workflows in one `chainsink run`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chainsink_host::inspect::inspect;
use chainsink_host::runtime::cache::CacheOutcome;
use chainsink_host::tenants::{SinkSource, TenantError, TenantSpec, Tenants};
use chainsink_host::verify::{VerifyError, VerifyOptions, VerifyReport, verify_file};
use chainsink_host::{
    Actor, Allocator, Durability, Event, Origin, RuntimeConfig, Sink, SinkError, SinkLimits,
    SinkOptions, SinkRuntime,
};
use chainsink_test_programs as guests;
use serde_json::Value;

use crate::common::{run, stderr, stdout};

pub(crate) fn options() -> SinkOptions {
    SinkOptions {
        hash_chain: true,
        durability: Durability::None,
        actor: Actor {
            host_id: "sandbox-host".into(),
            user: "sandbox".into(),
        },
    }
}

/// An event of tenant `tenant`: its name is the workflow id, so a record
/// in the wrong log would show.
pub(crate) fn event(tenant: &str, i: usize) -> Event {
    Event {
        event_type: "tenant.event".into(),
        workflow_id: Some(tenant.into()),
        payload: format!(r#"{{"tenant": "{tenant}", "i": {i}}}"#),
        ..Event::default()
    }
}

/// A small pool: tests run in parallel, each with its own runtime.
pub(crate) fn runtime() -> Arc<SinkRuntime> {
    Arc::new(
        SinkRuntime::with_config(RuntimeConfig {
            max_sinks: 16,
            ..RuntimeConfig::default()
        })
        .unwrap(),
    )
}

/// Each record of `log` as JSON; asserts the log verifies and holds `n`
/// records, all of workflow `tenant`.
fn assert_own_records(log: &Path, tenant: &str, n: u64) {
    let report = verify_file(log, &VerifyOptions::default())
        .unwrap_or_else(|e| panic!("{} does not verify: {e}", log.display()));
    assert_eq!(report.records, n, "{}", log.display());
    for line in std::fs::read_to_string(log).unwrap().lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            record["workflow_id"],
            tenant,
            "foreign record in {}",
            log.display()
        );
        assert_eq!(record["payload"]["tenant"], tenant, "{line}");
    }
}

/// How many `.jsonl` files `dir` holds.
fn jsonl_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("jsonl".as_ref()))
        .count()
}

/// Opens two well-behaved tenants and `hostile` (with `limits`) on one
/// runtime; while the good ones emit 300 events each from their own threads,
/// runs `attack` on the hostile sink. Checks the good logs, and returns what
/// `attack` returned, how long it took, and what the verifier says of the
/// hostile sink's own log.
pub(crate) fn beside_good_tenants<R: Send>(
    hostile: &str,
    limits: Option<SinkLimits>,
    attack: impl FnOnce(&Sink) -> R + Send,
) -> (R, Duration, Result<VerifyReport, VerifyError>) {
    let dir = tempfile::tempdir().unwrap();
    let tenants = Tenants::new(runtime());
    for name in ["good-a", "good-b"] {
        tenants
            .open(TenantSpec::new(
                name,
                dir.path().join(format!("{name}.jsonl")),
                options(),
            ))
            .unwrap();
    }
    let mut spec = TenantSpec::new("hostile", dir.path().join("hostile.jsonl"), options())
        .with_sink(SinkSource::File(hostile.into()));
    spec.limits = limits;
    let bad = tenants.open(spec).unwrap();
    let (result, took) = std::thread::scope(|s| {
        let workers: Vec<_> = ["good-a", "good-b"]
            .into_iter()
            .map(|name| {
                let tenant = tenants.get(name).unwrap();
                s.spawn(move || {
                    for i in 0..300 {
                        tenant.sink().emit(&event(name, i)).unwrap();
                        if i % 100 == 0 {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                })
            })
            .collect();
        let start = Instant::now();
        let result = attack(bad.sink());
        let took = start.elapsed();
        for w in workers {
            w.join().unwrap();
        }
        (result, took)
    });
    for (name, head) in tenants.close_all() {
        if name != "hostile" {
            assert_eq!(head.unwrap().records, 300, "{name}");
        }
    }
    for name in ["good-a", "good-b"] {
        assert_own_records(&dir.path().join(format!("{name}.jsonl")), name, 300);
    }
    let hostile_log = verify_file(&dir.path().join("hostile.jsonl"), &VerifyOptions::default());
    (result, took, hostile_log)
}

/// The trap's parts; panics if `e` is not a trap.
pub(crate) fn trap(e: &SinkError) -> (&str, &str, &str) {
    match e {
        SinkError::Trap { sink, call, reason } => (sink, call, reason),
        other => panic!("expected a trap, got {other:?}"),
    }
}

/// The contract breach's parts; panics if `e` is not one.
pub(crate) fn breach(e: &SinkError) -> (&str, &str, &str) {
    match e {
        SinkError::Contract {
            sink,
            call,
            message,
        } => (sink, call, message),
        other => panic!("expected a contract error, got {other:?}"),
    }
}

#[test]
fn an_endless_loop_is_cut_off_at_its_deadline() {
    let limits = SinkLimits {
        call_timeout: Duration::from_millis(200),
        ..SinkLimits::default()
    };
    let ((first, again), took, log) =
        beside_good_tenants(guests::CHAINSINK_GUEST_LOOP_FOREVER, Some(limits), |sink| {
            let first = sink.emit(&event("hostile", 0)).unwrap_err();
            (first, sink.emit(&event("hostile", 1)).unwrap_err())
        });
    let (sink, call, reason) = trap(&first);
    assert_eq!(sink, guests::CHAINSINK_GUEST_LOOP_FOREVER);
    assert_eq!(call, "emit");
    assert!(reason.contains("deadline exceeded"), "{reason}");
    assert!(reason.contains("200 ms"), "{reason}");
    assert!(reason.contains("--sink-timeout"), "{reason}");
    let text = first.to_string();
    assert!(text.contains("loop_forever"), "{text}");
    assert!(text.contains("trapped in `emit`"), "{text}");
    assert!(text.contains("discarded"), "{text}");
    // Not before its time (an upper bound would be a timing assert on a
    // shared machine; that it returned at all shows the cut-off).
    assert!(took >= Duration::from_millis(200), "{took:?}");
    // The instance is gone: later calls repeat why, at once.
    assert_eq!(again.to_string(), first.to_string());
    assert_eq!(log.unwrap().records, 0, "nothing half-written");
}

#[test]
fn a_sink_keeps_its_deadline_after_its_runtime_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let sink = {
        let runtime = SinkRuntime::with_config(RuntimeConfig {
            max_sinks: 1,
            limits: SinkLimits {
                call_timeout: Duration::from_millis(100),
                ..SinkLimits::default()
            },
            ..RuntimeConfig::default()
        })
        .unwrap();
        let looping = runtime
            .load_file(Path::new(guests::CHAINSINK_GUEST_LOOP_FOREVER))
            .unwrap();
        let log = chainsink_host::LogFile::open(&dir.path().join("loop.jsonl")).unwrap();
        runtime.open(&looping, log, &options()).unwrap()
    };
    // That it stops at all is the point: the deadline is what ends it.
    let err = sink.emit(&event("loop", 0)).unwrap_err();
    assert!(trap(&err).2.contains("deadline exceeded"), "{err}");
}

#[test]
fn a_memory_bomb_runs_out_of_its_own_memory_only() {
    let limits = SinkLimits {
        memory_bytes: 32 << 20,
        ..SinkLimits::default()
    };
    let (err, _, log) =
        beside_good_tenants(guests::CHAINSINK_GUEST_MEMORY_BOMB, Some(limits), |sink| {
            sink.emit(&event("hostile", 0)).unwrap_err()
        });
    let (sink, call, reason) = trap(&err);
    assert_eq!(sink, guests::CHAINSINK_GUEST_MEMORY_BOMB);
    assert_eq!(call, "emit");
    assert!(reason.starts_with("out of memory"), "{reason}");
    assert!(reason.contains("over its limit of 32.0 MiB"), "{reason}");
    assert!(reason.contains("--sink-memory"), "{reason}");
    assert_eq!(log.unwrap().records, 0, "nothing half-written");
}

#[test]
fn a_panic_message_reaches_the_error() {
    let (err, _, log) = beside_good_tenants(guests::CHAINSINK_GUEST_PANICKER, None, |sink| {
        sink.emit(&event("hostile", 0)).unwrap_err()
    });
    let (sink, call, reason) = trap(&err);
    assert_eq!(sink, guests::CHAINSINK_GUEST_PANICKER);
    assert_eq!(call, "emit");
    assert!(reason.contains("unreachable"), "{reason}");
    assert!(reason.contains("sink panicked"), "{reason}");
    assert!(
        reason.contains("the panicking test sink refuses event \"tenant.event\""),
        "{reason}"
    );
    assert!(
        reason.contains("src/lib.rs"),
        "the panic location: {reason}"
    );
    assert_eq!(log.unwrap().records, 0, "nothing half-written");
}

#[test]
fn garbage_instead_of_records_is_caught_at_the_call() {
    let (err, _, log) = beside_good_tenants(guests::CHAINSINK_GUEST_GARBAGE, None, |sink| {
        sink.emit(&event("hostile", 0)).unwrap_err()
    });
    let (sink, call, message) = breach(&err);
    assert_eq!(sink, guests::CHAINSINK_GUEST_GARBAGE);
    assert_eq!(call, "emit");
    assert!(
        message.contains("not a record at log offset 0"),
        "{message}"
    );
    assert!(message.contains("garbage, not a record"), "{message}");
    assert!(
        err.to_string().contains("broke the contract in `emit`"),
        "{err}"
    );
    // The garbage is in its own log (append-only: the host cannot take it
    // back), marked at once by the host's `chain.rejected` record, which the
    // message names; the verifier reports the breach and accepts the log.
    assert!(message.contains("chain.rejected"), "{message}");
    let report = log.unwrap();
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert_eq!((report.rejected[0].line, report.rejected[0].offset), (1, 0));
    assert_eq!(report.records, 1, "only the host's record: {report:?}");
}

/// Opens a wrong-hash tenant on a fresh log, runs `f`, returns its error.
fn lie(f: impl FnOnce(&Sink) -> SinkError) -> SinkError {
    let dir = tempfile::tempdir().unwrap();
    let tenants = Tenants::new(runtime());
    let tenant = tenants
        .open(
            TenantSpec::new("liar", dir.path().join("liar.jsonl"), options())
                .with_sink(SinkSource::File(guests::CHAINSINK_GUEST_WRONG_HASH.into())),
        )
        .unwrap();
    f(tenant.sink())
}

fn lying_event(kind: &str) -> Event {
    Event {
        event_type: kind.into(),
        workflow_id: Some("liar".into()),
        payload: r#"{"tenant": "liar"}"#.into(),
        ..Event::default()
    }
}

#[test]
fn wrong_hashes_and_receipts_are_caught() {
    let err = lie(|s| s.emit(&lying_event("lie.hash-shape")).unwrap_err());
    let (sink, call, message) = breach(&err);
    assert_eq!((sink, call), (guests::CHAINSINK_GUEST_WRONG_HASH, "emit"));
    assert!(
        message.contains("\"NOT-A-HASH\" is not 64 lowercase hex digits"),
        "{message}"
    );

    // Well-formed, but not the hash of the record it wrote: only the bytes tell.
    let err = lie(|s| {
        s.emit(&lying_event("honest")).unwrap();
        s.emit(&lying_event("lie.hash-value")).unwrap_err()
    });
    let (_, call, message) = breach(&err);
    assert_eq!(call, "emit");
    assert!(
        message.contains(&format!("receipt 0 says hash {}", "ab".repeat(32))),
        "{message}"
    );
    assert!(
        message.contains("but the record it appended at log offset"),
        "{message}"
    );

    let err = lie(|s| s.emit(&lying_event("lie.seq")).unwrap_err());
    let (_, call, message) = breach(&err);
    assert_eq!(call, "emit");
    assert!(message.contains("receipt 0 says seq 42"), "{message}");

    let err = lie(|s| {
        s.emit_batch(&[lying_event("honest"), lying_event("lie.count")])
            .unwrap_err()
    });
    let (_, call, message) = breach(&err);
    assert_eq!(call, "emit-batch");
    assert!(message.contains("1 receipts for 2 events"), "{message}");

    let err = lie(|s| {
        s.emit(&lying_event("honest")).unwrap();
        let err = s.head().unwrap_err();
        // Discarded: even an honest call is refused now, with the reason.
        assert_eq!(
            s.emit(&lying_event("honest")).unwrap_err().to_string(),
            err.to_string()
        );
        err
    });
    let (_, call, message) = breach(&err);
    assert_eq!(call, "head");
    assert!(
        message.contains("\"XYZ\" is not 64 lowercase hex digits"),
        "{message}"
    );
}

/// Opens a packed-liar tenant on a fresh log and runs `f` on its sink;
/// returns what `f` returns, the log's path and its directory (kept while
/// the caller holds it).
fn packed_liar<R>(f: impl FnOnce(&Sink) -> R) -> (R, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("packed.jsonl");
    let tenants = Tenants::new(runtime());
    let tenant = tenants
        .open(
            TenantSpec::new("packed", &log, options())
                .with_sink(SinkSource::File(guests::CHAINSINK_GUEST_PACKED_LIAR.into())),
        )
        .unwrap();
    (f(tenant.sink()), log, dir)
}

#[test]
fn a_sink_that_takes_events_packed_is_held_to_the_same_receipts() {
    // Honest: a batch goes through `emit-packed`, and the receipts are the records'.
    let (receipts, log, _dir) = packed_liar(|s| {
        s.emit_batch(&[lying_event("honest"), lying_event("honest")])
            .unwrap()
    });
    let report = verify_file(&log, &VerifyOptions::default()).unwrap();
    assert_eq!(report.records, 2);
    assert_eq!(receipts[1].hash, report.head);
    assert_eq!((receipts[0].seq, receipts[1].seq), (1, 2));

    // Bytes that are no receipts, a receipt short, a hash that is not its
    // record's: each breaks the contract in `emit-packed`, the instance is
    // discarded, and the host marks what the call appended at once.
    for (kind, says) in [
        ("lie.garbage", "packed receipts at byte 0: cut short"),
        ("lie.count", "1 receipts for 2 events"),
        (
            "lie.hash-value",
            &format!("receipt 1 says hash {}", "ab".repeat(32)),
        ),
    ] {
        let ((err, again), log, _dir) = packed_liar(|s| {
            let err = s
                .emit_batch(&[lying_event(kind), lying_event("honest")])
                .unwrap_err();
            (err, s.emit_batch(&[lying_event("honest")]).unwrap_err())
        });
        let (sink, call, message) = breach(&err);
        assert_eq!(
            (sink, call),
            (guests::CHAINSINK_GUEST_PACKED_LIAR, "emit-packed"),
            "{kind}"
        );
        assert!(message.contains(says), "{kind}: {message}");
        assert!(message.contains("chain.rejected"), "{kind}: {message}");
        assert_eq!(again.to_string(), err.to_string(), "{kind}: discarded");
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{kind}: two records and the host's mark");
        let mark: Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(mark["event_type"], "chain.rejected", "{kind}");
        assert_eq!(mark["payload"]["rejected_offset"], 0, "{kind}");
        assert_eq!(
            mark["payload"]["rejected_length"],
            lines[0].len() + lines[1].len() + 2,
            "{kind}: it claims exactly what the call appended"
        );
        // Both records linked, and the mark to the genesis: the log verifies, with the
        // breach.
        let report =
            verify_file(&log, &VerifyOptions::default()).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(report.records, 1, "{kind}: only the host's record");
        assert_eq!(
            (
                report.rejected.len(),
                report.rejected[0].line,
                report.rejected[0].record_line
            ),
            (1, 1, 3),
            "{kind}"
        );
    }
}

#[test]
fn a_wasi_sink_reaches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = Tenants::new(runtime());
    let neighbour = dir.path().join("neighbour.jsonl");
    tenants
        .open(TenantSpec::new("neighbour", &neighbour, options()))
        .unwrap()
        .sink()
        .emit(&event("neighbour", 0))
        .unwrap();
    let log = dir.path().join("snoop.jsonl");
    let snoop = tenants
        .open(
            TenantSpec::new("snoop", &log, options())
                .with_sink(SinkSource::File(guests::CHAINSINK_GUEST_WASI_SNOOP.into())),
        )
        .unwrap();
    let probe = serde_json::json!({
        "tenant": "snoop",
        "probe": [dir.path(), &log, &neighbour],
    });
    let receipt = snoop
        .sink()
        .emit(&Event {
            event_type: "snoop.probe".into(),
            workflow_id: Some("snoop".into()),
            payload: probe.to_string(),
            ..Event::default()
        })
        .unwrap();
    assert_eq!(receipt.seq, 1);
    for (name, head) in tenants.close_all() {
        head.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // The snoop's record, which the host checked and the verifier accepts,
    // says what each attempt gave.
    assert_own_records(&log, "snoop", 1);
    assert_own_records(&neighbour, "neighbour", 1);
    let record: Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim_end()).unwrap();
    let probes = record["payload"]["sandbox_probes"].as_object().unwrap();
    let outcome = |k: &str| {
        probes
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no probe {k:?} in {probes:?}"))
    };
    for key in [
        "read /etc/passwd".to_string(),
        "list /".into(),
        "list .".into(),
        "create /tmp/chainsink-wasi-snoop".into(),
        format!("list {}", dir.path().display()),
        format!("read {}", log.display()),
        format!("read {}", neighbour.display()),
    ] {
        assert!(
            outcome(&key).starts_with("denied: "),
            "{key}: {}",
            outcome(&key)
        );
    }
    assert!(
        !probes
            .values()
            .any(|v| v.as_str().unwrap().contains("ALLOWED")),
        "{probes:?}"
    );
    assert_eq!(outcome("environment"), "0 variables");
    // A frozen clock, and random numbers that are the same in every run.
    assert_eq!(outcome("wall clock"), "0 s after the Unix epoch");
    assert!(
        outcome("random").starts_with("hash seed gives "),
        "{}",
        outcome("random")
    );
    assert_eq!(outcome("arguments"), "0 arguments");
    let slept: u64 = outcome("sleep 30 s")
        .trim_start_matches("returned after ")
        .trim_end_matches(" ms")
        .parse()
        .unwrap();
    assert!(
        slept < 1000,
        "a sink's sleep must not block the host: {slept} ms"
    );
    assert!(!Path::new("/tmp/chainsink-wasi-snoop").exists());
}

#[test]
fn a_discarded_instance_gives_back_its_pool_slot() {
    // A pool with room for one sink: after the bomb traps (and while its
    // `Sink` is still held), another sink must fit.
    let runtime = SinkRuntime::with_config(RuntimeConfig {
        max_sinks: 1,
        limits: SinkLimits {
            memory_bytes: 16 << 20,
            ..SinkLimits::default()
        },
        ..RuntimeConfig::default()
    })
    .unwrap();
    assert_eq!(runtime.allocator(), &Allocator::Pooling { max_sinks: 1 });
    let dir = tempfile::tempdir().unwrap();
    let bomb = runtime
        .load_file(Path::new(guests::CHAINSINK_GUEST_MEMORY_BOMB))
        .unwrap();
    let default = runtime.default_component().unwrap();
    let open = |c, name: &str| {
        runtime.open(
            c,
            chainsink_host::LogFile::open(&dir.path().join(name)).unwrap(),
            &options(),
        )
    };
    let held = open(&bomb, "bomb.jsonl").unwrap();
    let full = open(&default, "full.jsonl").unwrap_err();
    assert!(full.to_string().contains("instantiate"), "{full}");
    held.emit(&event("bomb", 0)).unwrap_err();
    let next = open(&default, "next.jsonl").unwrap();
    next.emit(&event("next", 0)).unwrap();
    next.close().unwrap();
    drop(held);
}

#[test]
fn a_hundred_tenants_write_a_thousand_records_each_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Arc::new(
        SinkRuntime::with_config(RuntimeConfig {
            max_sinks: 128,
            ..RuntimeConfig::default()
        })
        .unwrap(),
    );
    let tenants = Tenants::new(runtime);
    let names: Vec<String> = (0..100).map(|i| format!("tenant-{i:03}")).collect();
    for name in &names {
        tenants
            .open(TenantSpec::new(
                name,
                dir.path().join(format!("{name}.jsonl")),
                options(),
            ))
            .unwrap();
    }
    assert_eq!(tenants.len(), 100);
    std::thread::scope(|s| {
        for name in &names {
            let tenant = tenants.get(name).unwrap();
            s.spawn(move || {
                for i in 0..1000 {
                    let r = tenant.sink().emit(&event(name, i)).unwrap();
                    assert_eq!(r.seq, i as u64 + 1);
                }
            });
        }
    });
    let mut closed = tenants.close_all();
    closed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(closed.len(), 100);
    for (name, head) in closed {
        assert_eq!(head.unwrap().records, 1000, "{name}");
    }
    assert_eq!(jsonl_files(dir.path()), 100);
    for name in &names {
        assert_own_records(&dir.path().join(format!("{name}.jsonl")), name, 1000);
    }
}

#[test]
fn tenants_keep_their_names_and_logs_apart() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = Tenants::new(runtime());
    let log = dir.path().join("a.jsonl");
    tenants.open(TenantSpec::new("a", &log, options())).unwrap();
    let err = tenants
        .open(TenantSpec::new(
            "a",
            dir.path().join("other.jsonl"),
            options(),
        ))
        .unwrap_err();
    assert!(matches!(err, TenantError::DuplicateName { .. }), "{err}");
    // The same file by another path is still the same log.
    let again = dir.path().join(".").join("a.jsonl");
    let err = tenants
        .open(TenantSpec::new("b", &again, options()))
        .unwrap_err();
    assert!(matches!(err, TenantError::SharedLog { .. }), "{err}");
    assert!(
        err.to_string().contains("tenant \"a\" already writes it"),
        "{err}"
    );
    let err = tenants
        .open(
            TenantSpec::new("c", dir.path().join("c.jsonl"), options())
                .with_sink(SinkSource::File("/nonexistent/sink.wasm".into())),
        )
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/sink.wasm"), "{err}");
    tenants.close("a").unwrap();
    tenants
        .open(TenantSpec::new("b", &again, options()))
        .unwrap();
    assert_eq!(tenants.names(), ["b"]);
    assert!(matches!(
        tenants.close("zz"),
        Err(TenantError::Unknown { .. })
    ));
}

#[test]
fn instance_and_table_limits_refuse_the_instance() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let default = runtime.default_component().unwrap();
    let open = |name: &str, limits: SinkLimits| {
        let log = chainsink_host::LogFile::open(&dir.path().join(name)).unwrap();
        runtime.open_with_limits(&default, log, &options(), &limits)
    };
    // The default sink is three core instances (the sink and two shims).
    let err = open(
        "instances.jsonl",
        SinkLimits {
            instances: 2,
            ..SinkLimits::default()
        },
    )
    .unwrap_err();
    let (sink, call, reason) = trap(&err);
    assert_eq!(
        (sink, call),
        (chainsink_host::runtime::DEFAULT_SINK_NAME, "instantiate")
    );
    assert!(reason.contains("instance"), "{reason}");
    let err = open(
        "tables.jsonl",
        SinkLimits {
            table_elements: 1,
            ..SinkLimits::default()
        },
    )
    .unwrap_err();
    let (_, call, reason) = trap(&err);
    assert_eq!(call, "instantiate");
    assert!(reason.contains("table limit reached"), "{reason}");
    assert!(reason.contains("over its limit of 1"), "{reason}");
    // Within limits, the same component opens.
    open("fine.jsonl", SinkLimits::default()).unwrap();
}

#[test]
fn fuel_limits_trap_and_need_a_fuel_metering_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let looping = runtime
        .load_file(Path::new(guests::CHAINSINK_GUEST_LOOP_FOREVER))
        .unwrap();
    let limits = SinkLimits {
        fuel: Some(1_000_000),
        ..SinkLimits::default()
    };
    let log = |name: &str| chainsink_host::LogFile::open(&dir.path().join(name)).unwrap();
    let err = runtime
        .open_with_limits(&looping, log("refused.jsonl"), &options(), &limits)
        .unwrap_err();
    // A configuration error, not a trap: nothing ran.
    assert!(matches!(err, SinkError::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("RuntimeConfig::fuel"), "{err}");
    assert!(!err.to_string().contains("trapped"), "{err}");

    let fueled = SinkRuntime::with_config(RuntimeConfig {
        max_sinks: 4,
        fuel: true,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let looping = fueled
        .load_file(Path::new(guests::CHAINSINK_GUEST_LOOP_FOREVER))
        .unwrap();
    let sink = fueled
        .open_with_limits(&looping, log("fuel.jsonl"), &options(), &limits)
        .unwrap();
    let err = sink.emit(&event("fuel", 0)).unwrap_err();
    let (_, call, reason) = trap(&err);
    assert_eq!(call, "emit");
    assert!(reason.contains("out of fuel"), "{reason}");
    // Without a fuel limit, a fuel-metering runtime gives unlimited fuel.
    let default = fueled.default_component().unwrap();
    let sink = fueled
        .open(&default, log("unlimited.jsonl"), &options())
        .unwrap();
    sink.emit(&event("fuel", 0)).unwrap();
}

#[test]
fn compiled_components_are_cached_and_checked_before_use() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    let load = || {
        let runtime = SinkRuntime::with_config(RuntimeConfig {
            pooling: false,
            cache_dir: Some(cache_dir.clone()),
            ..RuntimeConfig::default()
        })
        .unwrap();
        // The default sink's bytes, loaded as any sink file is (its
        // `default_component` comes precompiled, without the cache).
        let load_default =
            || runtime.load_bytes("sink.wasm", chainsink_host::runtime::DEFAULT_SINK_WASM);
        let c = load_default().unwrap();
        // A second load in the same runtime shares the compiled code.
        assert_eq!(load_default().unwrap().origin(), &Origin::Memory);
        (c.origin().clone(), runtime)
    };
    assert_eq!(
        load().0,
        Origin::Cache(CacheOutcome::Compiled { stored: true })
    );
    assert_eq!(load().0, Origin::Cache(CacheOutcome::Hit));
    let (_, runtime) = load();
    let engine_key = chainsink_host::runtime::cache::ComponentCache::engine_key(runtime.engine());
    let entry = runtime.cache().unwrap().entry_path(
        &engine_key,
        &chainsink_format::Hash::of(chainsink_host::runtime::DEFAULT_SINK_WASM),
    );
    assert!(entry.starts_with(&cache_dir));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache_dir), 0o700);
    assert_eq!(mode(&entry), 0o600);
    let good = std::fs::read(&entry).unwrap();

    // Each kind of damage is refused, recompiled and repaired.
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x55;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (flipped, "checksum"),
        (good[..good.len() / 2].to_vec(), "truncated"),
        (b"#!/bin/sh\necho pwned\n".to_vec(), "bad magic"),
        (Vec::new(), "bad magic"),
    ];
    for (bytes, why) in cases {
        std::fs::write(&entry, &bytes).unwrap();
        match load().0 {
            Origin::Cache(CacheOutcome::Recompiled { reason }) => {
                assert!(reason.contains(why), "{why}: {reason}")
            }
            other => panic!("{why}: expected a recompile, got {other:?}"),
        }
        assert_eq!(
            std::fs::read(&entry).unwrap(),
            good,
            "{why}: entry repaired"
        );
        assert_eq!(load().0, Origin::Cache(CacheOutcome::Hit));
    }
    // An entry others could have written is not loaded, however valid.
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
    match load().0 {
        Origin::Cache(CacheOutcome::Recompiled { reason }) => {
            assert!(reason.contains("writable by group or others"), "{reason}")
        }
        other => panic!("expected a recompile, got {other:?}"),
    }
    assert_eq!(mode(&entry), 0o600);
}

#[test]
fn inspect_reports_the_world_and_the_fit() {
    let runtime = runtime();
    let default = inspect(
        &runtime,
        "default",
        chainsink_host::runtime::DEFAULT_SINK_WASM,
    );
    assert!(default.fits(), "{:?}", default.problems);
    assert!(!default.wasi);
    let imports: Vec<&str> = default.imports.iter().map(|i| i.name.as_str()).collect();
    assert!(
        imports.contains(&"chainsink:audit/log-file@0.2.0"),
        "{imports:?}"
    );
    // The default sink hashes records with the host's SHA-256 (issue 15).
    assert!(
        imports.contains(&"chainsink:audit/digest@0.2.0"),
        "{imports:?}"
    );
    let log_file = default
        .imports
        .iter()
        .find(|i| i.name == "chainsink:audit/log-file@0.2.0")
        .unwrap();
    assert!(
        log_file
            .functions
            .contains(&"append: func(data: list<u8>) -> result<u64, string>".to_string()),
        "{:?}",
        log_file.functions
    );
    let exports: Vec<&str> = default.exports.iter().map(|e| e.name.as_str()).collect();
    assert!(
        exports.contains(&"chainsink:audit/sink@0.2.0")
            && exports.contains(&"chainsink:audit/verifier@0.2.0"),
        "{exports:?}"
    );
    let text = default.render();
    assert!(
        text.contains("fits chainsink:audit/audit-sink@0.2.0: yes"),
        "{text}"
    );

    let snoop_bytes = std::fs::read(guests::CHAINSINK_GUEST_WASI_SNOOP).unwrap();
    let snoop = inspect(&runtime, "snoop.wasm", &snoop_bytes);
    assert!(snoop.fits() && snoop.wasi, "{:?}", snoop.problems);
    assert!(snoop.render().contains("empty WASI context"));

    let core = inspect(&runtime, "core.wasm", b"\0asm\x01\0\0\0");
    assert!(!core.fits());
    assert!(
        core.problems[0].contains("core wasm module"),
        "{:?}",
        core.problems
    );
    let empty = inspect(&runtime, "empty.wasm", b"\0asm\x0d\0\x01\0");
    assert!(!empty.fits());
    assert!(empty.problems[0].contains("does not export `chainsink:audit/sink@0.1.0`"));
    let json = empty.to_json();
    assert_eq!(json["fits"], false);
    assert_eq!(json["size"], 8);
}

// ---------------------------------------------------------------------------
// The binary

const WORKFLOW: &str = r#"apiVersion: telemachy/v1
metadata:
  name: NAME
agents:
  - name: worker
    program: 'cat > /dev/null; PROGRAM'
    runtime: local
teams:
  - name: team
    agents: [worker]
    tasks:
      - subject: "first"
        description: "the first task"
        assign_to: worker
      - subject: "second"
        description: "the second task"
        assign_to: worker
        blocked_by: ["first"]
"#;

/// Writes a workflow called `name` whose tasks run `program`.
fn workflow(dir: &Path, file: &str, name: &str, program: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(
        &path,
        WORKFLOW.replace("NAME", name).replace("PROGRAM", program),
    )
    .unwrap();
    path
}

#[test]
fn cli_an_endless_sink_stops_the_run_fail_closed_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let wf = workflow(dir.path(), "wf.yaml", "looping", "true");
    let log = dir.path().join("audit.jsonl");
    let out = run(
        &[
            "run",
            wf.to_str().unwrap(),
            "--dry-run",
            "--no-cache",
            "--log",
            log.to_str().unwrap(),
            "--sink",
            guests::CHAINSINK_GUEST_LOOP_FOREVER,
            "--sink-timeout",
            "200",
        ],
        "",
    );
    // The run's summary (stdout) reports the trap once; stderr does not
    // repeat it. Either way the user reads it in the run's output.
    let err = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains(guests::CHAINSINK_GUEST_LOOP_FOREVER), "{err}");
    assert!(err.contains("trapped in `emit`"), "{err}");
    assert!(err.contains("deadline exceeded"), "{err}");
    assert!(err.contains("200 ms"), "{err}");

    let out = run(
        &[
            "run",
            wf.to_str().unwrap(),
            "--dry-run",
            "--no-cache",
            "--log",
            log.to_str().unwrap(),
            "--sink",
            guests::CHAINSINK_GUEST_PANICKER,
            "--audit-policy",
            "fail-open",
        ],
        "",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("AUDITING DEGRADED"), "{err}");
    assert!(
        err.contains("the panicking test sink refuses event"),
        "{err}"
    );
}

#[test]
fn cli_a_wasi_sink_reports_its_denied_probes_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("snoop.jsonl");
    let payload = serde_json::json!({"probe": [dir.path()]}).to_string();
    let out = run(
        &[
            "emit",
            "--no-cache",
            "--log",
            log.to_str().unwrap(),
            "--sink",
            guests::CHAINSINK_GUEST_WASI_SNOOP,
            "--type",
            "snoop.probe",
            "--payload",
            &payload,
        ],
        "",
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("wasi-snoop: read /etc/passwd: denied"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "wasi-snoop: list {}: denied",
            dir.path().display()
        )),
        "{err}"
    );
    assert!(!err.contains("ALLOWED"), "{err}");
    assert_eq!(crate::common::verify(&log, &[]).status.code(), Some(0));
}

#[test]
fn cli_inspect_shows_the_world_and_the_fit() {
    let out = run(&["inspect", "--default", "--no-cache"], "");
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text.contains("chainsink:audit/sink@0.2.0 (instance)"),
        "{text}"
    );
    assert!(
        text.contains("append: func(data: list<u8>) -> result<u64, string>"),
        "{text}"
    );
    assert!(
        text.contains("sink:    chainsink-guest-sink 0.1.0, writes telemachy-json, verifier: yes"),
        "{text}"
    );
    assert!(
        text.contains("fits chainsink:audit/audit-sink@0.2.0: yes"),
        "{text}"
    );

    let out = run(
        &[
            "inspect",
            guests::CHAINSINK_GUEST_WASI_SNOOP,
            "--json",
            "--no-cache",
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["fits"], true);
    assert_eq!(json["wasi"], true);
    assert!(json["size"].as_u64().unwrap() > 1000);
    assert!(json["imports"].as_array().unwrap().iter().any(|i| {
        i["name"]
            .as_str()
            .unwrap()
            .starts_with("wasi:filesystem/preopens")
    }));

    let dir = tempfile::tempdir().unwrap();
    let not_a_sink = dir.path().join("empty.wasm");
    std::fs::write(&not_a_sink, b"\0asm\x0d\0\x01\0").unwrap();
    let out = run(&["inspect", not_a_sink.to_str().unwrap(), "--no-cache"], "");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        // Not a sink of any version: the current world is named.
        text.contains("fits chainsink:audit/audit-sink@0.2.0: NO"),
        "{text}"
    );
    assert!(
        text.contains("does not export `chainsink:audit/sink@0.1.0`"),
        "{text}"
    );

    let out = run(&["inspect", "/nonexistent.wasm"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent.wasm"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn cli_runs_several_workflows_each_with_its_own_log() {
    let dir = tempfile::tempdir().unwrap();
    let ok = workflow(dir.path(), "ok.yaml", "alpha", "true");
    let failing = workflow(dir.path(), "fail.yaml", "beta", "exit 7");
    let logs = dir.path().join("logs");
    let out = run(
        &[
            "run",
            ok.to_str().unwrap(),
            failing.to_str().unwrap(),
            "--log-dir",
            logs.to_str().unwrap(),
        ],
        "",
    );
    let text = stdout(&out);
    // The worst of the runs: one failed (1), one completed (0).
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    for name in ["alpha", "beta"] {
        let log = logs.join(format!("{name}.jsonl"));
        assert_eq!(
            crate::common::verify(&log, &[]).status.code(),
            Some(0),
            "{name}"
        );
        let spec_names: Vec<Value> = crate::common::lines(&log)
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["event_type"] == "workflow.started")
            .map(|r| r["payload"]["spec_name"].clone())
            .collect();
        assert_eq!(spec_names, [Value::from(name)], "{name}");
        assert!(text.contains(&log.display().to_string()), "{text}");
    }
    assert_eq!(jsonl_files(&logs), 2);

    // Two workflows with one name would share a log: refused before anything runs.
    let twin = workflow(dir.path(), "twin.yaml", "alpha", "true");
    let out = run(
        &[
            "run",
            ok.to_str().unwrap(),
            twin.to_str().unwrap(),
            "--log-dir",
            logs.to_str().unwrap(),
        ],
        "",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("\"alpha\""), "{err}");
    assert!(
        err.contains("ok.yaml") && err.contains("twin.yaml"),
        "{err}"
    );

    // Several workflows cannot share one --log.
    let out = run(
        &[
            "run",
            ok.to_str().unwrap(),
            failing.to_str().unwrap(),
            "--log",
            dir.path().join("one.jsonl").to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--log-dir"), "{}", stderr(&out));
}

#[test]
fn cli_one_sink_needs_no_pool_reservation() {
    // With 6 GB of address space a pool (4 GiB per memory slot, plus guards)
    // for more than one sink cannot be reserved; a CLI that opens one sink
    // allocates on demand and reserves none (the pool's own fallback:
    // allocator::a_pool_that_cannot_be_reserved_falls_back_to_on_demand).
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let script = format!(
        "ulimit -v 6000000 && exec {} emit --no-cache --type test.event --log {}",
        env!("CARGO_BIN_EXE_chainsink"),
        log.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .env_remove("AUDIT_LOG_PATH")
        .env_remove("AUDIT_SINK")
        .env("USER", "tester")
        .env("HOST_ID", "test-host")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("pooling"), "{err}");
    assert_eq!(crate::common::verify(&log, &[]).status.code(), Some(0));
}
