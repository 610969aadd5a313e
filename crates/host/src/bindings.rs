//! Host bindings generated from `wit/` (world `audit-sink`).

wasmtime::component::bindgen!({
    world: "audit-sink",
    path: "../../wit",
    // An append past the call's byte budget or deadline traps the sink at
    // that append (see `capability::log_file`).
    imports: { "chainsink:audit/log-file.append": trappable },
});
