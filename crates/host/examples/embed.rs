//! The Rust host example of `docs/embedding.md` ("Rust"), built by
//! `cargo test`: writes one event to `audit.jsonl` in the current directory.

use chainsink_host::{Actor, Durability, Event, LogFile, SinkLimits, SinkOptions, SinkRuntime};

fn main() -> anyhow::Result<()> {
    let runtime = SinkRuntime::new(SinkLimits::default())?; // one engine + linker per process
    let component = runtime.default_component()?; // or runtime.load_file("sink.wasm".as_ref())?
    let options = SinkOptions {
        hash_chain: true,
        durability: Durability::Always,
        actor: Actor {
            host_id: "build-1".into(),
            user: "alice".into(),
        },
    };
    let log = LogFile::open("audit.jsonl".as_ref())?;
    let sink = runtime.open(&component, log, &options)?;
    let receipt = sink.emit(&Event {
        event_type: "deploy.started".into(),
        workflow_id: Some("wf-1".into()),
        payload: r#"{"service": "api"}"#.into(),
        ..Event::default() // timestamp: now; actor: the options'
    })?;
    println!("record {} hash {:?}", receipt.seq, receipt.hash);
    sink.close()?;
    Ok(())
}
