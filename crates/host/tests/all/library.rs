//! End-to-end tests of the library API: the real default component, real
//! files, many threads.

use std::collections::HashSet;
use std::sync::Arc;

use chainsink_host::runtime::world::{REQUIRED_INTERFACE, interface_name};
use chainsink_host::verify::{VerifyOptions, verify_file};
use chainsink_host::{
    Actor, Durability, Event, LoadError, LogFile, SinkError, SinkLimits, SinkOptions, SinkRuntime,
};

fn options(durability: Durability) -> SinkOptions {
    SinkOptions {
        hash_chain: true,
        durability,
        actor: Actor {
            host_id: "lib-host".into(),
            user: "lib-user".into(),
        },
    }
}

fn event(i: usize) -> Event {
    Event {
        event_type: "thread.emit".into(),
        workflow_id: Some("wf".into()),
        payload: format!(r#"{{"i": {i}}}"#),
        ..Event::default()
    }
}

#[test]
fn eight_threads_ten_thousand_emits_each_make_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("threads.jsonl");
    let runtime = SinkRuntime::new(SinkLimits::default()).unwrap();
    let component = runtime.default_component().unwrap();
    let sink = Arc::new(
        runtime
            .open(
                &component,
                LogFile::open(&path).unwrap(),
                &options(Durability::None),
            )
            .unwrap(),
    );
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                (0..10_000)
                    .map(|i| sink.emit(&event(t * 10_000 + i)).unwrap().seq)
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut seqs = HashSet::new();
    for t in threads {
        for seq in t.join().unwrap() {
            assert!(seqs.insert(seq), "seq {seq} handed out twice");
        }
    }
    assert_eq!(seqs.len(), 80_000);
    assert_eq!(sink.close().unwrap().records, 80_000);
    let report = verify_file(&path, &VerifyOptions::default()).unwrap();
    assert_eq!(report.records, 80_000);
}

#[test]
fn default_component_imports_exactly_our_interfaces() {
    let runtime = SinkRuntime::new(SinkLimits::default()).unwrap();
    let component = runtime.default_component().unwrap();
    let mut imports = component.imports().to_vec();
    imports.sort();
    // Every interface of the WIT version it was built against, but `digest`
    // (which a sink may leave out).
    let version = runtime.check_world(component.component()).version.unwrap();
    let mut ours: Vec<String> = version
        .provided()
        .iter()
        .map(|i| version.interface_name(i))
        .filter(|i| imports.contains(i) || !i.contains("/digest@"))
        .collect();
    ours.sort();
    assert_eq!(
        imports, ours,
        "the default sink must import only chainsink:audit interfaces"
    );
    assert!(imports.iter().all(|i| !i.starts_with("wasi:")));
}

#[test]
fn a_component_that_is_not_a_sink_is_refused_with_reasons() {
    let runtime = SinkRuntime::new(SinkLimits::default()).unwrap();
    // An empty component: valid, but it exports nothing.
    let empty = b"\0asm\x0d\0\x01\0";
    let err = runtime.load_bytes("empty.wasm", empty).unwrap_err();
    assert!(matches!(err, LoadError::Mismatch { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("empty.wasm"), "{text}");
    assert!(text.contains(&interface_name(REQUIRED_INTERFACE)), "{text}");

    let err = runtime
        .load_bytes("junk.wasm", b"not wasm at all")
        .unwrap_err();
    assert!(matches!(err, LoadError::Compile { .. }), "{err}");

    let err = runtime
        .load_file(std::path::Path::new("/nonexistent/sink.wasm"))
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/sink.wasm"), "{err}");
}

#[test]
fn batch_is_all_or_nothing_and_names_the_bad_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batch.jsonl");
    let runtime = SinkRuntime::new(SinkLimits::default()).unwrap();
    let component = runtime.default_component().unwrap();
    let sink = runtime
        .open(
            &component,
            LogFile::open(&path).unwrap(),
            &options(Durability::Always),
        )
        .unwrap();
    let mut events: Vec<Event> = (0..4).map(event).collect();
    events[2].payload = "{nope".into();
    match sink.emit_batch(&events) {
        Err(SinkError::InvalidEvent(m)) => assert!(m.contains("event 2"), "{m}"),
        other => panic!("expected InvalidEvent, got {other:?}"),
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    events[2].payload = "{}".into();
    let receipts = sink.emit_batch(&events).unwrap();
    assert_eq!(
        receipts.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let head = sink.close().unwrap();
    assert_eq!(head.records, 4);
    assert_eq!(head.hash, receipts[3].hash);
    assert!(matches!(
        sink.emit(&event(9)),
        Err(SinkError::NotOpen { .. })
    ));
}

#[test]
fn fixed_timestamps_give_identical_logs() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = SinkRuntime::new(SinkLimits::default()).unwrap();
    let component = runtime.default_component().unwrap();
    let write = |name: &str| {
        let path = dir.path().join(name);
        let sink = runtime
            .open(
                &component,
                LogFile::open(&path).unwrap(),
                &options(Durability::None),
            )
            .unwrap();
        for i in 0..10 {
            let mut e = event(i);
            e.timestamp = Some(format!("2026-06-04T15:30:{i:02}.123456+00:00"));
            sink.emit(&e).unwrap();
        }
        sink.close().unwrap();
        std::fs::read(path).unwrap()
    };
    assert_eq!(write("a.jsonl"), write("b.jsonl"));
}

#[test]
fn bad_timestamp_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = SinkRuntime::new(SinkLimits::default()).unwrap();
    let component = runtime.default_component().unwrap();
    let sink = runtime
        .open(
            &component,
            LogFile::open(&dir.path().join("ts.jsonl")).unwrap(),
            &options(Durability::None),
        )
        .unwrap();
    let mut e = event(0);
    e.timestamp = Some("2026-06-04 15:30:00".into());
    assert!(matches!(sink.emit(&e), Err(SinkError::InvalidEvent(_))));
}
