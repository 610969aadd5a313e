//! Multi-tenant benchmarks: many sinks in one process.
//!
//! `cargo bench -p chainsink-host --bench tenants` (add `-- --quick` for a short run).
//!
//! 1. Time to a working sink: load the default component and open a sink
//!    (instantiate + `open`), compiling the raw wasm, against loading it from
//!    the disk cache (read, checksum, deserialize) in a fresh runtime, and
//!    against a component this runtime already holds.
//! 2. Memory per idle tenant: resident memory (`/proc/self/statm`) before
//!    and after opening 1,000 sinks, each on its own log, then after one
//!    event each.
//! 3. Throughput with 1, 10 and 100 tenants, each on its own thread and log,
//!    durability none, one `emit` per event.
//!
//! Each sink has its own log and, since the single-writer lock, a `.lock`
//! file: 1,000 tenants need over 2,000 descriptors, so the bench raises its
//! soft descriptor limit to the hard one.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chainsink_host::runtime::DEFAULT_SINK_WASM;
use chainsink_host::tenants::{TenantSpec, Tenants};
use chainsink_host::{Actor, Durability, Event, LogFile, RuntimeConfig, SinkOptions, SinkRuntime};

const PAYLOAD: &str = r#"{"workflow_id": "3f2a9c1d", "team": "audit-team", "task_subject": "Analyse repository structure", "task_id": "task-3f2a9c1d-1", "exit_code": 0, "duration_seconds": 1.234}"#;

fn options() -> SinkOptions {
    SinkOptions {
        hash_chain: true,
        durability: Durability::None,
        actor: Actor {
            host_id: "bench-host".into(),
            user: "bench".into(),
        },
    }
}

fn event() -> Event {
    Event {
        event_type: "task.completed".into(),
        workflow_id: Some("3f2a9c1d".into()),
        payload: PAYLOAD.into(),
        ..Event::default()
    }
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page
}

fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill in and then pass back.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Loads the default sink in `runtime` and opens a sink on a fresh log;
/// returns (load, open) times.
fn load_and_open(runtime: &SinkRuntime, dir: &Path, i: usize) -> (Duration, Duration) {
    let start = Instant::now();
    let component = runtime
        .load_bytes("default", DEFAULT_SINK_WASM)
        .expect("load");
    let loaded = start.elapsed();
    let log = LogFile::open(&dir.join(format!("open-{i}.jsonl"))).unwrap();
    let start = Instant::now();
    let sink = runtime.open(&component, log, &options()).expect("open");
    let opened = start.elapsed();
    sink.close().unwrap();
    (loaded, opened)
}

fn startup(dir: &Path, rounds: usize) {
    println!("== 1. time to a working sink (default component, {rounds} rounds, medians)");
    let cache_dir = dir.join("cache");
    let config = |cache: bool| RuntimeConfig {
        max_sinks: 16,
        cache_dir: cache.then(|| cache_dir.clone()),
        ..RuntimeConfig::default()
    };
    // Compile from raw wasm: a fresh runtime each round, no cache.
    let (mut load, mut open) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let runtime = SinkRuntime::with_config(config(false)).unwrap();
        let (l, o) = load_and_open(&runtime, dir, i);
        load.push(l);
        open.push(o);
    }
    let (compile, open_compiled) = (median(load), median(open));
    // Fill the cache once, then a fresh runtime each round loads from it.
    SinkRuntime::with_config(config(true))
        .unwrap()
        .default_component()
        .unwrap();
    let (mut load, mut open) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let runtime = SinkRuntime::with_config(config(true)).unwrap();
        let (l, o) = load_and_open(&runtime, dir, 1000 + i);
        load.push(l);
        open.push(o);
    }
    let (cached, open_cached) = (median(load), median(open));
    // Already in this runtime: instantiate + open only.
    let runtime = SinkRuntime::with_config(config(false)).unwrap();
    runtime.default_component().unwrap();
    let open: Vec<Duration> = (0..rounds * 10)
        .map(|i| load_and_open(&runtime, dir, 2000 + i).1)
        .collect();
    let warm = median(open);
    println!(
        "  compile raw wasm:  load {:>9}  + instantiate&open {:>9}  = {}",
        ms(compile),
        ms(open_compiled),
        ms(compile + open_compiled)
    );
    println!(
        "  from disk cache:   load {:>9}  + instantiate&open {:>9}  = {}  ({:.0}x faster; goal < 5 ms)",
        ms(cached),
        ms(open_cached),
        ms(cached + open_cached),
        (compile + open_compiled).as_secs_f64() / (cached + open_cached).as_secs_f64()
    );
    println!("  already loaded:    instantiate&open {}", ms(warm));
    println!(
        "  (the cached entry is {} KiB; the component {} KiB)",
        std::fs::read_dir(
            cache_dir
                .read_dir()
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path()
        )
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum::<u64>()
            / 1024,
        DEFAULT_SINK_WASM.len() / 1024
    );
}

