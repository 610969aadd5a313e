//! Host bindings generated from `wit/` (world `audit-sink`).

wasmtime::component::bindgen!({
    world: "audit-sink",
    path: "../wit",
});
