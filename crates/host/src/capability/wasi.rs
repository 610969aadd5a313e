//! WASI for sinks built for `wasm32-wasip2`: present, so they link, and empty,
//! so they reach nothing.
//!
//! A wasip2 component imports WASI interfaces (cli, io, clocks, random...)
//! even when it never uses them. It gets a context with no preopened
//! directories, no environment, no arguments, no stdio and no sockets, and:
//!
//! - **a frozen clock**: the wall clock always reads 1970-01-01T00:00:00Z and
//!   the monotonic clock always reads 0, so a sink cannot stamp times of its
//!   own (the host stamps every event) and its output does not depend on
//!   when it ran;
//! - **deterministic random bytes** (a fixed cycle, and a fixed insecure
//!   seed), so a sink is reproducible and has no entropy to hide anything
//!   with; a sink's hash maps still work;
//! - **sleeps that return at once** ([`NoSleep`]): wasmtime-wasi's own would
//!   sleep the host thread for as long as the sink asks, out of reach of the
//!   epoch deadline (which only interrupts wasm code). With this, a sink that
//!   waits in a loop spins in wasm, where its deadline stops it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi::{
    Deterministic, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView,
};

use crate::store::SinkState;

/// The WASI monotonic clock interface as wasmtime-wasi defines it; its two
/// `subscribe-*` functions are replaced (see [`NoSleep`]).
const WASI_MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";
/// Most WASI resources (streams, pollables...) one instance may hold.
const MAX_WASI_RESOURCES: usize = 1024;
/// Largest `wasi:random` request, in bytes.
const MAX_RANDOM_BYTES: u64 = 1 << 20;
/// The bytes `wasi:random` cycles through.
const RANDOM_CYCLE: &[u8] = b"chainsink sinks get no entropy";

/// The WASI state of one sink instance.
pub(crate) struct WasiState {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiState {
    /// An empty WASI: nothing to reach, a frozen clock, fixed random bytes.
    pub(crate) fn new() -> WasiState {
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_WASI_RESOURCES);
        let ctx = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .secure_random(Deterministic::new(RANDOM_CYCLE.to_vec()))
            .insecure_random(Deterministic::new(RANDOM_CYCLE.to_vec()))
            .insecure_random_seed(0)
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        WasiState { ctx, table }
    }
}

impl WasiView for SinkState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let wasi = self.wasi.get_or_insert_with(WasiState::new);
        WasiCtxView {
            ctx: &mut wasi.ctx,
            table: &mut wasi.table,
        }
    }
}

/// Adds WASI, as described in the [module docs](self), to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<SinkState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    let mut clock = linker.instance(WASI_MONOTONIC_CLOCK)?;
    clock.func_wrap("subscribe-duration", |mut store, (_,): (u64,)| {
        Ok((NoSleep::subscribe(store.data_mut().ctx().table)?,))
    })?;
    clock.func_wrap("subscribe-instant", |mut store, (_,): (u64,)| {
        Ok((NoSleep::subscribe(store.data_mut().ctx().table)?,))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A clock that never moves: wall time 0 (the Unix epoch), monotonic 0.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

/// A clock subscription that is ready at once (see the [module docs](self)).
struct NoSleep;

impl NoSleep {
    fn subscribe(table: &mut ResourceTable) -> wasmtime::Result<Resource<DynPollable>> {
        let ready = table.push(NoSleep)?;
        subscribe(table, ready)
    }
}

impl Pollable for NoSleep {
    fn ready<'a, 'b>(&'a mut self) -> Pin<Box<dyn Future<Output = ()> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(async {})
    }
}