fn idle(dir: &Path, n: usize) {
    println!("== 2. memory per idle tenant ({n} sinks, one runtime)");
    let runtime = Arc::new(
        SinkRuntime::with_config(RuntimeConfig {
            max_sinks: n as u32,
            ..RuntimeConfig::default()
        })
        .unwrap(),
    );
    println!("  allocator: {:?}", runtime.allocator());
    let tenants = Tenants::new(runtime.clone());
    // Compile, and warm one instance, before the baseline.
    let warm = runtime.default_component().unwrap();
    drop(warm);
    let before = rss();
    let start = Instant::now();
    for i in 0..n {
        tenants
            .open(TenantSpec::new(
                format!("t{i:04}"),
                dir.join(format!("idle-{i:04}.jsonl")),
                options(),
            ))
            .unwrap();
    }
    let took = start.elapsed();
    let opened = rss();
    for name in tenants.names() {
        tenants.get(&name).unwrap().sink().emit(&event()).unwrap();
    }
    let emitted = rss();
    let per = |after: u64| (after.saturating_sub(before)) as f64 / n as f64 / 1024.0;
    println!(
        "  opened {n} tenants in {} ({:.0} µs each)",
        ms(took),
        took.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "  RSS before {:.1} MiB, after open {:.1} MiB, after one event each {:.1} MiB",
        before as f64 / 1048576.0,
        opened as f64 / 1048576.0,
        emitted as f64 / 1048576.0
    );
    println!(
        "  per idle tenant: {:.0} KiB after open, {:.0} KiB after one event (goal < 2048 KiB)",
        per(opened),
        per(emitted)
    );
    for (name, head) in tenants.close_all() {
        head.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

fn throughput(dir: &Path, tenants_n: usize, total: usize, check_appends: bool) -> f64 {
    let runtime = Arc::new(
        SinkRuntime::with_config(RuntimeConfig {
            max_sinks: tenants_n as u32,
            check_appends: if check_appends {
                chainsink_host::runtime::AppendChecks::All
            } else {
                chainsink_host::runtime::AppendChecks::Off
            },
            ..RuntimeConfig::default()
        })
        .unwrap(),
    );
    let tenants = Tenants::new(runtime);
    for i in 0..tenants_n {
        let log = dir.join(format!("tp-{tenants_n}-{check_appends}-{i:03}.jsonl"));
        let _ = std::fs::remove_file(&log);
        tenants
            .open(TenantSpec::new(format!("t{i:03}"), log, options()))
            .unwrap();
    }
    let per = total / tenants_n;
    let names = tenants.names();
    let start = Instant::now();
    std::thread::scope(|s| {
        for name in &names {
            let t = tenants.get(name).unwrap();
            s.spawn(move || {
                let e = event();
                for _ in 0..per {
                    t.sink().emit(&e).unwrap();
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    for (name, head) in tenants.close_all() {
        assert_eq!(head.unwrap().records, per as u64, "{name}");
    }
    (per * tenants_n) as f64 / secs
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "chainsink tenants benchmark ({cores} cores{})",
        if quick { ", quick" } else { "" }
    );
    startup(dir.path(), if quick { 5 } else { 20 });
    idle(dir.path(), 1000);
    let total = if quick { 100_000 } else { 400_000 };
    println!("== 3. throughput, {total} events over N tenants (a thread each, durability none)");
    let one = throughput(dir.path(), 1, total, true);
    for n in [1, 10, 100] {
        let rate = if n == 1 {
            one
        } else {
            throughput(dir.path(), n, total, true)
        };
        println!(
            "  {n:>3} tenant(s): {:>8.0} events/s  ({:.2}x one tenant)",
            rate,
            rate / one
        );
    }
    // Append checks on and off, alternating, best of three each.
    let (mut on, mut off) = (0f64, 0f64);
    for _ in 0..3 {
        off = off.max(throughput(dir.path(), 1, total / 2, false));
        on = on.max(throughput(dir.path(), 1, total / 2, true));
    }
    println!(
        "    1 tenant, append checks on / off (RuntimeConfig::check_appends), best of 3: \
         {on:.0} / {off:.0} events/s (the checks cost {:.1} µs an event)",
        (1.0 / on - 1.0 / off) * 1e6
    );
}
