//! Paths of the hostile test sinks in `guests/test-sinks/`, built as
//! components by this crate's build script (wasmtime's
//! `crates/test-programs/artifacts` pattern). A dev-dependency only: no
//! release build of chainsink builds these.
//!
//! Each guest `guests/test-sinks/NAME` gives a constant
//! `CHAINSINK_GUEST_NAME` (upper case, `_` for `-`) holding its path. The
//! build fails for a guest that no test names.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
